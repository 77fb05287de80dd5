"""From window scores to labelled windows and merged events.

A window takes its top class when that class's score reaches the class's threshold; the
background class labels nothing unless background is kept. Windows of one label whose
intervals overlap, touch, or lie within `min_gap_s` of each other form one event.

Two rules change what an event spans, both off by default:

- event edges at window centres (`centre_edges`): a window stands for the stretch of time
  nearer its centre than any other window's (one hop around it; the first and last windows of a
  stream also for the part of them no other window covers). An event then spans the stretches
  of its windows instead of the windows themselves: a window longer than the calls it detects
  no longer widens every event by most of a window, and two calls a gap apart stay two events
  when the window centred on the gap is below threshold.
- splitting at score valleys (`split_depth` > 0): inside an event, a window whose score is at
  least `split_depth` below the highest scores on both sides of it (within the event) is where
  two calls of one class meet; the event is split there (the deepest valley first, then
  again inside each part), the valley window going to neither side. Depths are in log-odds,
  ln(p / (1 - p)), not in score: back-to-back calls a few milliseconds apart keep a window
  slid over them near 1 throughout (0.998 on a call, 0.989 between two), a dip no score
  difference can tell from noise, while in log-odds it is 1.7, as deep as 0.6 to 0.21.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bioclass.outputs.event import Event, events_frame

if TYPE_CHECKING:  # annotations only: the event rules need numpy alone
    import pandas as pd

    from bioclass.inference.score import StreamScores
    from bioclass.scan.options import ScanOptions

SCORE_KEY_COLUMNS = ["file", "channel", "start_time", "end_time"]


def window_labels(
    scores: np.ndarray,
    thresholds: np.ndarray,
    classes: list[str],
    background_label: str,
    keep_background: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Label of each window (None for no detection) and the score of that label.

    Args:
        scores: (n, C) window scores.
        thresholds: (C,) per-class thresholds.
        classes: C class names.
        background_label: the class that means "no species".
        keep_background: also label background windows.

    Returns:
        labels (n,) object array of str or None, and (n,) scores of the top class.
    """
    if len(scores) == 0:
        return np.array([], dtype=object), np.zeros(0)
    top = scores.argmax(axis=1)
    top_score = scores[np.arange(len(scores)), top]
    passes = top_score >= thresholds[top]
    names = np.asarray(classes, dtype=object)
    labels = np.where(passes, names[top], None).astype(object)
    if not keep_background and background_label in classes:
        labels[top == classes.index(background_label)] = None
    return labels, top_score


def window_rows(
    file: str,
    channel: int | None,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
) -> list[Event]:
    """One event per labelled window (`--no-merge`), in time order."""
    events = []
    for i in np.flatnonzero([label is not None for label in labels]):
        score = float(scores[i])
        events.append(
            Event(
                file, channel, float(starts_s[i]), float(ends_s[i]), str(labels[i]), score, score, 1
            )
        )
    return events


def merge_events(
    file: str,
    channel: int | None,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    min_gap_s: float = 0.0,
    min_duration_s: float = 0.0,
    split_depth: float = 0.0,
) -> list[Event]:
    """Merge labelled windows into events, per label.

    Windows of the same label merge while the next one starts no later than `min_gap_s` after
    the current event ends (overlapping and touching windows always merge); with `split_depth`
    > 0, each merged group is then split at its score valleys (see the module docstring). Each
    event keeps its maximum score (`score`), mean window score and window count; events shorter
    than `min_duration_s` are dropped. Events are sorted by start time, then label.
    """
    rows: list[Event] = []
    present = sorted({label for label in labels if label is not None})
    for label in present:
        idx = np.flatnonzero(np.array([x == label for x in labels], dtype=bool))
        idx = idx[np.argsort(starts_s[idx], kind="mergesort")]
        groups, group = [], [idx[0]]
        end = ends_s[idx[0]]
        for i in idx[1:]:
            if starts_s[i] - end <= min_gap_s + 1e-9:
                group.append(i)
                end = max(end, ends_s[i])
            else:
                groups.append(group)
                group, end = [i], ends_s[i]
        groups.append(group)
        for group in groups:
            for part in split_at_valleys(np.asarray(group), scores, split_depth):
                rows.append(_event(file, channel, label, part, starts_s, ends_s, scores))
    if min_duration_s > 0:
        rows = [e for e in rows if e.end_time - e.start_time >= min_duration_s - 1e-9]
    return sorted(rows, key=_time_label)  # sorted() is stable: ties keep their order


