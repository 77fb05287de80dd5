"""`bioclass review`: selecting detections (top, seeded random, stratified), cutting clips with
context, the Raven table read back by bioclass's own reader, verdicts from annotation tables,
reading a filled review.csv back with its errors, and never overwriting verdicts silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from helpers import run_cli

from bioclass.annotations import read_annotations
from bioclass.core.errors import BioclassError
from bioclass.review import (
    STRATEGIES,
    ReviewOptions,
    cut_clip,
    fill_verdicts,
    make_review,
    read_review,
    select_detections,
)
from bioclass.review.report import print_review_report
from bioclass.review.select import allocate, score_bins

SR = 8000
DETECTION_HEADER = "file,start_time,end_time,label,score,mean_score,n_windows\n"


def error(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, "messages are one line"
    assert isinstance(exc.value, BioclassError)
    return message


def recording(path: Path, seconds: float, channels: int = 1, subtype: str = "PCM_16") -> Path:
    """Noise (every sample different), so a clip taken from the wrong place cannot match."""
    rng = np.random.default_rng(len(path.name))
    shape = (int(round(seconds * SR)), channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), rng.uniform(-0.9, 0.9, shape).astype(np.float32), SR, subtype=subtype)
    return path


def detections_table(rows: list[tuple]) -> pd.DataFrame:
    """A detections table as `read_detections` gives it: (file, start, end, label, score)."""
    table = pd.DataFrame(rows, columns=["file", "start_time", "end_time", "label", "score"])
    table["channel"] = pd.array([None] * len(rows), dtype="Int64")
    table["row"] = np.arange(2, len(rows) + 2)
    return table


def write_detections(path: Path, rows: list[tuple]) -> Path:
    lines = [f"{f},{s},{e},{label},{score},{score},1\n" for f, s, e, label, score in rows]
    path.write_text(DETECTION_HEADER + "".join(lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- selection

# Ten trills scored 0.10 ... 1.00 (two of them tied at 0.80) and three barks.
TABLE = detections_table(
    [(f"r{i % 3}.wav", float(i), i + 0.5, "trill", s) for i, s in enumerate(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.8, 0.9, 1.0]
    )]
    + [("r9.wav", 1.0, 2.0, "bark", 0.7), ("r9.wav", 5.0, 6.0, "bark", 0.6),
       ("r9.wav", 3.0, 4.0, "bark", 0.9)]
)  # fmt: skip


def picked(table: pd.DataFrame) -> list[tuple[str, float, int]]:
    return list(zip(table["label"], table["start_time"], table["rank"], strict=True))


def test_top_takes_the_highest_scores_per_class_ties_by_file_and_time() -> None:
    top = select_detections(TABLE, "top", per_class=4)
    # bark first (label order), all three ranked by score; trill: 1.0, 0.9, then the tie at
    # 0.8 (r0.wav 6 s and r1.wav 7 s) in file order.
    assert picked(top) == [
        ("bark", 3.0, 1), ("bark", 1.0, 2), ("bark", 5.0, 3),
        ("trill", 9.0, 1), ("trill", 8.0, 2), ("trill", 6.0, 3), ("trill", 7.0, 4),
    ]  # fmt: skip
    shuffled = TABLE.sample(frac=1.0, random_state=3)
    assert picked(select_detections(shuffled, "top", per_class=4)) == picked(top)


def test_random_is_seeded_per_class_and_independent_of_row_order() -> None:
    first = select_detections(TABLE, "random", per_class=4, seed=7)
    again = select_detections(TABLE.sample(frac=1.0, random_state=1), "random", 4, seed=7)
    assert picked(first) == picked(again)
    trills = first[first["label"] == "trill"]
    assert len(trills) == 4 and trills["start_time"].is_unique
    assert list(trills["score"]) == sorted(trills["score"], reverse=True)  # ranked by score
    # Leaving a class out does not move the draws of another.
    alone = select_detections(TABLE, "random", per_class=4, seed=7, labels=["trill"])
    assert picked(alone) == picked(trills)
    draws = {tuple(select_detections(TABLE, "random", 4, seed=s)["start_time"]) for s in range(6)}
    assert len(draws) > 1, "the seed changes the draw"


def test_equal_width_bins_and_allocation() -> None:
    scores = np.array([0.5, 0.58, 0.65, 0.79, 0.9, 0.55, 0.9])  # edges 0.5, 0.6, ... 0.9
    assert list(score_bins(scores, 4)) == [0, 0, 1, 2, 3, 0, 3]
    assert list(score_bins(np.array([0.4, 0.4]), 3)) == [0, 0]
    assert allocate([3, 3, 3], 4) == [2, 1, 1]  # the remainder to the lowest bins
    assert allocate([3, 0, 0, 0, 7], 4) == [2, 0, 0, 0, 2]  # empty bins give theirs away
    assert allocate([1, 1, 1, 1, 6], 7) == [1, 1, 1, 1, 3]
    assert allocate([1, 2], 10) == [1, 2]


def test_stratified_covers_every_bin() -> None:
    # Scores 0.1-1.0 in 5 bins of width 0.18, two trills each: (0.1, 0.2), (0.3, 0.4),
    # (0.5, 0.6), (0.8, 0.8), (0.9, 1.0). Seven picks: two from each of the two lowest bins,
    # one from each other bin.
    table = TABLE[TABLE["label"] == "trill"]
    chosen = select_detections(table, "stratified", per_class=7, bins=5, seed=0)
    bins = score_bins(table["score"].to_numpy(), 5)
    by_bin = pd.Series(bins, index=table["start_time"])[chosen["start_time"]].value_counts()
    assert by_bin.sort_index().to_dict() == {0: 2, 1: 2, 2: 1, 3: 1, 4: 1}
    assert list(chosen["rank"]) == list(range(1, 8))
    again = select_detections(table.iloc[::-1], "stratified", per_class=7, bins=5, seed=0)
    assert picked(again) == picked(chosen)


def test_unknown_label_is_named_with_the_closest() -> None:
    with pytest.raises(BioclassError) as exc:
        select_detections(TABLE, "top", 3, labels=["tril"])
    assert "did you mean 'trill'" in error(exc)


# -------------------------------------------------------------------------------------- clips


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_clip_is_the_padded_excerpt_clamped_to_the_recording(tmp_path: Path, fmt: str) -> None:
    source = recording(tmp_path / "rec.wav", 10.0, channels=2)
    samples, _ = sf.read(source, dtype="int16")
    cases = [  # detection, pad -> clip frames
        ((2.0, 3.0), 0.5, (12000, 28000)),
        ((0.2, 1.0), 0.5, (0, 12000)),  # clamped at the start
        ((9.5, 10.0), 1.0, (68000, 80000)),  # clamped at the end
    ]
    for (start, end), pad, (first, stop) in cases:
        clip = cut_clip(str(source), tmp_path / f"c{start}.{fmt}", start, end, pad, fmt=fmt)
        data, rate = sf.read(clip.path, dtype="int16")
        assert rate == SR and clip.start_frame == first and clip.n_frames == stop - first
        np.testing.assert_array_equal(data, samples[first:stop])
    one = cut_clip(str(source), tmp_path / f"ch1.{fmt}", 2.0, 3.0, 0.0, channel=1, fmt=fmt)
    np.testing.assert_array_equal(sf.read(one.path, dtype="int16")[0], samples[16000:24000, 1])


def test_24_bit_flac_clip_is_exact(tmp_path: Path) -> None:
    source = recording(tmp_path / "rec24.wav", 2.0, subtype="PCM_24")
    clip = cut_clip(str(source), tmp_path / "c.flac", 0.5, 1.0, 0.25)
    assert sf.info(str(clip.path)).subtype == "PCM_24"
    expected = sf.read(source, dtype="int32")[0][2000:10000]
    np.testing.assert_array_equal(sf.read(clip.path, dtype="int32")[0], expected)


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_nan_samples_of_a_float_recording_become_zero_in_the_clip(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "float.wav"
    wave = (np.sin(np.arange(2 * SR) / 10) * 0.3).astype(np.float32)
    wave[SR : SR + 5] = np.nan
    wave[SR + 100] = np.inf
    sf.write(source, wave, SR, subtype="FLOAT")
    clip = cut_clip(str(source), tmp_path / f"c.{fmt}", 0.5, 1.5, 0.0, fmt=fmt)
    data, _ = sf.read(clip.path, dtype="float32")
    assert clip.n_nonfinite == 6 and np.isfinite(data).all()
    assert (data[SR // 2 : SR // 2 + 5] == 0).all() and data[SR // 2 + 100] == 0
    np.testing.assert_allclose(data[: SR // 2], wave[SR // 2 : SR], atol=1e-6)  # the rest kept
    # The review says which clips were repaired, in one line.
    det = write_detections(tmp_path / "det.csv", [(source, 0.5, 1.5, "trill", 0.9)])
    summary = make_review(det, ReviewOptions(out=tmp_path / f"review_{fmt}", clip_format=fmt))
    assert [n for _, n in summary.nonfinite] == [6]
    print_review_report(summary, det, ReviewOptions(out=tmp_path / f"review_{fmt}"))
    assert "1 clip(s) held NaN/Inf samples" in capsys.readouterr().err


# ------------------------------------------------------------------- review folder, Raven table


@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, Path]:
    """Two 10 s recordings and a detections CSV of four detections on them."""
    a = recording(tmp_path / "audio" / "site A" / "a.wav", 10.0)
    b = recording(tmp_path / "audio" / "b.wav", 10.0)
    det = write_detections(
        tmp_path / "det.csv",
        [
            (a, 0.5, 1.5, "trill", 0.9),  # clip clamped at the start (pad 1)
            (a, 4.0, 5.0, "bark", 0.8),
            (b, 9.2, 10.0, "trill", 0.7),  # clamped at the end
            (b, 2.0, 3.0, "trill", 0.6),
        ],
    )
    return {"a": a, "b": b, "det": det, "out": tmp_path / "review"}


def test_review_folder_and_raven_table_read_back(corpus: dict[str, Path]) -> None:
    out = corpus["out"]
    summary = make_review(corpus["det"], ReviewOptions(out=out, strategy="top", pad=1.0))
    assert summary.per_class == {"bark": 1, "trill": 3} and not summary.failed
    review = pd.read_csv(out / "review.csv", keep_default_na=False)
    assert list(review.columns) == [
        "file", "start_time", "end_time", "label", "score", "clip", "verdict",
    ]  # fmt: skip
    assert list(review["clip"]) == [
        "bark/0001_a_4.000.flac",
        "trill/0001_a_0.500.flac",
        "trill/0002_b_9.200.flac",
        "trill/0003_b_2.000.flac",
    ]
    assert list(review["clip"]) == sorted(review["clip"]), "file names sort in listening order"
    assert (review["verdict"] == "").all()
    assert review["file"][0] == str(corpus["a"].resolve())
    lengths = [sf.info(str(out / c)).duration for c in review["clip"]]
    assert lengths == pytest.approx([3.0, 2.5, 1.8, 3.0])

    boxes = read_annotations(out / "review.selections.txt").boxes
    assert list(boxes["file"]) == [str((out / c).resolve()) for c in review["clip"]]
    assert list(boxes["label"]) == list(review["label"])
    # Each selection is the detection inside its clip: after the pad, or clamped.
    assert list(boxes["start_time"]) == pytest.approx([1.0, 0.5, 1.0, 1.0])
    assert list(boxes["end_time"]) == pytest.approx([2.0, 1.5, 1.8, 2.0])
    raven = pd.read_csv(out / "review.selections.txt", sep="\t")
    # Raven's multi-file timeline: each clip starts where the previous one ended.
    starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    assert list(raven["Begin Time (s)"]) == pytest.approx(list(starts + boxes["start_time"]))
    # A review folder moved whole still reads: the clips are found beside the table.
    moved = out.rename(out.with_name("moved"))
    boxes = read_annotations(moved / "review.selections.txt").boxes
    assert list(boxes["file"]) == [str((moved / c).resolve()) for c in review["clip"]]


def test_detections_of_separate_channels(tmp_path: Path) -> None:
    stereo = recording(tmp_path / "stereo.wav", 4.0, channels=2)
    det = tmp_path / "det.csv"
    det.write_text(
        "file,start_time,end_time,label,score,mean_score,n_windows,channel\n"
        f"{stereo},1.0,2.0,trill,0.9,0.9,1,1\n{stereo},1.0,2.0,trill,0.8,0.8,1,0\n",
        encoding="utf-8",
    )
    make_review(det, ReviewOptions(out=tmp_path / "r", strategy="top", pad=0.5))
    table = read_review(tmp_path / "r" / "review.csv")
    assert list(table["channel"]) == [1, 0]
    assert [Path(c).name for c in table["clip"]] == [
        "0001_stereo_1.000_ch1.flac",
        "0002_stereo_1.000_ch0.flac",
    ]
    samples = sf.read(stereo, dtype="int16")[0]
    for clip, channel in zip(table["clip"], table["channel"], strict=True):
        np.testing.assert_array_equal(sf.read(clip, dtype="int16")[0], samples[4000:20000, channel])


def test_unreadable_recordings_are_skipped_and_listed(corpus: dict[str, Path]) -> None:
    broken = corpus["det"].parent / "broken.wav"
    broken.write_bytes(b"not audio at all")
    rows = pd.read_csv(corpus["det"])
    extra = [(broken, 1.0, 2.0, "trill", 0.99), ("gone.wav", 1.0, 2.0, "trill", 0.95)]
    write_detections(
        corpus["det"], [tuple(r) for r in rows.iloc[:, :5].itertuples(index=False)] + extra
    )
    summary = make_review(corpus["det"], ReviewOptions(out=corpus["out"], strategy="top"))
    assert summary.per_class == {"bark": 1, "trill": 3} and summary.n_skipped == 2
    failed = pd.read_csv(corpus["out"] / "failed.csv")
    assert len(failed) == 2
    assert "cannot decode" in failed["error"][0] and "tried" in failed["error"][1]


def test_empty_detections_write_an_empty_review(tmp_path: Path) -> None:
    for name, text in (("header.csv", DETECTION_HEADER), ("blank.csv", "")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        out = tmp_path / f"rev_{name}"
        code, output = run_cli("review", tmp_path / name, "--out", out)
        assert code == 0 and "holds no detections" in output
        assert (out / "review.csv").read_text().strip() == (
            "file,start_time,end_time,label,score,clip,verdict"
        )
        assert not (out / "review.selections.txt").exists()  # nothing to play


@pytest.mark.parametrize(
    "text, args, expected",
    [
        ("file,start_time,end_time,label\nx.wav,1,2,a\n", (), "missing column 'score'"),
        (DETECTION_HEADER + "x.wav,1,one,a,0.5,0.5,1\n", (), "row 2: end_time must be a number"),
        (DETECTION_HEADER, ("--strategy", "top", "--bins", "3"), "--bins is for"),
    ],
)
def test_bad_detections_and_options(tmp_path: Path, text: str, args: tuple, expected: str) -> None:
    (tmp_path / "det.csv").write_text(text, encoding="utf-8")
    code, output = run_cli("review", tmp_path / "det.csv", "--out", tmp_path / "r", *args)
    assert code == 1 and expected in output and "Traceback" not in output


def test_output_folder_that_is_a_file(corpus: dict[str, Path]) -> None:
    corpus["out"].write_text("a file", encoding="utf-8")
    code, output = run_cli("review", corpus["det"], "--out", corpus["out"])
    assert code == 1 and "is a file, not a folder" in output
    code, output = run_cli("review", corpus["det"], "--out", corpus["out"] / "sub")
    assert code == 1 and "cannot create the review folder" in output


def test_cli_offers_every_strategy() -> None:
    from bioclass.cli import review

    choices = next(p for p in review.params if p.name == "strategy").type.choices
    assert tuple(choices) == STRATEGIES


# ------------------------------------------------------------------------------------ verdicts


def test_verdicts_from_an_annotation_table(corpus: dict[str, Path], tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "file,start_time,end_time,label\n"
        f"{corpus['a']},1.0,1.4,trill\n"  # the trill at 0.5-1.5 overlaps it: yes
        f"{corpus['a']},4.5,4.7,harmonic\n"  # the 'bark' at 4-5 is a harmonic
        f"{corpus['a']},4.8,6.0,pulses\n"  # ... overlapping less of pulses
        f"{corpus['b']},5.0,6.0,trill\n",  # b's trills at 2-3 and 9.2-10: no
        encoding="utf-8",
    )
    summary = make_review(
        corpus["det"], ReviewOptions(out=corpus["out"], strategy="top", verdicts_from=(truth,))
    )
    review = pd.read_csv(corpus["out"] / "review.csv", keep_default_na=False)
    assert list(review["verdict"]) == ["harmonic", "yes", "no", "no"]
    assert summary.verdicts == {"no": 2, "yes": 1, "harmonic": 1} and not summary.uncovered


def test_verdicts_over_boxes_of_several_classes(
    corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A detection over boxes of two classes gets one verdict: `yes` when its own class is one
    of them (however little of it), else the class it overlaps most; such clips are counted
    and reported."""
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "file,start_time,end_time,label\n"
        f"{corpus['a']},0.5,1.4,pulses\n"  # the trill detection at 0.5-1.5: mostly pulses ...
        f"{corpus['a']},1.4,1.5,trill\n"  # ... and a sliver of trill: still yes
        f"{corpus['a']},4.0,4.4,harmonic\n"  # the 'bark' at 4-5: harmonic 0.4 s ...
        f"{corpus['a']},4.5,5.0,pulses\n",  # ... against pulses 0.5 s: pulses
        encoding="utf-8",
    )
    options = ReviewOptions(out=corpus["out"], strategy="top", verdicts_from=(truth,))
    summary = make_review(corpus["det"], options)
    review = pd.read_csv(corpus["out"] / "review.csv", keep_default_na=False)
    assert list(review["verdict"]) == ["pulses", "yes", "", ""]  # b: not covered
    assert summary.n_mixed == 2
    print_review_report(summary, corpus["det"], options)
    assert "2 clip(s) overlap boxes of several classes" in capsys.readouterr().err
    single = tmp_path / "single.csv"
    single.write_text(f"file,start_time,end_time,label\n{corpus['a']},1.0,1.4,trill\n")
    again = ReviewOptions(out=tmp_path / "again", strategy="top", verdicts_from=(single,))
    assert make_review(corpus["det"], again).n_mixed == 0


