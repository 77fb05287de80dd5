"""`bioclass train` when something goes wrong: bad numbers refused before a run directory
exists, a run that fails before its first checkpoint leaving nothing that blocks a re-run, data
with no class to tell apart or too few clips to validate, the running loss across a resume, and
what a second Ctrl-C says (per command)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import run_cli, write_recipe

from bioclass.core.errors import BioclassError
from bioclass.runtime import loop as loop_module
from bioclass.runtime.interrupt import StoppedAtOnce
from bioclass.runtime.loop import LoopPlan, run_loop
from bioclass.runtime.rundir import LAST, RunDirectory
from bioclass.runtime.state import TrainingState
from bioclass.training.fit import Fit


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output
    assert lines and lines[-1].startswith("error: "), output
    return lines[-1]


def _labels_csv(root: Path) -> Path:
    """A labels CSV for a folder-per-class dataset (so `write_recipe` can point at it)."""
    rows = [{"file": str(f), "label": f.parent.name} for f in sorted(root.glob("*/*.wav"))]
    path = root / "labels.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# --- failing early, and leaving nothing behind -------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.lr=.nan", "train.lr must be finite and positive, got nan"),
        ("train.lr=.inf", "train.lr must be finite and positive, got inf"),
        ("train.lr=-1e-3", "train.lr must be positive, got -0.001"),
        ("train.weight_decay=-1", "train.weight_decay must be >= 0"),
        ("seed=-1", "seed must be in [0, 4294967295]"),
    ],
)
def test_bad_numbers_are_refused_before_the_run_directory_exists(
    dataset: Path, tmp_path: Path, override: str, expected: str
) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--set", override, "--out", tmp_path / "run")
    assert code == 1
    assert expected in _one_error_line(output)
    assert not (tmp_path / "run").exists()


def test_unknown_model_is_refused_before_the_run_directory_exists(
    dataset: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--set", "model.name=cnn7", "--out", tmp_path / "run")
    assert code == 1
    assert "unknown model 'cnn7'" in _one_error_line(output)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "empty-folder"])
def test_run_failing_on_its_data_leaves_nothing_and_the_same_out_works(
    dataset: Path, folder_dataset: Callable[..., Path], tmp_path: Path, existing: bool
) -> None:
    out = tmp_path / "run"
    if existing:
        out.mkdir()
    only_background = _labels_csv(folder_dataset({"background": 6}))
    code, output = run_cli("train", write_recipe(tmp_path, only_background), "--out", out)
    assert code == 1
    assert "no class to detect" in _one_error_line(output)
    # A folder this run made is removed; one that was there (empty) is left, empty.
    assert out.is_dir() == existing and not (existing and any(out.iterdir()))
    if existing:
        return
    code, output = run_cli("train", write_recipe(tmp_path, dataset / "labels.csv"), "--out", out)
    assert code == 0, output
    assert (out / "model.pt").is_file()


def _fail_at(monkeypatch: pytest.MonkeyPatch, iteration: int) -> None:
    real = Fit.step

    def step(self: Fit, i: int, batch: object) -> float:
        if i == iteration:
            raise BioclassError(f"simulated failure at iteration {i}")
        return real(self, i, batch)

    monkeypatch.setattr(Fit, "step", step)


def test_failure_before_the_first_checkpoint_removes_the_run(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_at(monkeypatch, 2)  # the helper recipe validates and saves at iterations 3 and 6
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 1
    assert "simulated failure at iteration 2" in _one_error_line(output)
    assert not (tmp_path / "run").exists()  # it held recipe.yaml and split.csv, nothing to resume


def test_failure_after_a_checkpoint_keeps_the_run_to_resume(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_at(monkeypatch, 5)
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 1 and "simulated failure at iteration 5" in output
    assert torch.load(tmp_path / "run" / LAST, weights_only=True)["iteration"] == 3
    assert (tmp_path / "run" / "recipe.yaml").is_file()
    monkeypatch.undo()
    code, output = run_cli("train", "--resume", tmp_path / "run")
    assert code == 0, output
    assert "resuming at iteration 3" in output


# --- data that cannot make a classifier ---------------------------------------------------------


def test_single_clip_class_is_named_when_nothing_can_validate(
    folder_dataset: Callable[..., Path], tmp_path: Path
) -> None:
    labels = _labels_csv(folder_dataset({"background": 2, "bird": 1}))
    recipe = write_recipe(tmp_path, labels)
    out = tmp_path / "run"
    code, output = run_cli("train", recipe, "--set", "data.val_fraction=0.2", "--out", out)
    assert code == 1
    line = _one_error_line(output)
    assert "the val split is empty" in line
    assert "bird (1 clip), background (2 clips)" in line
    # A class's single clip goes to validation once n * val_fraction passes 1/2.
    assert "data.val_fraction 0.2 a class needs 3 clips" in line
    assert "raise data.val_fraction" in line and "'split' column" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ({"background": 6}, "every clip is labelled 'background' (data.background_label): there "
         "is no class to detect"),
        ({"bird": 6}, "every clip is labelled 'bird': a classifier needs two classes or more"),
    ],
)  # fmt: skip
def test_one_class_is_refused(
    folder_dataset: Callable[..., Path], tmp_path: Path, classes: dict, expected: str
) -> None:
    labels = _labels_csv(folder_dataset(classes))
    code, output = run_cli("train", write_recipe(tmp_path, labels), "--out", tmp_path / "run")
    assert code == 1
    assert expected in _one_error_line(output)


# --- the running loss across a resume -----------------------------------------------------------


class _Losses:
    """A loop task whose step returns given losses and whose evaluation records the mean."""

    def __init__(self, losses: list[float]) -> None:
        self.losses, self.evaluated = losses, []

    def step(self, iteration: int, batch: object) -> float:
        return self.losses[iteration - 1]

    def evaluate(self, iteration: int, train_loss: float, elapsed: float) -> list[dict]:
        self.evaluated.append((iteration, train_loss))
        return [{"iteration": iteration, "train_loss": train_loss}]

    def describe(self, iteration: int, rows: list[dict]) -> str:
        return ""

    def save(self, state: TrainingState) -> None:
        pass


def test_losses_since_the_last_evaluation_are_saved_and_resumed(tmp_path: Path) -> None:
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    plan = LoopPlan("training", "train", 6, 0.1, 0, "constant", 3)
    run = RunDirectory.create(tmp_path / "run")
    first = _Losses([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    state = TrainingState()
    run_loop(plan, range(4), optimizer, first, state, run)  # stops after step 4
    assert state.pending_losses == [10.0]
    saved = state.capture(optimizer, None)

    resumed = TrainingState.from_checkpoint(saved)
    second = _Losses(first.losses)
    run_loop(plan, range(2), optimizer, second, resumed, run)
    assert second.evaluated == [(6, 20.0)]  # (10 + 20 + 30) / 3, as without the stop


def test_last_pt_without_running_losses_still_loads() -> None:
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    old = TrainingState(iteration=4).capture(optimizer, None)
    del old["pending_losses"]  # as bioclass wrote it before the losses were saved
    assert TrainingState.from_checkpoint(old).pending_losses == []


# --- a second Ctrl-C ----------------------------------------------------------------------------


def _double_ctrl_c_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Press Ctrl-C twice during `step` (1-based): the second stops at once."""
    real = loop_module.lr_factor

    def lr_factor(iteration: int, *args: object) -> float:
        if iteration + 1 == step:
            handler = signal.getsignal(signal.SIGINT)
            handler(signal.SIGINT, None)  # the first asks for a clean stop after the step
            handler(signal.SIGINT, None)  # the second raises KeyboardInterrupt there and then
        return real(iteration, *args)

    monkeypatch.setattr(loop_module, "lr_factor", lr_factor)


