"""Tests for the data pipeline: label tables (folders, CSV), class checks, grouped splits,
duplicate detection, split assignment, prepare_data with broken files, sampler and clip dataset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bioclass.core.errors import BioclassError
from bioclass.data.clips import ClipDataset, ClipSpec
from bioclass.data.duplicates import find_duplicates
from bioclass.data.labels import (
    LabelError,
    check_known_labels,
    labels_from_csv,
    labels_from_folders,
    resolve_classes,
)
from bioclass.data.prepare import assign_splits, prepare_data
from bioclass.data.sampler import BatchSampler
from bioclass.data.split import grouped_split
from bioclass.recipe import recipe_from_dict

SR = 8000


def touch_wav(path: Path, make_sine, write_audio, freq: float = 300.0, seconds: float = 0.2):
    return write_audio(path, make_sine(freq, seconds, SR), SR, subtype="PCM_16")


# --- labels_from_folders ------------------------------------------------------------------------


def test_folders_find_nested_and_upper_case_extensions(tmp_path, make_sine, write_audio):
    root = tmp_path / "data"
    touch_wav(root / "owl" / "a.wav", make_sine, write_audio, 300)
    touch_wav(root / "owl" / "site1" / "day2" / "b.WAV", make_sine, write_audio, 310)
    write_audio(root / "wren" / "c.Flac", make_sine(400, 0.2, SR), SR, format="FLAC")
    touch_wav(root / "wren" / "deep" / "d.wav", make_sine, write_audio, 410)
    (root / "wren" / "notes.txt").write_text("not audio")
    (root / ".hidden").mkdir()
    touch_wav(root / ".hidden" / "x.wav", make_sine, write_audio, 500)

    table = labels_from_folders(root)
    found = {
        (Path(f).relative_to(root).as_posix(), label)
        for f, label in zip(table["file"], table["label"], strict=True)
    }
    assert found == {
        ("owl/a.wav", "owl"),
        ("owl/site1/day2/b.WAV", "owl"),
        ("wren/c.Flac", "wren"),
        ("wren/deep/d.wav", "wren"),
    }, found
    assert list(table.columns[:2]) == ["file", "label"]


def test_folders_empty_class_names_the_class(tmp_path, make_sine, write_audio):
    root = tmp_path / "data"
    touch_wav(root / "owl" / "a.wav", make_sine, write_audio)
    (root / "wren" / "sub").mkdir(parents=True)
    (root / "wren" / "readme.txt").write_text("no audio here")
    with pytest.raises(LabelError, match="class 'wren' has no audio files"):
        labels_from_folders(root)


def test_folders_missing_root(tmp_path):
    with pytest.raises(LabelError, match="not found") as info:
        labels_from_folders(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_folders_without_class_subfolders(tmp_path, make_sine, write_audio):
    touch_wav(tmp_path / "flat" / "a.wav", make_sine, write_audio)
    with pytest.raises(LabelError, match="no class sub-folders"):
        labels_from_folders(tmp_path / "flat")


# --- labels_from_csv ----------------------------------------------------------------------------


@pytest.fixture
def csv_dir(tmp_path, make_sine, write_audio) -> Path:
    """tmp_path/labels/{a,b,c}.wav and tmp_path/labels/sub/d.wav."""
    folder = tmp_path / "labels"
    for i, name in enumerate(["a.wav", "b.wav", "c.wav", "sub/d.wav"]):
        touch_wav(folder / name, make_sine, write_audio, 300 + 10 * i)
    return folder


def write_csv(folder: Path, text: str, name: str = "labels.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def csv_error(path: Path, audio_root=None) -> str:
    with pytest.raises(LabelError) as info:
        labels_from_csv(path, audio_root)
    return str(info.value)


def test_csv_relative_to_csv_folder(csv_dir):
    path = write_csv(csv_dir, "file,label\na.wav,owl\nsub/d.wav, wren \n")
    table = labels_from_csv(path)
    assert table["file"].tolist() == [str(csv_dir / "a.wav"), str(csv_dir / "sub" / "d.wav")]
    assert table["label"].tolist() == ["owl", "wren"], "labels are stripped"


def test_csv_relative_to_audio_root(tmp_path, csv_dir):
    meta = tmp_path / "meta"
    meta.mkdir()
    path = write_csv(meta, "file,label\na.wav,owl\nsub/d.wav,wren\n")
    assert "row 2" in csv_error(path), "without audio_root the CSV folder is the base"
    table = labels_from_csv(path, audio_root=csv_dir)
    assert table["file"].tolist() == [str(csv_dir / "a.wav"), str(csv_dir / "sub" / "d.wav")]


def test_csv_absolute_paths_kept(tmp_path, csv_dir):
    meta = tmp_path / "meta"
    meta.mkdir()
    path = write_csv(meta, f"file,label\n{csv_dir / 'b.wav'},owl\n")
    assert labels_from_csv(path)["file"].tolist() == [str(csv_dir / "b.wav")]


def test_csv_numeric_labels_are_strings(csv_dir):
    table = labels_from_csv(write_csv(csv_dir, "file,label\na.wav,1\nb.wav,2\n"))
    assert table["label"].tolist() == ["1", "2"]


def test_csv_header_with_spaces_and_numeric_labels(csv_dir):
    table = labels_from_csv(write_csv(csv_dir, "file, label\na.wav, 1\nb.wav, 2\n"))
    assert table["label"].tolist() == ["1", "2"]


def test_csv_missing_file(tmp_path):
    msg = csv_error(tmp_path / "none.csv")
    assert "not found" in msg and "none.csv" in msg, msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("path,label\na.wav,owl\n", "missing column 'file'"),
        ("file,species\na.wav,owl\n", "missing column 'label' (found: file, species)"),
        ("file,label\n", "no rows"),
    ],
)
def test_csv_structure_errors(csv_dir, text, expected):
    msg = csv_error(write_csv(csv_dir, text))
    assert expected in msg, msg


def test_csv_missing_audio_names_row(csv_dir):
    path = write_csv(csv_dir, "file,label\na.wav,owl\nb.wav,owl\nghost.wav,wren\nx.wav,owl\n")
    msg = csv_error(path)
    assert "row 4" in msg, f"header is row 1, so ghost.wav is row 4: {msg}"
    assert "ghost.wav" in msg and "(and 1 more)" in msg, msg


@pytest.mark.parametrize(
    ("text", "row", "what"),
    [
        ("file,label\na.wav,owl\nb.wav,\n", 3, "empty 'label'"),
        ("file,label\na.wav,owl\nb.wav,owl\nc.wav,   \n", 4, "empty 'label'"),
        ("file,label\n,owl\n", 2, "empty 'file'"),
    ],
)
def test_csv_empty_cells_name_row(csv_dir, text, row, what):
    msg = csv_error(write_csv(csv_dir, text))
    assert f"row {row}:" in msg and what in msg, msg


def test_csv_split_aliases(csv_dir):
    text = "file,label,split\na.wav,owl,Train\nb.wav,owl,devel\nc.wav,wren, validation\n"
    text += "sub/d.wav,wren,TEST\n"
    table = labels_from_csv(write_csv(csv_dir, text))
    assert table["split"].tolist() == ["train", "val", "val", "test"]


def test_csv_unknown_split_value(csv_dir):
    text = "file,label,split\na.wav,owl,train\nb.wav,owl,holdout\n"
    msg = csv_error(write_csv(csv_dir, text))
    assert "row 3" in msg and "unknown split 'holdout'" in msg, msg


def test_csv_times_parsed(csv_dir):
    text = "file,label,start_time,end_time\na.wav,owl,0.5,1.5\nb.wav,owl,,\n"
    table = labels_from_csv(write_csv(csv_dir, text))
    assert table["start_time"].iloc[0] == 0.5 and table["end_time"].iloc[0] == 1.5
    assert table["start_time"].isna().iloc[1] and table["end_time"].isna().iloc[1]


@pytest.mark.parametrize(
    ("rows", "row", "what"),
    [
        ("a.wav,owl,0,1\nb.wav,owl,soon,2\n", 3, "start_time must be a number"),
        ("a.wav,owl,0,1\nb.wav,owl,0,1\nc.wav,owl,1,1s\n", 4, "end_time must be a number"),
        ("a.wav,owl,2,1\n", 2, "end_time must be after start_time"),
        ("a.wav,owl,0,1\nb.wav,owl,1.5,1.5\n", 3, "end_time must be after start_time"),
    ],
)
def test_csv_bad_times_name_row(csv_dir, rows, row, what):
    msg = csv_error(write_csv(csv_dir, "file,label,start_time,end_time\n" + rows))
    assert f"row {row}:" in msg and what in msg, msg


def test_csv_only_one_time_column(csv_dir):
    msg = csv_error(write_csv(csv_dir, "file,label,start_time\na.wav,owl,1\n"))
    assert "start_time and end_time" in msg, msg


# --- resolve_classes / check_known_labels -------------------------------------------------------


def label_table(labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"file": [f"f{i}.wav" for i in range(len(labels))], "label": labels})


def test_resolve_classes_default_sorted():
    assert resolve_classes(label_table(["wren", "owl", "wren"]), None, "x") == ["owl", "wren"]


def test_resolve_classes_keeps_given_order():
    table = label_table(["owl", "wren", "owl"])
    assert resolve_classes(table, ["wren", "owl"], "x") == ["wren", "owl"]


def test_unknown_label_names_row_and_suggests():
    table = label_table(["owl", "wren", "wren", "robbin", "owl"])
    with pytest.raises(LabelError) as info:
        check_known_labels(table, ["owl", "wren", "robin"], "labels.csv")
    msg = str(info.value)
    assert msg.startswith("labels.csv, row 5:"), msg
    assert "label 'robbin'" in msg and "did you mean 'robin'" in msg, msg


def test_unknown_label_through_resolve_classes():
    with pytest.raises(LabelError, match=r"^src, row 4: label 'zebra'"):
        resolve_classes(label_table(["owl", "wren", "zebra"]), ["owl", "wren"], "src")


def test_class_without_clips():
    with pytest.raises(LabelError, match="class 'robin' .* has no clips"):
        resolve_classes(label_table(["owl", "wren"]), ["owl", "robin", "wren"], "src")


# --- grouped_split ------------------------------------------------------------------------------


def grouped_table(seed: int = 0, n_groups: int = 40) -> pd.DataFrame:
    """~n_groups recordings over 3 classes, 1-5 clips each; some recordings hold two classes."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        label = ["owl", "wren", "robin"][g % 3]
        for k in range(int(rng.integers(1, 6))):
            rows.append({"file": f"rec{g}_{k}.wav", "label": label, "group": f"rec{g}"})
        if g % 7 == 0:
            rows.append({"file": f"rec{g}_x.wav", "label": "owl", "group": f"rec{g}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_never_puts_a_group_on_both_sides(seed):
    table = grouped_table(seed)
    split = grouped_split(table, 0.2, seed)
    assert split.index.equals(table.index)
    assert set(split) == {"train", "val"}
    sides = table.assign(split=split).groupby("group")["split"].nunique()
    assert (sides == 1).all(), f"groups on both sides: {list(sides[sides > 1].index)}"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_val_share_per_class(seed):
    table = grouped_table(seed)
    split = grouped_split(table, 0.2, seed)
    for label, part in table.assign(split=split).groupby("label"):
        share = (part["split"] == "val").mean()
        assert 0.08 <= share <= 0.35, f"class {label}: val share {share:.2f} (target 0.2)"
        assert (part["split"] == "train").any(), f"class {label} has no training clip"


def test_split_files_only_each_file_is_a_group():
    labels = ["owl"] * 20 + ["wren"] * 10 + ["robin"] * 5
    table = label_table(labels)
    split = grouped_split(table, 0.2, 0)
    counts = table.assign(split=split).groupby("label")["split"].apply(lambda s: (s == "val").sum())
    assert counts.to_dict() == {"owl": 4, "wren": 2, "robin": 1}


def test_split_every_class_keeps_training_data():
    # robin has a single recording: it must stay in train
    table = label_table(["owl"] * 10 + ["robin"])
    split = grouped_split(table, 0.5, 0)
    assert split.iloc[-1] == "train"
    assert (split[:10] == "val").sum() == 5


def test_split_same_seed_same_result_different_seed_differs():
    table = grouped_table(0)
    first = grouped_split(table, 0.2, 11)
    assert first.equals(grouped_split(table, 0.2, 11))
    others = [grouped_split(table, 0.2, s) for s in range(12, 17)]
    assert any(not first.equals(o) for o in others), "different seeds gave identical splits"


def test_split_single_group_is_an_error():
    table = label_table(["owl", "wren", "owl"]).assign(group="one recording")
    with pytest.raises(BioclassError, match="one group"):
        grouped_split(table, 0.2, 0)
    with pytest.raises(BioclassError):
        grouped_split(label_table(["owl"]), 0.2, 0)


_SPLIT_SCRIPT = """
import pandas as pd
from bioclass.data.split import grouped_split
rows = []
def add(group, label, n):
    rows.extend({"file": f"{group}_{label}_{i}", "label": label, "group": group} for i in range(n))
add("g1", "A", 1); add("g1", "B", 4)
add("g2", "A", 1); add("g2", "C", 4); add("g2", "D", 4)
for k in range(16):
    add(f"b{k}", "B", 1); add(f"c{k}", "C", 1); add(f"d{k}", "D", 1)
table = pd.DataFrame(rows)
split = grouped_split(table, 0.2, 0)
print(",".join(sorted(set(table.loc[split == "val", "group"]))))
"""


def test_split_is_reproducible_across_processes():
    # Class A's two recordings both end up in val first; one must go back to train.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SPLIT_SCRIPT],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for h in range(6)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    if any(p.returncode != 0 for p in procs) or not all(outputs):
        raise RuntimeError(f"split script failed: {[p.returncode for p in procs]} {outputs}")
    assert len(set(outputs)) == 1, f"val groups per hash seed: {outputs}"


# --- find_duplicates ----------------------------------------------------------------------------


def test_find_duplicates(tmp_path):
    payload = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    a, b, c = tmp_path / "a.wav", tmp_path / "sub" / "b.wav", tmp_path / "c.wav"
    b.parent.mkdir()
    a.write_bytes(payload)
    b.write_bytes(payload)
    c.write_bytes(payload)
    other = tmp_path / "other.wav"
    other.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))  # same size, one bit differs
    small = tmp_path / "small.wav"
    small.write_bytes(payload[:100])
    pair = [tmp_path / "p1.wav", tmp_path / "p2.wav"]
    for p in pair:
        p.write_bytes(b"x" * 10)

    groups = find_duplicates([str(p) for p in (a, b, other, small, c, *pair)])
    assert sorted(sorted(g) for g in groups) == sorted(
        [sorted([str(a), str(b), str(c)]), sorted(str(p) for p in pair)]
    )