def test_only_covered_recordings_get_verdicts(corpus: dict[str, Path], tmp_path: Path) -> None:
    labels = tmp_path / "a.txt"  # Audacity labels beside nothing: its recording is given
    labels.write_text("0.0\t1.0\ttrill\n", encoding="utf-8")
    annotations = read_annotations(labels, audio=corpus["a"])
    review = pd.DataFrame(
        {
            "file": [str(corpus["a"].resolve()), str(corpus["b"].resolve())],
            "start_time": [0.5, 0.5],
            "end_time": [1.5, 1.5],
            "label": ["trill", "trill"],
            "verdict": ["", ""],
        }
    )
    filled, uncovered = fill_verdicts(review, annotations)
    assert list(filled["verdict"]) == ["yes", ""]
    assert uncovered == [str(corpus["b"].resolve())]


# --------------------------------------------------------------------------- reading review.csv


@pytest.fixture
def reviewed(corpus: dict[str, Path]) -> Path:
    make_review(corpus["det"], ReviewOptions(out=corpus["out"], strategy="top"))
    return corpus["out"] / "review.csv"


def set_verdicts(path: Path, verdicts: list[str], **columns: list) -> None:
    table = pd.read_csv(path, keep_default_na=False)
    table["verdict"] = verdicts
    for name, values in columns.items():
        table[name] = values
    table.to_csv(path, index=False)


