"""Training on several processes (torchrun, DDP over gloo on CPU): two ranks train as one process
of their joint batch, contrastive losses see the global batch, and a run survives a dead rank."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli, write_recipe

from bioclass.checkpoint import read_checkpoint
from bioclass.synthetic.dataset import make_long_recording

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("ddp_worker.py")
TIMEOUT_S = 240


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", BIOCLASS_DIST_TIMEOUT_S="60")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _torchrun(*args: str | Path, ranks: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks)]
    command.append("--standalone")  # a free port of its own: tests may run side by side
    return subprocess.run(
        [*command, *map(str, args)],
        env=_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def _alone(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        env=_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def _no_partial_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name]
    assert not leftovers, leftovers


@pytest.fixture(scope="module")
def two_rank_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ddp")
    recipe = write_recipe(folder, dataset / "labels.csv")
    run = folder / "run"
    done = _torchrun("-m", "bioclass", "train", recipe, "--out", run, "--device", "cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "distributed: 2 ranks (world size 2), backend gloo" in done.stderr
    assert done.stderr.count("distributed: 2 ranks") == 1  # rank 0 speaks for the run
    return run


def test_two_ranks_train_and_write_one_checkpoint(two_rank_run: Path) -> None:
    run = two_rank_run
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["iteration"].unique()) == [3, 6]  # one row per evaluation, not per rank
    assert read_checkpoint(run / "model.pt")["iteration"] in (3, 6)
    last = read_checkpoint(run / "last.pt")
    assert last["iteration"] == 6 and last["world_size"] == 2 and len(last["rank_rng"]) == 2
    assert (run / "best.json").is_file() and (run / "calibration.png").is_file()
    _no_partial_files(run)


def test_resume_on_another_world_size_is_one_line(two_rank_run: Path) -> None:
    # The run's random streams are per rank: another world size is refused, in one line.
    code, output = run_cli("train", "--resume", two_rank_run)
    assert code == 1
    assert "trained on 2 rank(s) and cannot resume on 1" in output
    assert "torchrun --nproc-per-node 2 -m bioclass" in output


def test_one_rank_stopped_stops_all_and_resume_is_exact(
    two_rank_run: Path, dataset: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    run = tmp_path / "run"
    train = ["train", recipe, "--out", run, "--device", "cpu"]
    stopped = _torchrun(WORKER, "stop", "-", tmp_path, "--", *train)
    assert stopped.returncode != 0
    # Rank 1's SIGTERM stops both ranks after the step in flight; rank 0 says so, once.
    resume = f"torchrun --nproc-per-node 2 -m bioclass train --resume {run}"
    assert stopped.stderr.count(f"interrupted after iteration 4; continue with: {resume}") == 1
    assert read_checkpoint(run / "last.pt")["iteration"] == 4
    resumed = _torchrun("-m", "bioclass", "train", "--resume", run, "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = read_checkpoint(two_rank_run / "last.pt"), read_checkpoint(run / "last.pt")
    for key in ("weights", "ema_weights"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    pd.testing.assert_frame_equal(
        pd.read_csv(two_rank_run / "metrics.csv").drop(columns="elapsed_s"),
        pd.read_csv(run / "metrics.csv").drop(columns="elapsed_s"),
    )


PRETRAIN = """\
seed: 5
audio: {sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32,
        f_max: 4000}