def test_find_duplicates_same_path_twice_is_not_a_duplicate(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"abc" * 100)
    (tmp_path / "b.wav").write_bytes(b"xyz" * 100)
    assert find_duplicates([str(a), str(a), str(tmp_path / "b.wav")]) == []


# --- assign_splits ------------------------------------------------------------------------------


def recipe(**data):
    return recipe_from_dict(
        {"seed": 0, "audio": {"sample_rate": SR, "clip_seconds": 0.25}, "data": data}
    )


def test_assign_splits_keeps_duplicates_together():
    table = label_table(["owl"] * 12 + ["wren"] * 12)
    dup_sets = [["f0.wav", "f5.wav", "f13.wav"], ["f1.wav", "f2.wav"]]
    for seed in range(6):
        out = assign_splits(table, dup_sets, recipe_from_dict({"seed": seed}))
        assert set(out["split"]) == {"train", "val"}
        for same in dup_sets:
            parts = out.loc[out["file"].isin(same), "split"]
            assert parts.nunique() == 1, f"seed {seed}: duplicates {same} split as {list(parts)}"
            assert out.loc[out["file"].isin(same), "group"].nunique() == 1
    assert "split" not in table.columns, "the input table must not be modified"


def test_assign_splits_merges_groups_of_duplicates():
    table = label_table(["owl"] * 8).assign(group=["r1", "r1", "r2", "r2", "r3", "r3", "r4", "r4"])
    out = assign_splits(table, [["f0.wav", "f2.wav"]], recipe())
    assert out.loc[:3, "group"].nunique() == 1, "r1 and r2 share a duplicate: one group"
    assert out.loc[:3, "split"].nunique() == 1


