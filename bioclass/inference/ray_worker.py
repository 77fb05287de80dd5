"""What one Ray worker of `bioclass scan|embed --ray` does: load the models once, score spans.

A plain class (no Ray import here): `ray_pool` makes it a Ray actor with the CPUs and GPUs
the user asked for. A worker never writes anything; it returns each span's window scores to the
driver, which owns the journal, the lock and the outputs.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch

from bioclass.audio import AudioError
from bioclass.inference.models import load_models, prepare_for_inference
from bioclass.inference.score import SpanScores, WindowOutput, WindowSpan, score_span
from bioclass.inference.stream import WindowPlan
from bioclass.runtime.device import pick_device


class SpanScorer:
    """Scores spans of recordings with the models of one scan or embedding run (one instance
    per worker).

    Args:
        model_paths: the checkpoints (on a filesystem this node sees).
        device: --device, resolved on this node (auto: its GPU when Ray gave it one).
        calibration: --calibration, as the driver's scan applies it.
        threads: torch threads (the CPUs Ray gave this worker).
        embedding: each window's embedding instead of its class scores (`bioclass embed`).
    """

    def __init__(
        self,
        model_paths: list[Path],
        device: str,
        calibration: str | None,
        threads: int,
        embedding: bool = False,
    ) -> None:
        torch.set_num_threads(max(1, threads))
        loaded = load_models(model_paths, need_classes=not embedding)
        self.device = pick_device(device)
        for m in loaded.models:
            prepare_for_inference(m, self.device)
        self.models = loaded.models
        if embedding:
            self.output = WindowOutput.embedding()
        else:
            self.output = WindowOutput.class_scores(loaded.score_maps(calibration))

    def where(self) -> tuple[str, str, int]:
        """(device, host, pid): what the driver reports, and how a test finds this process."""
        return str(self.device), socket.gethostname(), os.getpid()

    def score(
        self,
        path: Path,
        plan: WindowPlan,
        span: WindowSpan,
        channels: str | int,
        batch_size: int,
        mode: str,
        precision: str,
    ) -> SpanScores | str:
        """The span's scores, or the file's failure line (what the local scan would list in
        failed.csv, or that this node cannot see the file)."""
        if not Path(path).exists():
            return (
                f"{path}: not found on Ray worker node {socket.gethostname()} (inputs must be "
                "on a filesystem every node mounts at the same path)"
            )
        try:
            return score_span(
                path,
                self.models,
                self.output,
                plan,
                span,
                channels,
                batch_size,
                self.device,
                mode,
                precision,
            )
        except AudioError as exc:
            return str(exc)
