"""`bioclass.load_model(path)`: a trained classifier in a notebook, and its dense score matrix.

`Model.predict` scores recordings and arrays with the scanner's own pieces (the same model
preparation, streamed reads, window plan, fast/exact scoring and calibrated score maps), so its
numbers are those `bioclass scan --scores` writes for the same model and options.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bioclass.api import checks
from bioclass.api.reporting import file_progress, reporting
from bioclass.audio.discover import collect_inputs
from bioclass.checkpoint import CheckpointInfo
from bioclass.core.activation import ScoreMap
from bioclass.core.errors import BioclassError
from bioclass.evaluation.thresholds import choose_thresholds
from bioclass.inference.arrays import InMemoryRecording
from bioclass.inference.models import LoadedModels, load_models, prepare_for_inference
from bioclass.inference.score import WindowOutput, resolve_mode, score_file
from bioclass.inference.stream import WindowPlan
from bioclass.models import Classifier
from bioclass.runtime.device import pick_device
from bioclass.runtime.precision import resolve_precision
from bioclass.scan.options import ScanOptions


def load_model(path: str | Path) -> Model:
    """A classifier checkpoint (`model.pt` from `bioclass train`), ready to predict.

    Raises:
        BioclassError: the file is missing, not a bioclass checkpoint, or an encoder without
            classes (from `bioclass pretrain`).
    """
    if not isinstance(path, (str, Path)):
        raise BioclassError(f"load_model takes a checkpoint path, got {type(path).__name__}")
    return Model(load_models([Path(path)]))


class Model:
    """A loaded classifier: what it was trained on, its module, and `predict`.

    Attributes:
        path: the checkpoint file.
        classes: class names, in the order of the logits and score columns.
        sample_rate: the rate (Hz) the module takes waveforms at.
        window_seconds: the audio one window covers (the training clip length).
        thresholds: class -> the detection threshold a scan applies by default (fitted in
            training, else 0.5).
        activation: how logits become scores: 'sigmoid' or 'softmax'.
        calibrated: whether training stored a calibration (applied to `predict`'s scores).
        background_label: the class that means "no species".
        module: the `torch.nn.Module` as trained, in eval mode on the CPU: waveforms (B, T)
            float32 at `sample_rate` -> logits (B, C). `scores(logits)` makes them scores.
        info: the checkpoint's full description (`bioclass.checkpoint.CheckpointInfo`).
    """

    def __init__(self, loaded: LoadedModels) -> None:
        self._loaded = loaded
        self._prepared: dict[torch.device, Classifier] = {}
        info = loaded.info
        self.path: Path = loaded.paths[0]
        self.info: CheckpointInfo = info
        self.module: Classifier = loaded.models[0].eval()
        self.classes: list[str] = list(info.classes)
        self.sample_rate: int = info.sample_rate
        self.window_seconds: float = info.window_seconds
        self.activation: str = info.activation.value
        self.calibrated: bool = info.calibration is not None
        self.background_label: str = info.background_label
        self.thresholds: dict[str, float] = choose_thresholds(
            self.classes, info.fitted_thresholds, "the model's fitted thresholds"
        )[0]

    def __repr__(self) -> str:
        return (
            f"<bioclass Model {self.path.name}: {self.info.model_name}, {len(self.classes)} "
            f"classes, {self.sample_rate} Hz, {self.window_seconds:g} s windows, "
            f"{self.activation}{', calibrated' if self.calibrated else ''}>"
        )

    def score_map(self, calibration: str | None = None) -> ScoreMap:
        """How logits become scores: the stored calibration (`calibration` on, off, or None for
        on when there is one), then the activation."""
        return self.info.score_map(calibration)

    def scores(self, logits: torch.Tensor, calibration: str | None = None) -> torch.Tensor:
        """`module`'s logits (B, C) -> the scores a scan reports (B, C)."""
        return self.score_map(calibration)(logits)

    def _prepared_on(self, device: torch.device) -> Classifier:
        """A copy of the module prepared as a scan prepares it (BatchNorms folded, channels-last),
        kept per device; `module` itself stays as trained."""
        if device not in self._prepared:
            self._prepared[device] = prepare_for_inference(copy.deepcopy(self.module), device)
        return self._prepared[device]

    def predict(
        self,
        inputs: Any,
        *,
        hop: float | None = None,
        overlap: float | None = None,
        sample_rate: int | None = None,
        channels: str | int = "mix",
        mode: str = "fast",
        batch_size: int = 64,
        precision: str = "auto",
        device: str = "auto",
        calibration: str | None = None,
        progress: bool = False,
        **unknown: Any,
    ) -> pd.DataFrame:
        """The dense score matrix: one row per window, one column per class.

        Args:
            inputs: a recording (path), a folder or glob of them, a waveform array, or a list of
                any of these; or a mapping name -> path or array. Arrays are (samples,) or
                (channels, samples) at `sample_rate` and are named `array0`, `array1`, ... by
                their position (or by their key in a mapping).
            hop: seconds between window starts (default: half a window).
            overlap: window overlap fraction instead of `hop` (0.5 = half a window).
            sample_rate: the arrays' rate in Hz (needed when an input is an array).
            channels, mode, batch_size, precision, device, calibration: as `bioclass scan`'s
                options of the same names, with the same defaults.
            progress: show a progress bar and the scan's warnings.

        Returns:
            Scores (float32) indexed by (file, start_time, end_time) in seconds, with a
            `channel` level after `file` when `channels` is not 'mix'; the values `bioclass scan
            --scores` writes for the same options. `frame.attrs["damaged"]` lists recordings
            scored in part (file, note).

        Raises:
            BioclassError: a bad argument, an input that matches nothing, an unreadable
                recording (audio errors are `bioclass.audio.AudioError`), or non-finite scores.
        """
        given = {
            "channels": channels,
            "mode": mode,
            "batch_size": batch_size,
            "precision": precision,
            "device": device,
            **unknown,
        }
        opts = checks.checked("predict", given, checks.INFERENCE)
        if hop is not None and overlap is not None:
            raise BioclassError("give hop or overlap, not both")
        if hop is not None:
            checks.positive("hop", hop)
        if overlap is not None:
            checks.overlap("overlap", overlap)
        if calibration is not None:
            checks.one_of(("on", "off"))("calibration", calibration)
        checks.flag("progress", progress)
        recordings = _recordings(inputs, sample_rate)
        with reporting(progress):
            return self._predict(recordings, hop, overlap, calibration, progress, opts)

    def _predict(
        self,
        recordings: list[Path | InMemoryRecording],
        hop: float | None,
        overlap: float | None,
        calibration: str | None,
        progress: bool,
        opts: dict[str, Any],
    ) -> pd.DataFrame:
        device = pick_device(opts["device"])
        precision = resolve_precision(device, opts["precision"]).used
        model = self._prepared_on(device)
        # The hop exactly as a scan resolves it (ScanOptions is where that rule lives).
        hop_s = ScanOptions(Path("-"), hop, overlap).hop_for(self.window_seconds)
        plan = WindowPlan.from_seconds(self.sample_rate, self.window_seconds, hop_s)
        mode = resolve_mode(opts["mode"], [model], plan)
        output = WindowOutput.class_scores(self._loaded.score_maps(calibration))
        frames, damaged = [], []
        with file_progress(progress, "scoring", len(recordings)) as advance:
            for recording in recordings:
                result = score_file(
                    recording,
                    [model],
                    output,
                    plan,
                    channels=opts["channels"],
                    batch_size=opts["batch_size"],
                    device=device,
                    mode=mode,
                    precision=precision,
                )
                if result.note:
                    damaged.append({"file": str(recording), "note": result.note})
                for s in result.streams:
                    frames.append(_stream_frame(str(recording), s, self.classes))
                advance(recording)
        table = pd.concat(frames, ignore_index=True)
        levels = ["file", "start_time", "end_time"]
        if opts["channels"] != "mix":
            levels.insert(1, "channel")
        else:
            table = table.drop(columns="channel")
        table = table.set_index(levels)
        table.columns.name = "class"
        table.attrs["damaged"] = damaged
        return table


def _stream_frame(name: str, stream: Any, classes: list[str]) -> pd.DataFrame:
    """One stream's windows: file, channel, start_time, end_time and a float32 column per class
    (the scan's score matrix columns)."""
    n = len(stream.starts_s)
    frame = pd.DataFrame(
        {
            "file": [name] * n,
            "channel": pd.array([stream.channel] * n, dtype="Int64"),
            "start_time": stream.starts_s,
            "end_time": stream.ends_s,
        }
    )
    scores = pd.DataFrame(stream.scores.astype(np.float32), columns=classes)
    return pd.concat([frame, scores], axis=1)


def _recordings(inputs: Any, sample_rate: int | None) -> list[Path | InMemoryRecording]:
    """The recordings to score, in order: paths found as a scan finds them (folders, globs),
    arrays wrapped with their names."""
    if isinstance(inputs, Mapping):
        named = [(str(name), item) for name, item in inputs.items()]
        if any(isinstance(item, (str, Path)) for _, item in named):
            raise BioclassError("predict: a mapping names arrays; give recordings as paths")
    else:
        items = (
            [inputs]
            if isinstance(inputs, (str, Path, np.ndarray, torch.Tensor))
            or not isinstance(inputs, Sequence)
            else list(inputs)
        )
        named = [(None, item) for item in items]
    if not named:
        raise BioclassError("predict: no inputs given")
    recordings: list[Path | InMemoryRecording] = []
    n_arrays = 0
    for name, item in named:
        if isinstance(item, (str, Path)):
            recordings.extend(collect_inputs([item]))
            continue
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().numpy()
        if not isinstance(item, np.ndarray):
            raise BioclassError(f"predict: inputs are paths or arrays, got {type(item).__name__}")
        if sample_rate is None:
            raise BioclassError("predict: give sample_rate= (Hz) with arrays")
        recordings.append(InMemoryRecording(name or f"array{n_arrays}", item, sample_rate))
        n_arrays += 1
    return recordings
