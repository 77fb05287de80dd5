"""Helpers shared by the CLI tests: a tiny training recipe, an in-process CLI runner, and
trained-looking BatchNorms for models built by a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from click.testing import CliRunner

from bioclass.cli import main

RECIPE = """\
seed: 3
audio: {{sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32,
        f_max: 4000}}
data: {{labels_csv: {csv}, val_fraction: 0.3, max_bad_fraction: {max_bad}}}
model: {{name: cnn6}}
augment: {{mixup_alpha: 0.3, specaugment: true}}
train: {{batch_size: 8, iterations: 6, eval_every: 3, ema_start: 3, ema_decay: 0.9}}
"""


def trained_looking_batchnorms(model: torch.nn.Module) -> None:
    """Give every BatchNorm running statistics and affine values a trained model could have, so
    folding them into the convolutions changes the numbers (a fresh BatchNorm is the identity)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)


def write_recipe(folder: Path, csv: Path, max_bad: float = 0.05) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(RECIPE.format(csv=csv, max_bad=max_bad), encoding="utf-8")
    return path


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def run_cli_streams(*args: str) -> tuple[int, str, str]:
    """Like `run_cli`, with stdout (data) and stderr (messages) apart."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch on `n` intra-op threads inside the block, whatever the machine had; put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