def test_assign_splits_keeps_explicit_split():
    table = label_table(["owl", "owl", "wren", "wren", "owl"]).assign(
        split=["train", "val", "train", "val", "test"]
    )
    out = assign_splits(table, [], recipe())
    assert out["split"].tolist() == ["train", "val", "train", "val", "test"]
    assert out["group"].tolist() == table["file"].tolist()


def test_assign_splits_carves_val_from_train_when_none_given():
    labels = ["owl"] * 10 + ["wren"] * 10 + ["owl", "wren"]
    table = label_table(labels).assign(split=["train"] * 20 + ["test", "test"])
    out = assign_splits(table, [], recipe(val_fraction=0.3))
    assert out["split"].iloc[20:].tolist() == ["test", "test"], "test rows stay test"
    val = out.iloc[:20].groupby("label")["split"].apply(lambda s: (s == "val").sum())
    assert val.to_dict() == {"owl": 3, "wren": 3}


# --- prepare_data -------------------------------------------------------------------------------


def dataset_with_bad_file(folder_dataset) -> tuple[Path, Path]:
    root = folder_dataset({"owl": 10, "wren": 10}, seconds=0.3, sample_rate=SR)
    bad = root / "owl" / "owl_99.wav"
    bad.write_bytes(b"RIFF but not really a wave file" * 10)
    return root, bad