def _time_label(event: Event) -> tuple[float, str]:
    return event.start_time, event.label


LOG_ODDS_EPS = 1e-6  # scores are clipped to [eps, 1 - eps]: float32 saturates at 0 and 1


def split_at_valleys(group: np.ndarray, scores: np.ndarray, depth: float) -> list[np.ndarray]:
    """The parts of one event's windows (indices in time order) split at its score valleys.

    A member is a valley when its score's log-odds lie at least `depth` below the highest
    log-odds before it and the highest after it, within the group. The deepest valley (the
    largest shortfall below the lower of the two highs; ties: the earliest) splits the group,
    the valley window dropped, and each side is split again the same way. `depth` <= 0: no
    split.
    """
    if depth <= 0 or len(group) < 3:
        return [group]
    p = np.clip(np.asarray(scores, np.float64)[group], LOG_ODDS_EPS, 1 - LOG_ODDS_EPS)
    return _split(group, np.log(p / (1 - p)), depth)


def _split(group: np.ndarray, values: np.ndarray, depth: float) -> list[np.ndarray]:
    if len(group) < 3:
        return [group]
    left = np.maximum.accumulate(values)
    right = np.maximum.accumulate(values[::-1])[::-1]
    shortfall = np.minimum(left, right) - values
    shortfall[[0, -1]] = -np.inf  # an end of the event is no valley between two calls
    v = int(np.argmax(shortfall))
    if shortfall[v] < depth - 1e-9:
        return [group]
    return [
        *_split(group[:v], values[:v], depth),
        *_split(group[v + 1 :], values[v + 1 :], depth),
    ]


def centre_spans(starts_s: np.ndarray, ends_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stretch each window of a stream stands for with event edges at window centres.

    Windows in time order: each reaches from half-way between its centre and the previous
    window's to half-way to the next one's; the first window reaches back to its start and the
    last forward to its end (no other window sees those parts).
    """
    if len(starts_s) == 0:
        return starts_s, ends_s
    centres = (np.asarray(starts_s, float) + np.asarray(ends_s, float)) / 2
    middles = (centres[:-1] + centres[1:]) / 2
    lo = np.concatenate([[starts_s[0]], middles])
    hi = np.concatenate([middles, [ends_s[-1]]])
    return lo, hi


def _event(
    file: str,
    channel: int | None,
    label: str,
    group: list[int],
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    scores: np.ndarray,
) -> Event:
    members = np.asarray(group)
    return Event(
        file,
        channel,
        float(starts_s[members].min()),
        float(ends_s[members].max()),
        label,
        float(scores[members].max()),
        float(scores[members].mean()),
        int(len(members)),
    )


def score_matrix(
    file: str,
    channel: int | None,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    scores: np.ndarray,
    classes: list[str],
) -> pd.DataFrame:
    """Dense per-window scores: file, channel, start_time, end_time, one column per class
    (`--scores`, the one scan output built with pandas: pyarrow writes Parquet from it)."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "file": [file] * len(starts_s),
            "channel": pd.array([channel] * len(starts_s), dtype="Int64"),
            "start_time": starts_s,
            "end_time": ends_s,
        }
    )
    for c, name in enumerate(classes):
        frame[name] = scores[:, c].astype(np.float32)
    return frame


@dataclass(frozen=True)
class Detector:
    """The rule a scan applies to window scores: the models' classes and background label, and
    this run's per-class thresholds."""

    classes: list[str]
    thresholds: np.ndarray  # (C,)
    background_label: str
    written: np.ndarray | None = None  # (C,) bool: labels written (--classes); None: all