def test_read_review_normalises_verdicts(reviewed: Path) -> None:
    set_verdicts(reviewed, ["YES", "no", "pulses", "trill"])
    table = read_review(reviewed, classes=["bark", "pulses", "trill"])
    assert list(table["verdict"]) == ["yes", "no", "pulses", "yes"]
    assert all(Path(c).is_file() for c in table["clip"])
    assert list(table["row"]) == [2, 3, 4, 5]


def test_read_review_errors(reviewed: Path, corpus: dict[str, Path]) -> None:
    classes = ["bark", "pulses", "trill"]
    set_verdicts(reviewed, ["yes", "tril", "", ""])
    with pytest.raises(BioclassError) as exc:
        read_review(reviewed, classes)
    assert "row 3: verdict 'tril' is not yes, no or a class" in error(exc)
    assert "did you mean 'trill'" in error(exc)

    # b's trills at 2-3 s and 2.5-3.5 s overlap: 'yes' and 'no' on one sound contradict.
    set_verdicts(reviewed, ["", "", "yes", "no"], start_time=[4.0, 0.5, 2.5, 2.0],
                 end_time=[5.0, 1.5, 3.5, 3.0])  # fmt: skip
    with pytest.raises(BioclassError) as exc:
        read_review(reviewed, classes)
    assert "row 5: verdict 'no'" in error(exc) and "contradicts row 4" in error(exc)
    # ... as do 'this is a bark' and, on the same sound, 'bark: no'.
    set_verdicts(reviewed, ["no", "bark", "", ""], start_time=[0.8, 0.5, 9.2, 2.0],
                 end_time=[1.2, 1.5, 10.0, 3.0])  # fmt: skip
    with pytest.raises(BioclassError) as exc:
        read_review(reviewed, classes)
    assert "whether bark is there" in error(exc)

    set_verdicts(reviewed, ["", "", "", ""])
    (reviewed.parent / "trill/0002_b_9.200.flac").unlink()
    with pytest.raises(BioclassError) as exc:
        read_review(reviewed, classes)
    assert "row 4: clip not found" in error(exc) and "trill/0002_b_9.200.flac" in error(exc)

    corpus["a"].rename(corpus["a"].with_name("moved.wav"))
    with pytest.raises(BioclassError) as exc:
        read_review(reviewed, classes)
    assert "row 2: audio file not found" in error(exc) and f"tried {corpus['a']}" in error(exc)

    table = pd.read_csv(reviewed, keep_default_na=False).drop(columns=["verdict", "clip"])
    table.to_csv(reviewed, index=False)
    with pytest.raises(BioclassError) as exc:
        read_review(reviewed, classes)
    assert "missing column(s) 'clip', 'verdict'" in error(exc)


# ---------------------------------------------------------------------------------- re-running


def test_rerun_refuses_to_overwrite_verdicts(reviewed: Path, corpus: dict[str, Path]) -> None:
    out = corpus["out"]
    # Without verdicts a re-run replaces the review; clips it no longer lists are removed.
    summary = make_review(corpus["det"], ReviewOptions(out=out, strategy="top", per_class=1))
    assert summary.n_removed == 2 and not (out / "trill/0002_b_9.200.flac").exists()
    set_verdicts(reviewed, ["yes", "no"])
    before = reviewed.read_text()
    code, output = run_cli("review", corpus["det"], "--out", out)
    assert code == 1 and "already holds 2 verdict(s)" in output and "--force" in output
    assert reviewed.read_text() == before
    code, _ = run_cli("review", corpus["det"], "--out", out, "--force", "--strategy", "top")
    assert code == 0
    assert pd.read_csv(reviewed, keep_default_na=False)["verdict"].eq("").all()