@pytest.mark.parametrize("cache", [True, False])
def test_prepare_data_skips_bad_file_when_allowed(folder_dataset, cache):
    root, bad = dataset_with_bad_file(folder_dataset)
    totals, progress = [], []
    data = prepare_data(
        recipe(root=str(root), max_bad_fraction=0.1, cache=cache),
        on_progress=progress.append,
        on_total=totals.append,
    )
    assert data.classes == ["owl", "wren"]
    assert data.bad["file"].tolist() == [str(bad)]
    assert str(bad) in data.bad["error"].iloc[0]
    assert len(data.train) + len(data.val) == 20, "the 20 good clips are kept"
    assert str(bad) not in set(data.train.table["file"]) | set(data.val.table["file"])
    assert len(data.val) > 0 and len(data.train) > len(data.val)
    assert totals == [21] and sum(progress) == 21
    assert set(data.split["split"]) == {"train", "val"} and len(data.split) == 21
    wave, target = data.train[0]
    assert wave.shape == (int(0.25 * SR),) and wave.dtype == torch.float32
    assert target in (0, 1)


@pytest.mark.parametrize("cache", [True, False])
def test_prepare_data_refuses_too_many_bad_files(folder_dataset, cache):
    root, bad = dataset_with_bad_file(folder_dataset)
    with pytest.raises(BioclassError, match="1 of 21 audio clips cannot be read") as info:
        prepare_data(recipe(root=str(root), max_bad_fraction=0.0, cache=cache))
    assert str(bad) in str(info.value)


