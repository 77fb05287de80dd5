"""Windows of annotated recordings as units: the overlap rule and multi-hot targets, the start
ranges that make a box positive, the balanced window sampler, on-demand reads that touch only a
window's frames, the grouped split of recordings, and MixUp's union of targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr
import torch

import bioclass.audio.window as window_module
from bioclass.audio import audio_info
from bioclass.audio.window import RESAMPLE_MARGIN_S, read_window
from bioclass.augment.spec import mixup
from bioclass.core.errors import BioclassError
from bioclass.data.clips import ClipSpec
from bioclass.data.window_dataset import FixedWindows, TrainingWindows
from bioclass.data.window_sampler import WindowBatchSampler
from bioclass.data.window_split import merged_groups, split_recordings
from bioclass.data.windows import OverlapRule, WindowCorpus

SR = 100  # samples per second: window starts and times are easy to read


def corpus(
    boxes: list[tuple],
    stretches: list[tuple] | None = None,
    negatives: list[tuple] = (),
    classes: tuple[str, ...] = ("a", "b"),
    window: float = 1.0,
    rule: OverlapRule | None = None,
    files: int = 2,
) -> WindowCorpus:
    """A corpus of `files` recordings 10 s long (whole stretches unless given)."""
    stretches = stretches if stretches is not None else [(r, 0.0, 10.0) for r in range(files)]
    classes = list(classes)
    background = classes.index("background") if "background" in classes else None
    return WindowCorpus.build(
        [f"rec{r}.wav" for r in range(files)],
        classes,
        SR,
        int(window * SR),
        pd.DataFrame(stretches, columns=["rec", "start_time", "end_time"]),
        pd.DataFrame(list(negatives), columns=["rec", "start_time", "end_time"]),
        pd.DataFrame(
            [(r, s, e, classes.index(c)) for r, s, e, c in boxes],
            columns=["rec", "start_time", "end_time", "cls"],
        ),
        rule or OverlapRule(0.1, 0.5),
        background,
    )


def test_overlap_rule_seconds_fraction_and_whole_window() -> None:
    rule = OverlapRule(min_seconds=0.1, min_fraction=0.5)
    # A 0.1 s call needs 0.05 s (half of it); a 4 s song needs 0.1 s; a window shorter than
    # min_seconds needs only itself.
    assert rule.required(np.array([0.1, 4.0]), 1.0) == pytest.approx([0.05, 0.1])
    assert rule.required(np.array([4.0]), 0.05) == pytest.approx([0.05])


def test_targets_follow_the_overlap_rule() -> None:
    c = corpus([(0, 2.0, 2.1, "a"), (0, 4.0, 8.0, "b"), (0, 4.5, 4.7, "a")])
    at = lambda start: c.targets(0, int(round(start * SR)))  # noqa: E731
    assert at(1.5).tolist() == [1, 0]  # the 0.1 s call wholly inside
    assert at(1.06).tolist() == [1, 0]  # 0.06 s of it: more than half
    assert at(1.04).tolist() == [0, 0]  # 0.04 s: less than half and less than 0.1 s
    assert at(3.1).tolist() == [0, 1]  # exactly 0.1 s of the 4 s box
    assert at(3.09).tolist() == [0, 0]  # 0.09 s: less than 0.1 s and far less than half
    assert at(5.0).tolist() == [0, 1]  # wholly inside the long box
    assert at(4.0).tolist() == [1, 1]  # overlapping boxes: both classes
    assert at(0.0).tolist() == [0, 0]  # background
    assert c.targets(1, 400).tolist() == [0, 0]  # another recording's boxes do not count


def test_background_class_is_one_exactly_when_no_other_is() -> None:
    c = corpus([(0, 2.0, 3.0, "a")], classes=("a", "background", "b"))
    assert c.targets(0, 200).tolist() == [1, 0, 0]
    assert c.targets(0, 600).tolist() == [0, 1, 0]


def test_positive_range_makes_the_box_positive_and_stays_in_the_stretch() -> None:
    c = corpus(
        [(0, 2.0, 2.2, "a"), (0, 4.0, 8.0, "b"), (1, 0.1, 0.3, "a")],
        stretches=[(0, 0.0, 10.0), (1, 0.0, 0.5)],
    )
    lo, hi = c.positive_range()
    for k in range(len(c.boxes)):
        box = c.boxes.iloc[k]
        for start in range(lo[k], hi[k] + 1):
            assert c.targets(int(box["rec"]), start)[int(box["cls"])] == 1
        stretch = c.stretches.iloc[int(box["stretch"])]
        assert lo[k] >= stretch["start_time"] * SR
    # First box: 0.2 s call needs 0.1 s; starts from 1.1 s to 2.1 s.
    assert (lo[0], hi[0]) == (110, 210)
    for start in (109, 211):
        assert c.targets(0, start)[0] == 0
    # Third box: its stretch (0.5 s) is shorter than the window: the one start there is.
    assert (lo[2], hi[2]) == (0, 0)


def test_grid_covers_every_stretch_to_its_end() -> None:
    c = corpus([(0, 2.0, 3.0, "a")], stretches=[(0, 0.0, 3.3), (1, 1.0, 1.5)])
    grid = c.grid(hop_samples=50)
    assert grid[grid["rec"] == 0]["start"].tolist() == [0, 50, 100, 150, 200, 230]
    assert grid[grid["rec"] == 1]["start"].tolist() == [100]  # shorter than the window


def test_sampler_balances_classes_and_draws_new_offsets() -> None:
    boxes = [(0, 1.0, 1.2, "a")] + [(r, s, s + 0.3, "b") for r in (0, 1) for s in (3.0, 5.0, 7.0)]
    c = corpus(boxes, negatives=[(1, 0.0, 2.0)])
    sampler = WindowBatchSampler(c, batch_size=12, seed=5, balanced=True, random_share=0.25)
    assert len(sampler.strata) == 3  # a, b, the hard negatives
    counts = np.zeros(3)
    for i in range(40):
        items = sampler.batch(i)
        assert len(items) == 12
        targets = np.stack([c.targets(r, s) for r, s, _ in items])
        in_negative = [r == 1 and s + 100 <= 200 for r, s, _ in items]
        counts += [targets[:, 0].sum(), targets[:, 1].sum(), sum(in_negative)]
    # 9 of 12 windows per batch go to the strata (3 each); class a has one box, b six, and a
    # is still drawn at least as often as its stratum says.
    assert counts[0] >= 40 * 3
    assert counts[2] >= 40 * 3
    assert sampler.batch(7) == WindowBatchSampler(c, 12, 5, True, 0.25).batch(7)
    starts_of_a = {s for i in range(40) for r, s, _ in sampler.batch(i) if r == 0 and s < 150}
    assert len(starts_of_a) > 10  # the one box of a is seen at many offsets


def test_unbalanced_sampler_draws_random_windows_only() -> None:
    c = corpus([(0, 1.0, 1.2, "a"), (1, 3.0, 3.5, "b")], stretches=[(0, 0.0, 10.0), (1, 0.0, 2.0)])
    sampler = WindowBatchSampler(c, batch_size=64, seed=0, balanced=False, random_share=0.25)
    items = [item for i in range(10) for item in sampler.batch(i)]
    recs = np.array([r for r, _, _ in items])
    # Stretches are drawn by their number of starts: 901 in recording 0, 101 in recording 1.
    assert 0.05 < (recs == 1).mean() < 0.2
    assert all(0 <= s <= 100 for r, s, _ in items if r == 1)


class CountingReader:
    """A fake reader that records every read."""

    def __init__(self) -> None:
        self.reads: list[tuple[int, int, int]] = []

    def read(self, rec: int, start: int, n: int) -> np.ndarray:
        self.reads.append((rec, start, n))
        return np.full(n, float(rec), dtype=np.float32)


def test_datasets_read_one_window_per_item() -> None:
    c = corpus([(0, 2.0, 2.5, "a")])
    reader = CountingReader()
    spec = ClipSpec(SR, 1.0)
    train = TrainingWindows(c, reader, spec)
    wave, target = train[(0, 180, 1)]
    assert reader.reads == [(0, 180, 100)]
    assert wave.shape == (100,) and target.tolist() == [1, 0]
    val = FixedWindows(c, reader, spec, c.grid(50))
    assert len(reader.reads) == 1  # building the grid reads nothing
    for i in range(len(val)):
        val.full_wave(i)
    assert len(reader.reads) == 1 + len(val)
    assert {n for _, _, n in reader.reads} == {100}


def test_read_window_equals_the_whole_file_resampled(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "r.flac"
    x = rng.uniform(-0.5, 0.5, (48000 * 3, 2)).astype(np.float32)
    sf.write(str(path), x, 48000, subtype="PCM_24")
    decoded = sf.read(str(path), dtype="float32")[0].mean(axis=1)
    whole = soxr.resample(decoded, 48000, 16000, quality="HQ")
    info = audio_info(path)
    for start in (-300, 0, 7, 16001, 47000):
        got = read_window(path, info, 16000, start, 3200)
        want = np.zeros(3200, np.float32)
        lo, hi = max(start, 0), min(start + 3200, len(whole))
        want[lo - start : hi - start] = whole[lo:hi]
        assert np.abs(got - want).max() < 1e-5
    assert read_window(path, info, 16000, 0, 100, channel=1).shape == (100,)


def test_read_window_decodes_only_the_window_and_its_margin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.wav"
    sf.write(str(path), np.zeros(44100 * 20, np.float32), 44100, subtype="PCM_16")
    asked: list[tuple[int, int]] = []
    real = window_module._frames

    def spy(p, first, last, channel):
        asked.append((first, last))
        return real(p, first, last, channel)

    monkeypatch.setattr(window_module, "_frames", spy)
    read_window(path, audio_info(path), 16000, 16000 * 10, 3200)
    ((first, last),) = asked
    window_frames = 3200 * 44100 / 16000
    assert last - first <= window_frames + 2 * (RESAMPLE_MARGIN_S * 44100 + 441)
    assert first > 44100 * 9  # near second 10, not the start of the file


def test_groups_sharing_a_recording_merge() -> None:
    groups = merged_groups(np.array([0, 1, 1, 2, 3]), np.array(["s1", "s1", "s2", "s2", "s3"]))
    assert groups[0] == groups[1] == groups[2] == "s1"
    assert groups[3] == "s3"


def test_split_keeps_recordings_and_groups_on_one_side() -> None:
    files = [f"r{i}" for i in range(12)]
    rows = pd.DataFrame(
        {
            "rec": list(range(12)) * 2,
            "group": [f"site{i // 3}" for i in range(12)] * 2,
            "label": ["a"] * 12 + ["b"] * 12,
            "split": [None] * 24,
        }
    )
    split = split_recordings(rows, files, 0.25, seed=1)
    assert set(split) == {"train", "val"}
    for site in range(4):
        assert split[[3 * site, 3 * site + 1, 3 * site + 2]].nunique() == 1


def test_split_refuses_a_group_with_two_fixed_splits() -> None:
    rows = pd.DataFrame(
        {
            "rec": [0, 0, 1],
            "group": ["g", "g", "h"],
            "label": ["a"] * 3,
            "split": ["train", "val", "train"],
        }
    )
    with pytest.raises(BioclassError, match="r0 .*train and the val split"):
        split_recordings(rows, ["r0", "r1"], 0.5, 0)


def test_mixup_union_keeps_every_class_at_its_maximum() -> None:
    spec = torch.arange(8, dtype=torch.float32).reshape(4, 1, 1, 2)
    target = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.float32)
    mixed, union = mixup(spec, target, 0.4, np.random.default_rng(3), union=True)
    perm = np.random.default_rng(3)
    perm.beta(0.4, 0.4)
    order = perm.permutation(4)
    assert torch.equal(union, torch.maximum(target, target[order]))
    _, convex = mixup(spec, target, 0.4, np.random.default_rng(3))
    assert not torch.equal(convex, union)