def test_second_ctrl_c_in_train_says_how_to_resume(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _double_ctrl_c_at(monkeypatch, 5)  # after the save at iteration 3
    out = tmp_path / "run"
    code, output = run_cli("train", write_recipe(tmp_path, dataset / "labels.csv"), "--out", out)
    assert code == 130
    assert (
        f"interrupted (the state of the last save is kept; continue with: bioclass train "
        f"--resume {out})" in output
    )
    assert "re-run the same command" not in output
    assert torch.load(out / LAST, weights_only=True)["iteration"] == 3


def test_second_ctrl_c_before_anything_was_saved_leaves_nothing(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _double_ctrl_c_at(monkeypatch, 2)
    out = tmp_path / "run"
    code, output = run_cli("train", write_recipe(tmp_path, dataset / "labels.csv"), "--out", out)
    assert code == 130
    assert "interrupted (nothing was saved yet: run the same command again)" in output
    assert not out.exists()


def test_second_ctrl_c_in_pretrain_names_pretrain(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path / "run")
    with pytest.raises(StoppedAtOnce) as info, run.kept_once_saved("pretrain"):
        run.save_checkpoint(LAST, {"iteration": 1})
        raise KeyboardInterrupt
    assert info.value.args[0].endswith(f"bioclass pretrain --resume {run.path}")
    assert (run / LAST).is_file()


def test_ctrl_c_in_scan_still_says_re_run(
    tmp_path: Path,
    write_audio: Callable[..., Path],
    make_sine: Callable[..., object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bioclass.scan.runner as runner

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "scan", interrupted)
    audio = write_audio(tmp_path / "a.wav", make_sine(440, 1.0, 8000), 8000)
    code, output = run_cli("scan", audio, "--model", tmp_path / "model.pt")
    assert code == 130
    assert "finished files are kept: re-run the same command to continue" in output
