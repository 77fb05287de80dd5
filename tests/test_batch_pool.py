"""Scoring batches side by side on a CPU: order, bounds, failures, torch's thread setting, and
scores that do not depend on the number of threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import torch_threads

from bioclass.inference import score as score_module
from bioclass.inference.batch_pool import ordered_map, single_threaded_ops
from bioclass.inference.score import ScanCancelled, score_file
from bioclass.inference.stream import WindowPlan


@pytest.fixture
def two_threads():
    """torch on 2 intra-op threads for the test, whatever the machine had; put back after."""
    with torch_threads(2):
        yield


def test_ordered_map_yields_in_input_order_with_bounded_items_in_flight() -> None:
    taken, running, most_running, lock = [], [0], [0], threading.Lock()

    def items():
        for i in range(12):
            taken.append(i)
            yield i

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            most_running[0] = max(most_running[0], running[0])
        time.sleep(0.02 * (i % 3 == 0))  # every third item finishes last
        with lock:
            running[0] -= 1
        return i * i

    got = []
    for result in ordered_map(work, items(), workers=3):
        got.append(result)
        # No more than twice the workers taken ahead of what was handed back.
        assert len(taken) - len(got) <= 2 * 3
    assert got == [i * i for i in range(12)]
    assert most_running[0] > 1  # the items really ran side by side


def test_ordered_map_raises_a_workers_error_and_stops_taking_items() -> None:
    taken = []

    def items():
        for i in range(1000):
            taken.append(i)
            yield i

    def work(i: int) -> int:
        if i == 3:
            raise ValueError("bad batch")
        return i

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for result in ordered_map(work, items(), workers=2):
            got.append(result)
    assert got == [0, 1, 2]
    assert len(taken) < 10


def test_ordered_map_before_each_stops_the_run() -> None:
    calls = []

    def before() -> None:
        calls.append(1)
        if len(calls) > 4:
            raise ScanCancelled

    with pytest.raises(ScanCancelled):
        list(ordered_map(lambda i: i, iter(range(100)), workers=2, before_each=before))
    with pytest.raises(ScanCancelled):  # one worker: the same check, in this thread
        calls.clear()
        list(ordered_map(lambda i: i, iter(range(100)), workers=1, before_each=before))


def test_single_threaded_ops_is_shared_by_holders_and_put_back(two_threads) -> None:
    with single_threaded_ops() as workers:
        assert workers == 2
        assert torch.get_num_threads() == 1
        seen = []
        thread_saw = []

        def other_holder() -> None:
            with single_threaded_ops() as inner:
                seen.append(inner)

        t = threading.Thread(target=other_holder)
        t.start()
        t.join()
        assert seen == [2]  # a second holder sees the count from before the first
        assert torch.get_num_threads() == 1  # and leaving does not undo the first's setting

        def in_worker(_: int) -> int:
            thread_saw.append(torch.get_num_threads())
            return 0

        list(ordered_map(in_worker, iter(range(4)), workers=2))
        assert thread_saw == [1, 1, 1, 1]
    assert torch.get_num_threads() == 2


def _scan_setup(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece: int, seconds: float
) -> tuple[Path, torch.nn.Module, str, WindowPlan]:
    """A noise recording of `seconds` at 8 kHz, the trained model, its activation and 1 s
    windows at hop 1 s, with pieces of `piece` windows (so a batch is cut into several)."""
    import soundfile as sf

    from bioclass.checkpoint import load_model

    monkeypatch.setattr(score_module, "PIECE_SAMPLES", piece * 8000)
    path = tmp_path / "rec.wav"
    rng = np.random.default_rng(5)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * 8000))).astype(np.float32), 8000)
    model, ckpt = load_model(trained / "model.pt")
    return path, model, ckpt["score_activation"], WindowPlan.from_seconds(8000, 1.0, 1.0)


def test_cpu_scores_do_not_depend_on_the_thread_count(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_threads
) -> None:
    path, model, activation, plan = _scan_setup(trained, tmp_path, monkeypatch, 5, 40.0)
    on_two = score_file(path, [model], activation, plan, mode="exact", batch_size=16)
    assert torch.get_num_threads() == 2  # put back after the scan
    torch.set_num_threads(1)
    on_one = score_file(path, [model], activation, plan, mode="exact", batch_size=16)
    a, b = on_two.streams[0].scores, on_one.streams[0].scores
    assert a.shape == (40, 3)
    np.testing.assert_array_equal(a, b)
    # And each window's scores are the model's on that window alone.
    from bioclass.audio import read_audio
    from bioclass.core.activation import ScoreMap

    wave = torch.from_numpy(read_audio(path, 8000)[: 40 * 8000].reshape(40, 8000))
    with torch.no_grad():
        alone = ScoreMap.of(activation)(model(wave)).numpy()
    np.testing.assert_allclose(a, alone, atol=2e-5)


def test_a_stopped_cpu_scan_puts_the_thread_count_back(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_threads
) -> None:
    path, model, activation, plan = _scan_setup(trained, tmp_path, monkeypatch, 2, 30.0)
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(ScanCancelled):
        score_file(path, [model], activation, plan, mode="exact", should_stop=should_stop)
    assert torch.get_num_threads() == 2