model: {name: cnn6}
train: {batch_size: 6, iterations: 2, eval_every: 2}
pretrain: {patch_seconds: 0.5, loss: acl}
"""


def test_two_ranks_pretrain_and_write_the_encoder(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    rng = np.random.default_rng(9)
    for i in range(2):
        make_long_recording(archive / f"site{i}.flac", rng, 6.0, 8000, n_calls=2)
    recipe = tmp_path / "pretrain.yaml"
    recipe.write_text(PRETRAIN, encoding="utf-8")
    run = tmp_path / "run"
    done = _torchrun("-m", "bioclass", "pretrain", archive, "--recipe", recipe, "--out", run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "distributed: 2 ranks (world size 2), backend gloo" in done.stderr
    assert list(pd.read_csv(run / "metrics.csv")["iteration"]) == [0, 2]
    assert read_checkpoint(run / "encoder.pt")["iteration"] == 2
    assert read_checkpoint(run / "last.pt")["world_size"] == 2
    _no_partial_files(run)


def test_two_ranks_step_equals_one_process_of_the_joint_batch(
    dataset: Path, tmp_path: Path
) -> None:
    labels = str(dataset / "labels.csv")
    one = _alone(WORKER, "step", labels, tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _torchrun(WORKER, "step", labels, tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = torch.load(tmp_path / "step_1.pt"), torch.load(tmp_path / "step_2.pt")
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    for name, grad in a["grads"].items():
        scale = float(grad.abs().max())
        assert scale > 0, name
        assert torch.allclose(b["grads"][name], grad, rtol=1e-4, atol=1e-5 * scale), name
    # BatchNorm statistics are the global batch's (2 x 4 clips), as in one process of 8.
    means = [n for n in a["buffers"] if n.endswith("running_mean")]
    assert means
    for name, buffer in a["buffers"].items():
        assert torch.allclose(b["buffers"][name].float(), buffer.float(), atol=1e-5), name


def test_gathered_contrastive_losses_equal_one_process(tmp_path: Path) -> None:
    one = _alone(WORKER, "contrastive", "-", tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _torchrun(WORKER, "contrastive", "-", tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    a = torch.load(tmp_path / "contrastive_1.pt")
    b = torch.load(tmp_path / "contrastive_2.pt")
    for name in ("nt_xent", "acl", "supcon"):
        assert b[name]["loss"] == pytest.approx(a[name]["loss"], rel=1e-5), name
        for ga, gb in zip(a[name]["grads"], b[name]["grads"], strict=True):
            assert torch.allclose(ga, gb, atol=1e-6), name


def test_dead_rank_stops_the_run_with_nothing_half_written(dataset: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    run = tmp_path / "run"
    train = ["train", recipe, "--out", run, "--device", "cpu", "--set", "train.eval_every=2"]
    died = _torchrun(WORKER, "crash", "-", tmp_path, "--", *train)
    assert died.returncode != 0
    _no_partial_files(run)
    assert read_checkpoint(run / "last.pt")["iteration"] == 2  # the save before the death
    assert not (run / "best.json").exists()


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("train.batch_size=7", "error: train.batch_size 7 does not split over 2 ranks"),
        ("train.cv_folds=3", "error: train.cv_folds is not supported under torchrun"),
    ],
)
def test_unsupported_combination_is_one_line(
    dataset: Path, tmp_path: Path, setting: str, expected: str
) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    run = tmp_path / "run"
    done = _torchrun("-m", "bioclass", "train", recipe, "--out", run, "--set", setting)
    assert done.returncode != 0
    assert expected in done.stderr
    assert done.stderr.count("error:") == 1  # said by rank 0 only
    assert "bioclass/" not in done.stderr  # no traceback of ours (torchrun adds its own)
    assert not run.exists()  # refused before anything was written


def test_annotated_training_under_torchrun_is_one_line(dataset: Path, tmp_path: Path) -> None:
    """Multi-label windows have no per-rank sampler yet: refused before anything is written."""
    first = sorted(p for p in dataset.rglob("*") if p.suffix in {".wav", ".flac"})[0]
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"file,start_time,end_time,label\n{first},0.0,0.5,bird\n", encoding="utf-8")
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    run = tmp_path / "run"
    setting = f"data.annotations=[{boxes}]"
    done = _torchrun("-m", "bioclass", "train", recipe, "--out", run, "--set", setting)
    assert done.returncode != 0
    assert "error: training on annotated recordings" in done.stderr
    assert done.stderr.count("error:") == 1
    assert not run.exists()
