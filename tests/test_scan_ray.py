"""`bioclass scan --ray`: Ray workers score segments of files; the outputs are byte for byte
those of a local scan (with the same torch threads per process), through dead workers, resumed
drivers and broken files. One local Ray runtime (2 CPUs) is shared by the whole module."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import run_cli, torch_threads

from bioclass.checkpoint import atomic_save, model_checkpoint
from bioclass.inference.models import load_models
from bioclass.inference.ray_worker import SpanScorer
from bioclass.inference.score import (
    WindowOutput,
    join_spans,
    ramp_end,
    score_file,
    score_span,
)
from bioclass.inference.segments import FileLength, auto_segment_seconds, file_length, file_spans
from bioclass.inference.stream import WindowPlan
from bioclass.models import FrontendConfig, create_model
from bioclass.recipe import Recipe, recipe_to_dict
from bioclass.runtime.ray_cluster import RaySettings
from bioclass.scan.options import ScanOptions
from bioclass.scan.ray_dispatch import RayDistributor
from bioclass.scan.runner import scan

RATE, HOP_S, BATCH = 8000, 0.32, 4
SEGMENT_MINUTES = 0.05  # 3 s: the 20 s recording becomes 6 segments of 12 windows


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CNN6 on 1 s windows at 8 kHz (untrained: the scores only need to be numbers)."""
    folder = tmp_path_factory.mktemp("model")
    frontend = FrontendConfig(RATE, n_fft=256, hop_length=80, n_mels=16, f_max=4000)
    torch.manual_seed(0)
    net = create_model("cnn6", 3, frontend).eval()
    recipe = recipe_to_dict(Recipe())
    recipe["audio"]["clip_seconds"] = 1.0
    ckpt = model_checkpoint(
        net,
        "cnn6",
        ["owl", "wren", "robin"],
        frontend,
        recipe,
        None,
        use_ema=False,
        score_activation="sigmoid",
    )
    atomic_save(ckpt, folder / "model.pt")
    return folder / "model.pt"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 20 s stereo FLAC at 22.05 kHz (resampled, split into segments), two short WAVs (one a
    single window) and a corrupt file."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    sf.write(folder / "long.flac", 0.1 * rng.standard_normal((22050 * 20, 2)), 22050)
    sf.write(folder / "short.wav", 0.1 * rng.standard_normal(RATE * 3), RATE)
    sf.write(folder / "clip.wav", 0.1 * rng.standard_normal(RATE // 2), RATE)
    (folder / "broken.wav").write_bytes(b"RIFF not audio at all" * 8)
    return [folder / n for n in ("broken.wav", "clip.wav", "long.flac", "short.wav")]


@pytest.fixture
def one_thread():
    """Local scans with one torch thread, as each Ray worker of 1 CPU runs."""
    with torch_threads(1):
        yield


def options(out: Path, **changes) -> ScanOptions:
    base = dict(
        out=out,
        hop_seconds=HOP_S,
        batch_size=BATCH,
        threshold=0.3,
        formats=("csv", "raven", "audacity"),
        scores_path=out.with_name("scores.csv"),
    )
    return ScanOptions(**{**base, **changes})


def ray_settings(**changes) -> RaySettings:
    return RaySettings(
        **{"address": "local", "workers": 2, "segment_minutes": SEGMENT_MINUTES, **changes}
    )


def written(folder: Path, resumed: bool = False) -> dict[str, bytes]:
    """Every output under `folder` (not the journal), its own path replaced by 'OUT'; the
    manifest without its timings (and, for a `resumed` scan, without the counts of files
    scanned now and resumed, which differ from an uninterrupted scan's by design)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or ".parts" in path.parts[-2] or path.suffix == ".lock":
            continue
        data = path.read_bytes().replace(f"{folder}/".encode(), b"OUT/")
        if path.name.endswith("manifest.json"):
            manifest = json.loads(data)
            ignored = ("files_scanned", "files_resumed") if resumed else ()
            for key in ("wall_seconds", "created", *ignored):
                manifest.pop(key, None)
            data = json.dumps(manifest, sort_keys=True).encode()
        files[str(path.relative_to(folder))] = data
    return files


def test_spans_join_to_the_whole_files_scores_bit_for_bit(
    model: Path, inputs: list[Path], one_thread
) -> None:
    loaded = load_models([model])
    output = WindowOutput.class_scores(loaded.score_maps(None))
    plan = WindowPlan.from_seconds(RATE, 1.0, HOP_S)
    path = inputs[2]
    for mode, channels in [("fast", "mix"), ("exact", "each")]:
        whole = score_file(path, loaded.models, output, plan, channels, BATCH, "cpu", mode)
        length = file_length(path, plan, channels)
        spans = file_spans(length, plan, mode, BATCH, SEGMENT_MINUTES * 60)
        assert len(spans) >= 4 and spans[-1][1] is None
        parts = [
            score_span(path, loaded.models, output, plan, s, channels, BATCH, "cpu", mode)
            for s in spans
        ]
        joined = join_spans(path, parts, output, plan)
        for a, b in zip(whole.streams, joined.streams, strict=True):
            assert np.array_equal(a.scores, b.scores) and np.array_equal(a.ends_s, b.ends_s)
    # The alignment matters: a fast-mode span starting off the block grid sees other blocks.
    whole = score_file(path, loaded.models, output, plan, "mix", BATCH, "cpu", "fast")
    off = [(0, 6), (6, None)]
    parts = [score_span(path, loaded.models, output, plan, s, "mix", BATCH) for s in off]
    joined = join_spans(path, parts, output, plan)
    assert not np.array_equal(whole.streams[0].scores, joined.streams[0].scores)


def test_exact_mode_starts_small_and_cuts_batches_by_window_index() -> None:
    # The recording's first batch ramps up (the model starts while the rest decodes); after it,
    # whole batches on multiples of the batch, as spans are cut, so spans join bit for bit.
    def cuts(per_batch: int, stop: int) -> list[int]:
        ends, k = [], 0
        while k < stop:
            k = ramp_end(k, per_batch)
            ends.append(k)
        return ends

    assert cuts(64, 200) == [8, 16, 32, 64, 128, 192, 256]
    assert cuts(32, 64) == [4, 8, 16, 32, 64]
    assert cuts(3, 7) == [1, 2, 3, 6, 9] and cuts(1, 3) == [1, 2, 3]
    assert ramp_end(64, 64) == 128 and ramp_end(20, 64) == 32  # a span never starts inside


def test_files_are_cut_only_as_far_as_the_workers_need() -> None:
    hour = FileLength(RATE * 3600, 1)
    # As many files as workers (or more): none is cut (every cut costs decoding, see segments).
    assert auto_segment_seconds([hour, hour], 2, RATE) == [None, None]
    # One file, 4 workers: four segments of a quarter each; a headerless file stays whole.
    assert auto_segment_seconds([hour, None], 8, RATE) == [900.0, None]
    plan = WindowPlan.from_seconds(RATE, 1.0, 0.5)
    spans = file_spans(hour, plan, "fast", 64, 900.0)
    assert spans == [(0, 1856), (1856, 3712), (3712, 5568), (5568, None)]  # 29 blocks of 64
    assert file_spans(None, plan, "fast", 64, 900.0) == [(0, None)]
    # Exact mode with both channels of a stereo file: batches of 64 // 2 windows.
    assert file_spans(FileLength(RATE * 60, 2), plan, "exact", 64, 10.0)[1] == (32, 64)


def test_ray_scan_writes_what_a_local_scan_writes(
    ray_runtime, model: Path, inputs: list[Path], tmp_path: Path, one_thread
) -> None:
    local = scan(inputs, [model], options(tmp_path / "local" / "det.csv"))
    seen = []
    distributor = RayDistributor(ray_settings(), on_progress=lambda p: seen.append(p.line()))
    remote = scan(inputs, [model], options(tmp_path / "ray" / "det.csv"), distributor=distributor)
    assert (remote.n_scanned, remote.n_failed) == (local.n_scanned, local.n_failed) == (3, 1)
    ours, theirs = written(tmp_path / "local"), written(tmp_path / "ray")
    assert set(ours) == set(theirs) and "det.failed.csv" in ours and "scores.csv" in ours
    for name in ours:
        assert ours[name] == theirs[name], name
    # The journal is the same: a local re-run would resume every file the Ray scan stored.
    parts = sorted(p.name for p in (tmp_path / "ray" / "det.parts").glob("*.npz"))
    assert parts == sorted(p.name for p in (tmp_path / "local" / "det.parts").glob("*.npz"))
    assert seen and "2 workers" in seen[-1]
    assert distributor.ray is None  # the workers are gone; the shared runtime stays up
    assert ray_runtime.is_initialized()


def test_dead_worker_is_replaced_and_its_segment_redone(
    ray_runtime, model: Path, inputs: list[Path], tmp_path: Path, one_thread
) -> None:
    marker = tmp_path / "died-once"

    class DiesOnce(SpanScorer):  # defined here, so Ray ships it by value
        def score(self, path, plan, span, *args):
            if span[0] > 0 and not marker.exists():  # the middle of the long file
                marker.write_text(str(os.getpid()))
                os._exit(1)  # the worker's process is gone, mid-segment
            return super().score(path, plan, span, *args)

    scan(inputs, [model], options(tmp_path / "local" / "det.csv"))
    distributor = RayDistributor(ray_settings(), scorer=DiesOnce)
    remote = scan(inputs, [model], options(tmp_path / "ray" / "det.csv"), distributor=distributor)
    assert marker.exists() and distributor.progress.workers_replaced == 1
    assert remote.n_scanned == 3
    assert written(tmp_path / "local") == written(tmp_path / "ray")  # no lost or extra rows


def test_driver_killed_with_sigkill_resumes_on_the_same_command(
    ray_runtime, model: Path, inputs: list[Path], tmp_path: Path, one_thread
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(8):
        (folder / f"{i}.wav").write_bytes(inputs[3].read_bytes())
    address = ray_runtime.get_runtime_context().gcs_address
    out = tmp_path / "ray" / "det.csv"
    # Exact mode, one window per pass: slow enough for the kill to land mid-scan.
    args = [
        str(folder),
        "--model",
        str(model),
        "--out",
        str(out),
        "--hop",
        str(HOP_S),
        "--mode",
        "exact",
        "--batch-size",
        "1",
        "--ray",
        address,
        "--ray-workers",
        "2",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bioclass", "scan", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = out.with_suffix(".parts")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(parts.glob("*.npz")):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done = len(list(parts.glob("*.npz")))
    assert 1 <= done < 8 and not out.exists(), "the kill should land mid-scan"
    code, output = run_cli("scan", *args)  # the same command, in this process (same runtime)
    assert code == 0 and f"{done} from an earlier run" in output, output
    code, _ = run_cli(*["scan", *args[:4], str(tmp_path / "local" / "det.csv"), *args[5:-4]])
    assert code == 0
    assert written(tmp_path / "local", resumed=True) == written(tmp_path / "ray", resumed=True)


def test_ray_embed_writes_what_a_local_embed_writes(
    ray_runtime, model: Path, inputs: list[Path], tmp_path: Path, one_thread
) -> None:
    def embed(out: Path, *extra: str) -> None:
        code, output = run_cli(
            "embed", *inputs, "--model", model, "--out", out, "--batch-size", "4",
            "--channels", "each", *extra,
        )  # fmt: skip
        assert code == 0, output

    embed(tmp_path / "local" / "emb.csv")
    # The 20 s file in 5 segments of 4 one-second windows (exact mode, both channels).
    embed(tmp_path / "ray" / "emb.csv", "--ray", "local", "--ray-segment-minutes", "0.05")
    ours, theirs = written(tmp_path / "local"), written(tmp_path / "ray")
    assert set(ours) == {"emb.csv", "emb.failed.csv", "emb.manifest.json"}
    assert ours == theirs
    assert "broken.wav" in ours["emb.failed.csv"].decode()


def test_a_file_the_worker_cannot_see_fails_alone(model: Path, tmp_path: Path, one_thread) -> None:
    scorer = SpanScorer([model], "cpu", None, 1)  # sets this process's torch threads
    plan = WindowPlan.from_seconds(RATE, 1.0, HOP_S)
    line = scorer.score(tmp_path / "elsewhere.wav", plan, (0, None), "mix", BATCH, "fast", "fp32")
    assert isinstance(line, str) and "not found on Ray worker node" in line
    assert str(tmp_path / "elsewhere.wav") in line


def test_cluster_too_small_and_bad_counts_are_one_line(
    ray_runtime, model: Path, inputs: list[Path], tmp_path: Path
) -> None:
    code, output = run_cli(
        "scan",
        inputs[1],
        "--model",
        model,
        "--out",
        tmp_path / "d.csv",
        "--ray",
        "local",
        "--ray-workers",
        "3",
    )
    assert code == 1 and "cannot hold 3 worker(s)" in output and "Traceback" not in output
    for flag, value, expected in [
        ("--ray-workers", "0", "--ray-workers must be at least 1"),
        ("--ray-cpus-per-worker", "-1", "--ray-cpus-per-worker must be a positive"),
        ("--ray-gpus-per-worker", "nan", "--ray-gpus-per-worker must be 0 or more"),
        ("--ray-segment-minutes", "0", "--ray-segment-minutes must be a positive"),
    ]:
        code, output = run_cli(
            "scan",
            inputs[1],
            "--model",
            model,
            "--out",
            tmp_path / "d.csv",
            "--ray",
            "local",
            flag,
            value,
        )
        assert code == 1 and expected in output, output
        assert len(output.strip().splitlines()) == 1


def test_an_address_that_does_not_answer_fails_fast(model: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros(RATE), RATE)
    for address, expected in [
        (f"127.0.0.1:{port}", f"cannot reach the Ray cluster at 127.0.0.1:{port}"),
        ("not-an-address", "give local, auto, or a cluster address"),
    ]:
        started = time.monotonic()
        code, output = run_cli(
            "scan", audio, "--model", model, "--out", tmp_path / "d.csv", "--ray", address
        )
        assert code == 1 and expected in output, output
        assert time.monotonic() - started < 20


def test_missing_ray_says_how_to_install_it(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros(RATE), RATE)
    code, output = run_cli(
        "scan", audio, "--model", model, "--out", tmp_path / "d.csv", "--ray", "local"
    )
    assert code == 1 and 'pip install "bioclass[ray]"' in output
    assert not (tmp_path / "d.csv").exists()


def test_the_plain_cli_does_not_import_ray() -> None:
    code = "import sys, bioclass.cli, bioclass.scan.runner; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