def window_detections(
    scores: np.ndarray, detector: Detector, keep_background: bool, top_n: int | None
) -> np.ndarray:
    """(n, C) bool: the labels of each window.

    A window's candidates are its `top_n` best-scoring classes over all the model's classes
    (its top class when None, ties to the first class); each candidate that reaches its
    threshold labels the window, background only when kept, and only the classes the detector
    writes. With one candidate this is `window_labels`' rule.
    """
    n, n_classes = scores.shape
    candidates = np.zeros((n, n_classes), dtype=bool)
    if n:
        if top_n is None or top_n == 1:
            best = scores.argmax(axis=1)[:, None]
        else:
            best = np.argsort(-scores, axis=1, kind="stable")[:, :top_n]
        np.put_along_axis(candidates, best, True, axis=1)
    detected = candidates & (scores >= detector.thresholds)
    if not keep_background and detector.background_label in detector.classes:
        detected[:, detector.classes.index(detector.background_label)] = False
    if detector.written is not None:
        detected &= detector.written
    return detected


def stream_events(
    file: str,
    channel: int | None,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    scores: np.ndarray,
    detector: Detector,
    options: ScanOptions,
) -> list[Event]:
    """The events (or labelled windows, without merging) of one stream's window scores.

    Each label is merged on its own (a window with two labels takes part in two events).
    """
    detected = window_detections(scores, detector, options.keep_background, options.top_n)
    if options.merge and options.event_edges == "centre":
        starts_s, ends_s = centre_spans(starts_s, ends_s)
    events: list[Event] = []
    for c in np.flatnonzero(detected.any(axis=0)):
        labels = np.where(detected[:, c], detector.classes[c], None).astype(object)
        events += _label_events(file, channel, starts_s, ends_s, labels, scores[:, c], options)
    return sorted(events, key=_time_label)


def _label_events(
    file: str,
    channel: int | None,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    labels: np.ndarray,
    label_scores: np.ndarray,
    options: ScanOptions,
) -> list[Event]:
    args = (file, channel, starts_s, ends_s, labels, label_scores)
    if options.merge:
        return merge_events(
            *args,
            min_gap_s=options.min_gap_s,
            min_duration_s=options.min_duration_s,
            split_depth=options.split_valleys,
        )
    return window_rows(*args)


def _sorted(streams: list[list[Event]]) -> list[Event]:
    """Every stream's events by start time, channel (the mix first) and label; stable."""
    return sorted(
        (e for events in streams for e in events),
        key=lambda e: (e.start_time, -1 if e.channel is None else e.channel, e.label),
    )


def file_events(
    file: str, streams: Sequence[StreamScores], detector: Detector, options: ScanOptions
) -> list[Event]:
    """The events (or labelled windows, without merging) of every stream of one file.

    Events are sorted by start time, channel and label.
    """
    return _sorted(
        [
            stream_events(file, s.channel, s.starts_s, s.ends_s, s.scores, detector, options)
            for s in streams
        ]
    )


def events_from_score_matrix(
    matrix: pd.DataFrame, detector: Detector, options: ScanOptions
) -> pd.DataFrame:
    """The events a scan with `detector` and `options` makes of a score matrix's windows.

    The matrix is `scan --scores`'s table (file, channel, start_time, end_time, one column per
    class); each file and channel is one stream, as the scan scored it, so re-thresholding a
    matrix gives the events the scan would have written with those thresholds (to the float32
    rounding of the stored scores). Files keep the matrix's order; a pandas table
    (`events_frame`), as the evaluations read it.
    """
    import pandas as pd

    events: list[Event] = []
    for file, rows in matrix.groupby("file", sort=False):
        streams = []
        for channel, part in rows.groupby("channel", sort=False, dropna=False):
            part = part.sort_values("start_time", kind="mergesort")
            streams.append(
                stream_events(
                    str(file),
                    None if pd.isna(channel) else int(channel),
                    part["start_time"].to_numpy(np.float64),
                    part["end_time"].to_numpy(np.float64),
                    part[detector.classes].to_numpy(np.float32),
                    detector,
                    options,
                )
            )
        events += _sorted(streams)
    return events_frame(events)
