"""The run scaffold train and pretrain share, and the one atomic writer, tested on their own:
run directories, the resumable state, the iteration loop (schedule, divergence, evaluation,
saving, Ctrl-C) and file writes that fail (unwritable folder, full disk)."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from bioclass.core import atomic
from bioclass.core.atomic import OutputError, atomic_file, atomic_write_text
from bioclass.core.errors import BioclassError
from bioclass.runtime import loop as loop_module
from bioclass.runtime.loop import LoopPlan, RunInterrupted, run_loop
from bioclass.runtime.rundir import LAST, RunDirectory
from bioclass.runtime.state import TrainingState

# --- atomic writes -----------------------------------------------------------------------------


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    atomic_write_text(target, "old\n")
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("complete\n")
    with pytest.raises(ZeroDivisionError), atomic_file(target) as f:
        f.write("half")
        raise ZeroDivisionError
    assert target.read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_output_folder_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("I am a file")
    with pytest.raises(OutputError, match=r"out\.csv: .*results is a file, not a folder"):
        atomic_write_text(blocker / "out.csv", "x")
    with pytest.raises(OutputError, match=r"deeper.*out\.csv: .*results is a file, not a folder"):
        atomic_write_text(blocker / "deeper" / "out.csv", "x")
    assert blocker.read_text() == "I am a file"


def test_full_disk_at_commit_is_one_clear_error_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "detections.csv"
    target.write_text("previous\n")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OutputError, match="no space left on device"):
        atomic_write_text(target, "new rows\n")
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["detections.csv"]


def test_full_disk_while_writing_is_one_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "scores.bin"

    class FullDisk(OSError):
        pass

    with (
        pytest.raises(OutputError, match="cannot write .*scores.bin: no space"),
        atomic_file(target, binary=True),
    ):
        raise FullDisk(errno.ENOSPC, "No space left on device")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


# --- run directory and state ------------------------------------------------------------------


def test_run_directory_must_be_new_or_empty(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path / "run")
    run.write_text("recipe.yaml", "seed: 1\n")
    with pytest.raises(BioclassError, match="already holds files.*--resume"):
        RunDirectory.create(tmp_path / "run")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert RunDirectory.create(empty).path == empty


def test_run_directory_under_a_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(BioclassError, match=r"cannot create the run directory .*runs is a file"):
        RunDirectory.create(tmp_path / "runs" / "quickstart")


def test_reopen_without_state_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(BioclassError, match=r"nothing to resume: .*last\.pt not found"):
        RunDirectory.reopen(tmp_path)
    (tmp_path / LAST).write_bytes(b"not a checkpoint")
    with pytest.raises(BioclassError, match="cannot resume: .*not a readable bioclass checkpoint"):
        RunDirectory.reopen(tmp_path)


def test_state_round_trips_through_last_pt(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    head = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = TrainingState(
        iteration=7, history=[{"iteration": 5, "uar": 0.5}], best={"iteration": 5, "value": 0.5}
    )
    run = RunDirectory.create(tmp_path / "run")
    run.save_checkpoint(LAST, {"format": 1, **state.capture(optimizer, head)})
    expected_draw = torch.rand(3)  # the RNG continues from the captured state

    _, saved = RunDirectory.reopen(tmp_path / "run")
    back = TrainingState.from_checkpoint(saved)
    assert (back.iteration, back.history, back.best) == (7, state.history, state.best)
    fresh_head = torch.nn.Linear(2, 2)
    fresh_opt = torch.optim.Adam(
        [*torch.nn.Linear(3, 2).parameters(), *fresh_head.parameters()], lr=0.1
    )
    torch.rand(5)  # move the RNG on; restore must bring it back
    back.restore(fresh_opt, fresh_head)
    assert torch.equal(torch.rand(3), expected_draw)
    assert torch.equal(fresh_head.weight, head.weight)
    assert fresh_opt.state_dict()["state"][0]["step"] == 1


# --- the iteration loop -----------------------------------------------------------------------


class RecordingTask:
    """A step that reports given losses and records what the loop asked of it."""

    def __init__(self, losses: list[float], validate_from: int = 1) -> None:
        self.losses = losses
        self.validate_from = validate_from
        self.lrs: list[float] = []
        self.saved: list[int] = []
        self.evaluated: list[tuple[int, float]] = []
        self.optimizer: torch.optim.Optimizer | None = None

    def step(self, iteration: int, batch: Any) -> float:
        self.lrs.append(self.optimizer.param_groups[0]["lr"])
        return self.losses[iteration - 1]

    def evaluate(self, iteration: int, train_loss: float, elapsed: float) -> list[dict] | None:
        if iteration < self.validate_from:
            return None
        self.evaluated.append((iteration, train_loss))
        return [{"iteration": iteration, "loss": train_loss}]

    def describe(self, iteration: int, rows: list[dict]) -> str:
        return f"iteration {iteration}"

    def save(self, state: TrainingState) -> None:
        self.saved.append(state.iteration)


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)


def _plan(n: int, eval_every: int, schedule: str = "constant", warmup: int = 0) -> LoopPlan:
    return LoopPlan("training", "train", n, 0.1, warmup, schedule, eval_every)


def test_loop_schedules_evaluates_and_saves(tmp_path: Path) -> None:
    task = RecordingTask([1.0, 3.0, 2.0, 4.0, 6.0])
    task.optimizer = _optimizer()
    state = TrainingState()
    run = RunDirectory.create(tmp_path / "run")
    run_loop(_plan(5, 2, warmup=2), range(5), task.optimizer, task, state, run)
    assert task.lrs == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.1])  # linear warm-up, then flat
    # Evaluated every 2 steps and at the last; the loss is the mean since the last evaluation.
    assert task.evaluated == [(2, 2.0), (4, 3.0), (5, 6.0)]
    assert task.saved == [2, 4, 5]
    assert state.iteration == 5
    table = pd.read_csv(run / "metrics.csv")
    assert table["iteration"].tolist() == [2, 4, 5]


def test_losses_accumulate_until_something_is_evaluated(tmp_path: Path) -> None:
    task = RecordingTask([1.0, 2.0, 3.0, 6.0], validate_from=3)
    task.optimizer = _optimizer()
    run = RunDirectory.create(tmp_path / "run")
    run_loop(_plan(4, 2), range(4), task.optimizer, task, TrainingState(), run)
    # Step 2 is due but has nothing to validate (e.g. a SupCon stage): saved, loss kept.
    assert task.saved == [2, 4]
    assert task.evaluated == [(4, 3.0)]


def test_resumed_loop_continues_numbering(tmp_path: Path) -> None:
    task = RecordingTask([9.0, 9.0, 1.0, 2.0])
    task.optimizer = _optimizer()
    state = TrainingState(iteration=2, history=[{"iteration": 2, "loss": 9.0}])
    run = RunDirectory.create(tmp_path / "run")
    run_loop(_plan(4, 2, schedule="cosine"), range(2), task.optimizer, task, state, run)
    assert task.evaluated == [(4, 1.5)]
    # Cosine over 4 steps, picked up at steps 3 and 4: half-way (0.5) and 3/4 of the way.
    assert task.lrs == pytest.approx([0.1 * 0.5, 0.1 * 0.5 * (1 - 0.5**0.5)])
    assert pd.read_csv(run / "metrics.csv")["iteration"].tolist() == [2, 4]


def test_diverged_loss_stops_with_advice(tmp_path: Path) -> None:
    task = RecordingTask([1.0, float("nan"), 1.0])
    task.optimizer = _optimizer()
    run = RunDirectory.create(tmp_path / "run")
    with pytest.raises(BioclassError, match="training diverged at iteration 2 .*lower train.lr"):
        run_loop(_plan(3, 1), range(3), task.optimizer, task, TrainingState(), run)


def test_ctrl_c_finishes_the_step_saves_and_names_the_resume_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = RecordingTask([1.0] * 6)
    task.optimizer = _optimizer()
    real = loop_module.lr_factor

    def ctrl_c_in_step_3(iteration: int, *args: object) -> float:
        if iteration == 2:  # 0-based: the third step
            os.kill(os.getpid(), signal.SIGINT)
        return real(iteration, *args)

    monkeypatch.setattr(loop_module, "lr_factor", ctrl_c_in_step_3)
    state = TrainingState()
    run = RunDirectory.create(tmp_path / "run")
    plan = LoopPlan("pretraining", "pretrain", 6, 0.1, 0, "constant", 5)
    with pytest.raises(RunInterrupted, match=r"after iteration 3; .*bioclass pretrain --resume"):
        run_loop(plan, range(6), task.optimizer, task, state, run)
    assert state.iteration == 3
    assert task.saved == [3]
