"""The iteration loop `train` and `pretrain` share: learning-rate schedule, one step, divergence
check, periodic evaluation, saving, and a clean stop on Ctrl-C that leaves an exactly resumable
state. What a step and an evaluation do is the command's business (`LoopTask`).

It is also the place distributed training plugs into: the loop does not care how a step
computes its loss. With several ranks (torchrun) every rank steps, the reported loss is the mean
over ranks, all ranks stop after the same step when any of them is asked to, and only rank 0
evaluates and writes metrics.csv while the others wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from bioclass.core.console import progress_bar
from bioclass.core.errors import BioclassError
from bioclass.runtime import distributed
from bioclass.runtime.interrupt import graceful_interrupt
from bioclass.runtime.rundir import METRICS, RunDirectory
from bioclass.runtime.schedule import lr_factor
from bioclass.runtime.state import TrainingState


class RunInterrupted(BioclassError):
    """Ctrl-C (or SIGTERM) stopped the run; its state was saved for --resume."""


@dataclass(frozen=True)
class LoopPlan:
    """How many steps, at what learning rate, evaluated how often.

    Attributes:
        activity: 'training' or 'pretraining' (the progress bar and messages say it).
        command: the bioclass command that resumes the run ('train' or 'pretrain').
    """

    activity: str
    command: str
    n_iterations: int
    lr: float
    warmup_iterations: int
    schedule: str
    eval_every: int

    def due(self, iteration: int) -> bool:
        """Whether an evaluation (and a save) follows step `iteration`."""
        return iteration % self.eval_every == 0 or iteration == self.n_iterations


class LoopTask(Protocol):
    """What a command brings to the loop."""

    def step(self, iteration: int, batch: Any) -> float:
        """One optimiser step on `batch` at (1-based) `iteration`; returns the loss."""

    def evaluate(self, iteration: int, train_loss: float, elapsed: float) -> list[dict] | None:
        """Rows for metrics.csv after `iteration`, or None when there is nothing to evaluate
        yet (the losses then keep accumulating into the next evaluation)."""

    def describe(self, iteration: int, rows: list[dict]) -> str:
        """The line printed after an evaluation."""

    def save(self, state: TrainingState) -> None:
        """Write the resumable state (and whatever else the command keeps up to date).

        Called on every rank (the state gathers each rank's random streams); only rank 0
        writes."""


def run_loop(
    plan: LoopPlan,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    task: LoopTask,
    state: TrainingState,
    run: RunDirectory,
) -> None:
    """Run steps `state.iteration + 1 ... plan.n_iterations` over `batches`.

    `state.iteration`, `state.history` and `state.pending_losses` (the losses since the last
    evaluation) are kept up to date; metrics.csv is rewritten after every evaluation. Ctrl-C
    finishes the step in flight, saves, and raises `RunInterrupted` naming the command that
    resumes. `task.evaluate` and `task.describe` are called on rank 0 only.

    Raises:
        BioclassError: the loss stopped being finite (diverged).
        RunInterrupted: stopped by Ctrl-C/SIGTERM.
    """
    losses = state.pending_losses  # the state's own list: it is saved with the state
    started = time.perf_counter()
    ranks = distributed.current()
    with (
        graceful_interrupt(second_stops_at_once=not ranks.distributed) as stop,
        progress_bar() as progress,
    ):
        bar = progress.add_task(
            plan.activity, total=plan.n_iterations, completed=state.iteration, info=""
        )
        try:
            for batch in batches:
                iteration = state.iteration + 1
                for group in optimizer.param_groups:
                    group["lr"] = plan.lr * lr_factor(
                        iteration - 1, plan.n_iterations, plan.warmup_iterations, plan.schedule
                    )
                loss, stopping = distributed.step_summary(
                    task.step(iteration, batch), stop.requested
                )
                state.iteration = iteration
                if not math.isfinite(loss):  # the mean over ranks: every rank stops here
                    distributed.refuse(
                        f"{plan.activity} diverged at iteration {iteration} "
                        f"(loss {loss}); lower train.lr"
                    )
                losses.append(loss)
                progress.update(bar, advance=1, info=f"loss {np.mean(losses[-50:]):.4f}")
                if plan.due(iteration):
                    rows = None
                    if ranks.is_main:
                        mean_loss = float(np.mean(losses)) if losses else float("nan")
                        rows = task.evaluate(iteration, mean_loss, time.perf_counter() - started)
                    if not ranks.is_main:
                        losses.clear()  # rank 0 keeps the run's losses
                    if rows is not None:
                        losses.clear()
                        state.history.extend(rows)
                        run.write_table(METRICS, pd.DataFrame(state.history))
                    task.save(state)
                    distributed.barrier()
                    if rows is not None:
                        progress.console.print(task.describe(iteration, rows))
                if stopping:
                    stop.requested = True
                    break
        except RuntimeError:
            if not stop.requested:  # a data-loader worker killed by the same Ctrl-C
                raise
    if stop.requested and state.iteration < plan.n_iterations:
        task.save(state)
        distributed.barrier()
        # Rank 0 says it; the other ranks stop with the same error, quietly.
        raise (RunInterrupted if ranks.is_main else distributed.ReportedByMain)(
            f"interrupted after iteration {state.iteration}; continue with: "
            f"{run.resume_command(plan.command)}"
        )
