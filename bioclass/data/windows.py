"""Annotated recordings as a source of training windows: which stretches are known, which boxes
lie in them, and the multi-hot target of any window.

A window of the model's length is cut anywhere inside a known stretch (an annotated extent, a
reviewed detection, a labelled clip). Its target holds 1 for every class with a box that
overlaps it enough (`OverlapRule`), 0 for the others; a window without a positive class is
background. When the class list has the background label, that class is 1 exactly when no
other class is (so the scan's top-class rule can still pick "nothing here").

Times are seconds in the recording; window starts are sample numbers at the model's rate, so a
window is the same samples whoever reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EPS = 1e-9  # seconds: rounding slack when an overlap is compared with its requirement


@dataclass(frozen=True)
class OverlapRule:
    """When a box makes a window positive for its class.

    A box overlapping a window by at least `min_seconds`, or by at least `min_fraction` of the
    box's own length, makes it positive; a window lying wholly inside a box always is (so
    `min_seconds` longer than the window does not make long boxes useless). The fraction keeps
    short calls that fall wholly inside a window positive (their overlap is all of them);
    the seconds keep a window that catches a good part of a long song or chorus positive.
    """

    min_seconds: float = 0.1
    min_fraction: float = 0.5

    def required(self, box_seconds: np.ndarray, window_seconds: float) -> np.ndarray:
        """(n,) overlap in seconds each box needs with a window."""
        box_seconds = np.asarray(box_seconds, dtype=np.float64)
        return np.minimum(min(self.min_seconds, window_seconds), self.min_fraction * box_seconds)


@dataclass
class WindowCorpus:
    """Recordings, their known stretches and boxes, and the window length.

    Attributes:
        files: recording paths; everything else refers to them by index (`rec`).
        classes: the class names; box `cls` indexes into it.
        sample_rate: the model's rate (window starts count in its samples).
        n_samples: window length in samples.
        stretches: rec, start_time, end_time: known time, merged where it overlaps; windows
            are cut inside it.
        negatives: rec, start_time, end_time: stretches known to hold none of the classes
            (reviewed `no`, labelled background clips), drawn on purpose as hard negatives.
        boxes: rec, start_time, end_time, cls, required (overlap in seconds that makes a
            window positive), stretch (index of the stretch it lies in most).
        background: index of the background class in `classes`, or None.
    """

    files: list[str]
    classes: list[str]
    sample_rate: int
    n_samples: int
    stretches: pd.DataFrame
    negatives: pd.DataFrame
    boxes: pd.DataFrame
    background: int | None = None

    @classmethod
    def build(
        cls,
        files: list[str],
        classes: list[str],
        sample_rate: int,
        n_samples: int,
        stretches: pd.DataFrame,
        negatives: pd.DataFrame,
        boxes: pd.DataFrame,
        rule: OverlapRule,
        background: int | None = None,
    ) -> WindowCorpus:
        """A corpus from raw tables (rec, start_time, end_time[, cls]): stretches merged per
        recording (negatives are stretches too), each box given its requirement and stretch."""
        known = pd.concat([stretches, negatives], ignore_index=True)
        merged = merge_stretches(known)
        boxes = boxes.reset_index(drop=True).copy()
        window = n_samples / sample_rate
        boxes["required"] = rule.required(boxes["end_time"] - boxes["start_time"], window)
        boxes["stretch"] = _home_stretch(boxes, merged)
        boxes = boxes.sort_values(["rec", "start_time"], kind="mergesort").reset_index(drop=True)
        negatives = negatives[["rec", "start_time", "end_time"]].reset_index(drop=True)
        return cls(files, classes, sample_rate, n_samples, merged, negatives, boxes, background)

    @property
    def window_seconds(self) -> float:
        return self.n_samples / self.sample_rate

    def part(self, recordings: np.ndarray) -> WindowCorpus:
        """The same corpus restricted to the recordings where `recordings` (bool, per file) is
        True (indices stay those of `files`)."""
        keep = np.asarray(recordings, dtype=bool)
        stretch_kept = keep[self.stretches["rec"].to_numpy()]
        renumber = np.cumsum(stretch_kept) - 1
        boxes = self.boxes[keep[self.boxes["rec"].to_numpy()]].copy()
        home = boxes["stretch"].to_numpy()
        boxes["stretch"] = np.where(home >= 0, renumber[np.maximum(home, 0)], -1)
        return WindowCorpus(
            self.files,
            self.classes,
            self.sample_rate,
            self.n_samples,
            self.stretches[stretch_kept].reset_index(drop=True),
            self.negatives[keep[self.negatives["rec"].to_numpy()]].reset_index(drop=True),
            boxes.reset_index(drop=True),
            self.background,
        )

    def start_range(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) int64: first and last window start (samples) that keeps a window inside
        each stretch of `table`; a stretch shorter than the window has one start, its own."""
        sr = self.sample_rate
        lo = np.ceil(table["start_time"].to_numpy() * sr - EPS).astype(np.int64)
        hi = np.floor(table["end_time"].to_numpy() * sr + EPS).astype(np.int64) - self.n_samples
        return lo, np.maximum(lo, hi)

    def positive_range(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) int64 per box: the window starts that make the box's class positive and
        keep the window inside the box's stretch. Where the two do not meet (a box at the edge
        of a stretch shorter than the window), the start nearest to centring the box."""
        sr, n = self.sample_rate, self.n_samples
        b = self.boxes["start_time"].to_numpy()
        e = self.boxes["end_time"].to_numpy()
        m = self.boxes["required"].to_numpy()
        window = n / sr
        lo = np.ceil((b - window + m) * sr - EPS).astype(np.int64)
        hi = np.floor((e - m) * sr + EPS).astype(np.int64)
        s_lo, s_hi = self.start_range(self.stretches)
        home = self.boxes["stretch"].to_numpy()
        s_lo, s_hi = s_lo[home], s_hi[home]
        lo, hi = np.maximum(lo, s_lo), np.minimum(hi, s_hi)
        centred = np.clip(np.round((b + e) / 2 * sr - n / 2).astype(np.int64), s_lo, s_hi)
        empty = hi < lo
        return np.where(empty, centred, lo), np.where(empty, centred, hi)

    def targets(self, rec: int, start: int) -> np.ndarray:
        """(C,) float32 multi-hot target of the window starting at sample `start` of `rec`."""
        return self.targets_of(np.array([rec]), np.array([start]))[0]

    def targets_of(self, recs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """(N, C) float32 targets of windows given by recording and start sample."""
        out = np.zeros((len(recs), len(self.classes)), dtype=np.float32)
        box_rec = self.boxes["rec"].to_numpy()
        b = self.boxes["start_time"].to_numpy()
        e = self.boxes["end_time"].to_numpy()
        m = self.boxes["required"].to_numpy()
        c = self.boxes["cls"].to_numpy()
        bounds = np.searchsorted(box_rec, np.arange(len(self.files) + 1))
        longest = np.zeros(len(self.files))  # per recording: how far back a box can start
        np.maximum.at(longest, box_rec, e - b)
        for i, (rec, start) in enumerate(zip(recs, starts, strict=True)):
            lo, hi = bounds[rec], bounds[rec + 1]
            if hi == lo:
                continue
            t0 = start / self.sample_rate
            t1 = t0 + self.window_seconds
            # Boxes are sorted by start within a recording: only those starting before the
            # window ends, and late enough to reach into it, can overlap it.
            first = lo + np.searchsorted(b[lo:hi], t0 - longest[rec] - EPS, side="left")
            last = lo + np.searchsorted(b[lo:hi], t1, side="left")
            overlap = np.minimum(t1, e[first:last]) - np.maximum(t0, b[first:last])
            out[i, c[first:last][overlap >= m[first:last] - EPS]] = 1.0
        if self.background is not None:
            others = np.delete(out, self.background, axis=1)
            out[:, self.background] = (others.max(axis=1, initial=0.0) == 0).astype(np.float32)
        return out

    def grid(self, hop_samples: int) -> pd.DataFrame:
        """rec, start: windows `hop_samples` apart over every stretch, the last one ending at
        the stretch's end (validation's fixed windows, the same every time)."""
        lo, hi = self.start_range(self.stretches)
        recs, starts = [], []
        for rec, a, z in zip(self.stretches["rec"].to_numpy(), lo, hi, strict=True):
            s = np.arange(a, z + 1, max(1, hop_samples), dtype=np.int64)
            if s[-1] != z:
                s = np.append(s, z)
            recs.append(np.full(len(s), rec, dtype=np.int64))
            starts.append(s)
        if not recs:
            return pd.DataFrame({"rec": np.zeros(0, np.int64), "start": np.zeros(0, np.int64)})
        return pd.DataFrame({"rec": np.concatenate(recs), "start": np.concatenate(starts)})

    def annotated_seconds(self) -> float:
        """Total length of the known stretches."""
        return float((self.stretches["end_time"] - self.stretches["start_time"]).sum())


def merge_stretches(table: pd.DataFrame) -> pd.DataFrame:
    """rec, start_time, end_time: each recording's stretches sorted and joined where they
    overlap or touch."""
    rows = []
    ordered = table.sort_values(["rec", "start_time"], kind="mergesort")
    for rec, start, end in zip(
        ordered["rec"].to_numpy(),
        ordered["start_time"].to_numpy(dtype=float),
        ordered["end_time"].to_numpy(dtype=float),
        strict=True,
    ):
        if rows and rows[-1][0] == rec and start <= rows[-1][2]:
            rows[-1][2] = max(rows[-1][2], end)
        else:
            rows.append([int(rec), start, end])
    return pd.DataFrame(rows, columns=["rec", "start_time", "end_time"]).astype(
        {"rec": np.int64, "start_time": float, "end_time": float}
    )


def _home_stretch(boxes: pd.DataFrame, stretches: pd.DataFrame) -> np.ndarray:
    """(n,) the stretch of its recording each box overlaps most (-1: none). `stretches` are
    merged: sorted and disjoint within each recording."""
    out = np.full(len(boxes), -1, dtype=np.int64)
    stretch_rec = stretches["rec"].to_numpy()
    xs = stretches["start_time"].to_numpy()
    xe = stretches["end_time"].to_numpy()
    bounds = np.searchsorted(stretch_rec, np.arange(int(stretch_rec.max(initial=-1)) + 2))
    for i, (rec, b, e) in enumerate(
        zip(
            boxes["rec"].to_numpy(),
            boxes["start_time"].to_numpy(),
            boxes["end_time"].to_numpy(),
            strict=True,
        )
    ):
        if rec + 1 >= len(bounds):
            continue
        lo, hi = bounds[rec], bounds[rec + 1]
        first = lo + max(np.searchsorted(xs[lo:hi], b, side="right") - 1, 0)
        last = lo + np.searchsorted(xs[lo:hi], e, side="left")
        if last <= first:
            continue
        overlap = np.minimum(xe[first:last], e) - np.maximum(xs[first:last], b)
        if overlap.max() > 0:
            out[i] = first + int(np.argmax(overlap))
    return out
