"""Synthetic soundscapes with overlapping calls (`make_multilabel_soundscape`): the calls are
where the tables say, pairs of two species really overlap, and the CSV and Raven tables read
back as the same boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bioclass.annotations import read_annotations
from bioclass.synthetic import make_multilabel_recording, make_multilabel_soundscape

SR = 8000


def power_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20)


def test_soundscape_tables_match_the_audio(tmp_path: Path) -> None:
    table = make_multilabel_soundscape(
        tmp_path, np.random.default_rng(5), 2, 30.0, SR, 8, overlap_probability=0.5
    )
    assert set(table["label"]) == {"harmonic", "pulses"}
    assert list(table.columns) == ["file", "start_time", "end_time", "label"]
    pairs = 0
    for file, boxes in table.groupby("file"):
        audio, rate = sf.read(str(tmp_path / file))
        assert rate == SR and len(audio) == 30 * SR
        assert (boxes["start_time"] >= 0).all() and (boxes["end_time"] <= 30.0).all()
        quiet = np.ones(len(audio), bool)
        for box in boxes.itertuples(index=False):
            quiet[int(box.start_time * SR) : int(box.end_time * SR)] = False
        excess = [
            power_db(audio[int(box.start_time * SR) : int(box.end_time * SR)])
            - power_db(audio[quiet])
            for box in boxes.itertuples(index=False)
        ]
        # Each call is 5-20 dB over the ambience under it (call plus ambience: +6 dB or more);
        # the ambience's gusts move its local level, hence the margins.
        assert min(excess) > 1.0 and np.mean(excess) > 6.0
        # An overlapping pair: two boxes of different species sharing time.
        rows = boxes.sort_values("start_time").to_numpy()
        for a, b in zip(rows[:-1], rows[1:], strict=True):
            if b[1] < a[2]:
                assert a[3] != b[3]
                pairs += 1
    assert pairs >= 3  # half of 16 events are pairs, drawn at random

    csv = read_annotations([tmp_path / "annotations.csv"])
    raven = read_annotations([tmp_path / "raven"], audio_root=tmp_path)
    columns = ["file", "start_time", "end_time", "label"]
    a = csv.boxes[columns].sort_values(columns[:3]).reset_index(drop=True)
    b = raven.boxes[columns].sort_values(columns[:3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(table)


def test_no_overlap_and_one_species(tmp_path: Path) -> None:
    boxes = make_multilabel_recording(
        tmp_path / "a.wav", np.random.default_rng(0), 20.0, SR, 6, ("trill",), 0.0
    )
    assert set(boxes["label"]) == {"trill"}
    assert (boxes["start_time"].to_numpy()[1:] >= boxes["end_time"].to_numpy()[:-1]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"species": ("trill",), "overlap_probability": 0.5}, "at least two species"),
        ({"overlap_probability": 1.5}, "overlap_probability"),
        ({"n_events": 50}, "do not fit"),
        ({"species": ("owl", "trill")}, "unknown species"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    arguments = {"duration_seconds": 20.0, "sample_rate": SR, "n_events": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_multilabel_recording(tmp_path / "a.flac", np.random.default_rng(0), **arguments)
    assert not (tmp_path / "a.flac").exists()
