"""Self-describing model checkpoints of plain data (loadable with `weights_only=True`).

A checkpoint holds tensors and JSON-able values only: the weights, the EMA weights, which of the
two to use for inference, class names, front-end settings, model name, the resolved recipe, the
bioclass version and a format number. Never pickled objects: users share these files.

Commands that run a model read what they need through `CheckpointInfo` (built by
`checkpoint_info`), so the dict's layout is known in this module only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bioclass import __version__
from bioclass.core.activation import Activation, Calibration, ScoreMap
from bioclass.core.atomic import atomic_file
from bioclass.core.errors import BioclassError
from bioclass.models import Classifier, FrontendConfig, create_model_with_weights
from bioclass.models.panns import panns_encoder_weights, panns_state_dict

FORMAT = 1


class CheckpointError(BioclassError):
    """A checkpoint that cannot be loaded."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save through the atomic writer: a crash mid-write keeps the previous file."""
    with atomic_file(path, binary=True) as f:
        torch.save(obj, f)


def model_checkpoint(
    model: Classifier,
    model_name: str,
    classes: list[str],
    frontend: FrontendConfig,
    recipe: dict[str, Any],
    ema_state: dict[str, torch.Tensor] | None,
    use_ema: bool,
    score_activation: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the plain-data checkpoint dict."""
    return {
        "format": FORMAT,
        "bioclass_version": __version__,
        "model_name": model_name,
        "classes": list(classes),
        "frontend": frontend.to_dict(),
        "head_dropout": recipe["model"]["dropout"],
        "block_dropout": recipe["model"]["block_dropout"],
        "score_activation": score_activation,  # "softmax" (CE) or "sigmoid" (BCE with MixUp)
        "background_label": recipe["data"]["background_label"],
        "recipe": recipe,
        "weights": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "ema_weights": None if ema_state is None else {k: v.cpu() for k, v in ema_state.items()},
        "use_ema": bool(use_ema),
        **(extra or {}),
    }


def _numpy_globals() -> list[Any]:
    """What numpy arrays and scalars in a pickle need, and nothing that runs code: numeric dtypes
    only (an object array needs ObjectDType, which stays refused). PANNs' training checkpoints
    hold their data sampler's state as numpy arrays next to the weights."""
    core = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    numeric = [type(np.dtype(code)) for code in "?bhilqBHILQefdgFDG"]
    # Files pickled under numpy 1 name the functions numpy.core.multiarray.*.
    numpy1 = [(f, f"numpy.core.multiarray.{f.__name__}") for f in (core._reconstruct, core.scalar)]
    return [np.ndarray, np.dtype, *numeric, core._reconstruct, core.scalar, *numpy1]


def _load(path: str | Path, kind: str, numpy_arrays: bool = False) -> Any:
    """`torch.load` with `weights_only=True` (tensors and plain data, never arbitrary objects).

    Args:
        path: the file.
        kind: what the file should be, for the message when it cannot be read.
        numpy_arrays: also accept numeric numpy arrays and scalars (PANNs checkpoints).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    # torch < 2.5 has no scoped allowlist: there numpy arrays stay refused (an unreadable file).
    scoped = numpy_arrays and hasattr(torch.serialization, "safe_globals")
    allowed = torch.serialization.safe_globals(_numpy_globals()) if scoped else nullcontext()
    try:
        with allowed:
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or non-checkpoint files
        refused = _refused_global(exc)
        if refused is not None:
            raise CheckpointError(
                f"{path}: not a readable {kind}: it holds a Python object ({refused}), and "
                "loading one can run code (bioclass loads weights and plain data only)"
            ) from None
        raise CheckpointError(f"{path}: not a readable {kind} ({type(exc).__name__})") from None


def _refused_global(exc: Exception) -> str | None:
    """The name of the class or function a weights-only load refused, if that is why it failed
    (torch names it in the message; other failures are corrupt or foreign files)."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    return found.group(1) if found else None


def _checked(ckpt: Any, path: str | Path, kind: str = "a bioclass checkpoint") -> dict[str, Any]:
    """`ckpt` if it is a bioclass checkpoint this version can read (`kind`: what else it could
    have been, for the message)."""
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise CheckpointError(f"{path}: not {kind}")
    if ckpt["format"] > FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format']} is newer than this bioclass "
            f"({__version__}, format {FORMAT}); upgrade bioclass to load it"
        )
    return ckpt


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict safely and check its format."""
    return _checked(_load(path, "bioclass checkpoint"), path)


class ModelKind(str, Enum):
    """What a checkpoint's model gives; its value is what encoder checkpoints store as "kind"."""

    CLASSIFIER = "classifier"  # from `bioclass train`: class scores (and embeddings)
    ENCODER = "encoder"  # from `bioclass pretrain`: embeddings only


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about its model, read once from the checkpoint dict.

    Attributes:
        kind: classifier or encoder.
        model_name: registry name of the architecture.
        classes: class names in output order (empty for an encoder).
        frontend: the log-mel settings the model was trained with.
        sample_rate: the model's input rate (Hz), the front end's.
        window_seconds: the audio one input covers: the training clip length, or an encoder's
            patch length.
        channel: the channel of multichannel clips used in training (None: the mono mix).
        activation: how logits become scores (`Activation.NONE` for an encoder).
        background_label: the class that means "no species".
        fitted_thresholds: per-class detection thresholds fitted in training (a class may map
            to None), or None when none were stored.
        use_ema: whether the EMA weights were chosen for inference.
        bioclass_version: the bioclass that wrote the checkpoint.
        pooling: how training pooled the windows of clips longer than the window when it
            validated (`train.pooling`; `centre` for checkpoints from before pooling existed,
            which is how those were validated).
        pooling_hop: the pooled windows' hop as a fraction of the window.
        calibration: the calibration training fitted on the validation logits, or None
            (checkpoints from before calibration existed, and encoders).
    """

    kind: ModelKind
    model_name: str
    classes: tuple[str, ...]
    frontend: FrontendConfig
    sample_rate: int
    window_seconds: float
    channel: int | None
    activation: Activation
    background_label: str
    fitted_thresholds: Mapping[str, float | None] | None
    use_ema: bool
    bioclass_version: str
    pooling: str = "centre"
    pooling_hop: float = 0.5
    calibration: Calibration | None = None

    def score_map(self, calibration: str | None = None) -> ScoreMap:
        """How this model's logits become scores.

        Args:
            calibration: `on` (the stored calibration; an error when there is none), `off`
                (the raw activation) or None (on when the checkpoint has one).
        """
        if calibration not in (None, "on", "off"):
            raise BioclassError(f"--calibration must be on or off, got {calibration!r}")
        if calibration == "on" and self.calibration is None:
            raise BioclassError(
                "--calibration on: this checkpoint has no calibration (trained before "
                "bioclass fitted one); use --calibration off or retrain"
            )
        use = self.calibration if calibration != "off" else None
        return ScoreMap(self.activation, use)


def checkpoint_info(ckpt: dict[str, Any], source: str | Path = "checkpoint") -> CheckpointInfo:
    """The typed view of a checkpoint dict (`source` names it in error messages).

    Raises:
        BioclassError: an unknown score activation or front-end setting.
    """
    encoder = ckpt.get("kind") == ModelKind.ENCODER.value
    kind = ModelKind.ENCODER if encoder else ModelKind.CLASSIFIER
    recipe = ckpt["recipe"]
    if kind is ModelKind.ENCODER:
        # Encoders written before "window_seconds" was stored have only the recipe's patch length.
        window = ckpt.get("window_seconds") or recipe["pretrain"]["patch_seconds"]
    else:
        window = recipe["audio"]["clip_seconds"]
    frontend = FrontendConfig.from_dict(ckpt["frontend"])
    fitted = ckpt.get("thresholds")
    stored = ckpt.get("calibration")
    n_classes = len(ckpt.get("classes") or ())
    calibration = Calibration.from_dict(stored, n_classes, str(source)) if stored else None
    return CheckpointInfo(
        kind=kind,
        model_name=ckpt["model_name"],
        classes=tuple(ckpt.get("classes") or ()),
        frontend=frontend,
        sample_rate=int(frontend.sample_rate),
        window_seconds=float(window),
        channel=recipe.get("audio", {}).get("channel"),
        activation=Activation.parse(ckpt["score_activation"], str(source)),
        background_label=ckpt.get("background_label", "background"),
        # Training stores {class: {"threshold": t, ...fit details}}; a scan needs t alone.
        fitted_thresholds=(
            {name: fit.get("threshold") for name, fit in fitted.items()} if fitted else None
        ),
        use_ema=bool(ckpt.get("use_ema")),
        bioclass_version=str(ckpt.get("bioclass_version", "")),
        pooling=str(recipe.get("train", {}).get("pooling", "centre")),
        pooling_hop=float(recipe.get("train", {}).get("pooling_hop", 0.5)),
        calibration=calibration,
    )


def load_model(path: str | Path) -> tuple[Classifier, dict[str, Any]]:
    """The inference model of a checkpoint (EMA weights when those were chosen), in eval mode."""
    ckpt = read_checkpoint(path)
    weights = (
        ckpt["ema_weights"] if ckpt.get("use_ema") and ckpt.get("ema_weights") else ckpt["weights"]
    )
    model = create_model_with_weights(
        ckpt["model_name"],
        weights,
        n_classes=len(ckpt["classes"]),
        frontend=FrontendConfig.from_dict(ckpt["frontend"]),
        head_dropout=ckpt.get("head_dropout", 0.5),
        block_dropout=ckpt.get("block_dropout", 0.2),
    )
    model.eval()
    return model, ckpt


def load_classifier(path: str | Path) -> tuple[Classifier, dict[str, Any]]:
    """Like `load_model`, for commands that need class scores (scan, evaluate)."""
    model, ckpt = load_model(path)
    if not ckpt.get("classes"):
        raise CheckpointError(
            f"{path}: is an encoder without classes (from bioclass pretrain); train a "
            "classifier from it (model.init_from) or use it with bioclass embed"
        )
    return model, ckpt


# Parts of a Classifier that make up the encoder (everything before the classification layer).
ENCODER_PREFIXES = ("frontend.", "trunk.", "fc1.")


def load_encoder_weights(
    model: Classifier, path: str | Path, model_name: str, frontend: FrontendConfig
) -> int:
    """Copy the encoder weights (front end, trunk, embedding layer) of a checkpoint into `model`.

    Works with encoders from `bioclass pretrain` and with classifiers from `bioclass train`
    (their classification layer is not copied).

    Returns:
        The number of tensors copied.

    Raises:
        CheckpointError: a different architecture or front end, or nothing to copy.
    """
    weights = encoder_weights(path, model_name, frontend)
    own = model.state_dict()
    copied = {
        k: v
        for k, v in weights.items()
        if k.startswith(ENCODER_PREFIXES) and k in own and own[k].shape == v.shape
    }
    if not copied:
        raise CheckpointError(f"{path}: no encoder weights match this model")
    own.update(copied)
    model.load_state_dict(own)
    return len(copied)


def encoder_weights(
    path: str | Path, model_name: str, frontend: FrontendConfig
) -> dict[str, torch.Tensor]:
    """The encoder weights of a bioclass checkpoint, or of an AudioSet-pretrained PANNs checkpoint
    renamed to bioclass's names, after checking they suit `model_name` with `frontend`.

    Raises:
        CheckpointError: unreadable, neither kind, or a different architecture or front end.
    """
    data = _load(path, "bioclass or PANNs checkpoint", numpy_arrays=True)
    panns = panns_state_dict(data)
    if panns is not None:
        try:
            return panns_encoder_weights(panns, model_name, frontend, str(path))
        except BioclassError as exc:
            raise CheckpointError(str(exc)) from None
    ckpt = _checked(
        data,
        path,
        "a bioclass checkpoint (model.pt, encoder.pt) nor a PANNs one (e.g. Cnn14_mAP=0.431.pth)",
    )
    if ckpt.get("model_name") != model_name:
        raise CheckpointError(
            f"{path}: holds a {ckpt.get('model_name')} encoder, the recipe trains {model_name} "
            "(set model.name to match)"
        )
    theirs = FrontendConfig.from_dict(ckpt["frontend"])
    if theirs != frontend:
        differ = [k for k, v in frontend.to_dict().items() if theirs.to_dict().get(k) != v]
        raise CheckpointError(
            f"{path}: its front end differs from the recipe's audio section in "
            f"{', '.join(differ)} ({', '.join(f'{k}={theirs.to_dict()[k]}' for k in differ)}); "
            "the encoder only works on the features it learnt from"
        )
    if ckpt.get("use_ema") and ckpt.get("ema_weights"):
        return ckpt["ema_weights"]
    return ckpt["weights"]