def test_prepare_data_reports_duplicates(folder_dataset):
    root = folder_dataset({"owl": 8, "wren": 8}, seconds=0.3, sample_rate=SR)
    copy = root / "owl" / "copy_of_owl_00.wav"
    shutil.copy(root / "owl" / "owl_00.wav", copy)
    data = prepare_data(recipe(root=str(root)))
    assert data.duplicates == [sorted([str(root / "owl" / "owl_00.wav"), str(copy)])]
    parts = data.split.loc[data.split["file"].isin(data.duplicates[0]), "split"]
    assert parts.nunique() == 1, list(parts)
    assert data.bad.empty


def test_prepare_data_without_data_is_an_error():
    with pytest.raises(LabelError, match="names no data"):
        prepare_data(recipe())


# --- BatchSampler -------------------------------------------------------------------------------


TARGETS = np.array([0] * 50 + [1] * 7 + [2] * 3 + [3] * 20)


@pytest.mark.parametrize("batch_size", [8, 12, 10, 3])
def test_balanced_batches_share_classes_equally(batch_size):
    sampler = BatchSampler(TARGETS, batch_size, seed=1, balanced=True, start=0, stop=30)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 30
    for batch in batches:
        assert len(batch) == batch_size
        counts = Counter(int(TARGETS[i]) for i, _ in batch)
        per_class = [counts.get(c, 0) for c in range(4)]
        assert max(per_class) - min(per_class) <= 1, per_class
        if batch_size % 4 == 0:
            assert per_class == [batch_size // 4] * 4, per_class


def test_balanced_oversamples_rare_class():
    sampler = BatchSampler(TARGETS, 8, seed=0, balanced=True, start=0, stop=10)
    rare = {i for batch in sampler for i, _ in batch if TARGETS[i] == 2}
    assert rare == {57, 58, 59}, "all three rare clips should be drawn within 10 batches"


def test_batches_do_not_depend_on_start():
    full = list(BatchSampler(TARGETS, 8, seed=5, balanced=True, start=0, stop=20))
    resumed = list(BatchSampler(TARGETS, 8, seed=5, balanced=True, start=13, stop=20))
    assert resumed == full[13:]
    uniform = list(BatchSampler(TARGETS, 8, seed=5, balanced=False, start=0, stop=25))
    assert list(BatchSampler(TARGETS, 8, seed=5, balanced=False, start=17, stop=25)) == uniform[17:]
    other_seed = list(BatchSampler(TARGETS, 8, seed=6, balanced=True, start=0, stop=20))
    assert other_seed != full


def test_uniform_sampler_covers_each_index_once_per_epoch():
    sampler = BatchSampler(TARGETS, 8, seed=3, balanced=False, start=0, stop=30)
    assert sampler.batches_per_epoch == 10
    batches = list(sampler)
    for epoch in range(3):
        indices = [i for batch in batches[epoch * 10 : (epoch + 1) * 10] for i, _ in batch]
        assert sorted(indices) == list(range(80)), f"epoch {epoch}"
    first, second = batches[:10], batches[10:20]
    assert [i for b in first for i, _ in b] != [i for b in second for i, _ in b], (
        "each epoch should be shuffled anew"
    )


def test_uniform_sampler_drops_incomplete_last_batch():
    targets = np.zeros(21, dtype=int)
    sampler = BatchSampler(targets, 5, seed=0, balanced=False, start=0, stop=4)
    indices = [i for batch in sampler for i, _ in batch]
    assert all(len(b) == 5 for b in sampler)
    assert len(indices) == 20 and len(set(indices)) == 20


def test_crop_seeds_are_ints_in_range():
    batch = BatchSampler(TARGETS, 16, seed=0, balanced=True).batch(4)
    assert all(isinstance(i, int) and isinstance(s, int) and 0 <= s < 2**31 for i, s in batch)
    assert len({s for _, s in batch}) > 1


# --- ClipDataset --------------------------------------------------------------------------------


def clip_dataset(waves=None, table=None) -> ClipDataset:
    spec = ClipSpec(sample_rate=100, clip_seconds=0.5)  # 50 samples
    if table is None:
        table = label_table(["owl", "wren", "owl"])
    return ClipDataset(table, ["owl", "wren"], spec, waves)


def test_clip_dataset_fixed_length_and_targets():
    waves = [np.arange(200, dtype=np.float32), np.ones(20, np.float32), np.zeros(50, np.float32)]
    ds = clip_dataset(waves)
    assert len(ds) == 3
    for i in range(3):
        wave, target = ds[i]
        assert isinstance(wave, torch.Tensor) and wave.dtype == torch.float32
        assert wave.shape == (50,)
        assert target == [0, 1, 0][i]
    short, _ = ds[1]
    assert short[:20].eq(1).all() and short[20:].eq(0).all(), "short clips are zero-padded"
    centre, _ = ds[0]
    assert centre[0].item() == 75.0, "an int index takes the centre crop ((200-50)//2)"


def test_clip_dataset_crop_seed_determines_crop():
    ds = clip_dataset(
        [np.arange(1000, dtype=np.float32), np.ones(10, np.float32), np.ones(10, np.float32)]
    )
    starts = {}
    for seed in range(20):
        wave, _ = ds[(0, seed)]
        again, _ = ds[(0, seed)]
        assert torch.equal(wave, again), "same crop seed, same crop"
        start = int(wave[0].item())
        assert torch.equal(wave, torch.arange(start, start + 50, dtype=torch.float32))
        starts[seed] = start
    assert len(set(starts.values())) > 10, f"crop seeds should move the crop: {starts}"
    expected = int(np.random.default_rng(7).integers(0, 1000 - 50 + 1))
    assert starts[7] == expected


def test_clip_dataset_decodes_on_demand(tmp_path, make_sine, write_audio):
    path = write_audio(tmp_path / "a.wav", make_sine(10, 2.0, 100), 100, subtype="FLOAT")
    table = pd.DataFrame(
        {
            "file": [str(path), str(path)],
            "label": ["owl", "wren"],
            "start_time": [0.5, np.nan],
            "end_time": [0.8, np.nan],
        }
    )
    ds = clip_dataset(table=table)
    excerpt, target = ds[0]
    assert target == 0 and excerpt.shape == (50,)
    expected = make_sine(10, 2.0, 100)[50:80]
    np.testing.assert_allclose(excerpt[:30].numpy(), expected, atol=1e-6)
    assert excerpt[30:].eq(0).all()


def test_clip_dataset_on_demand_bad_file_message(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    ds = clip_dataset(table=label_table(["owl"]).assign(file=[str(bad)]))
    with pytest.raises(BioclassError, match="data.cache: true") as info:
        ds[0]
    assert str(bad) in str(info.value)
