"""AudioSet-pretrained PANNs checkpoints (Kong et al. 2020) as a starting point for bioclass models.

PANNs' Cnn6, Cnn10, Cnn14, MobileNetV1 and ResNet22 (github qiuqiangkong/audioset_tagging_cnn,
pytorch/models.py) are the networks bioclass builds as cnn6 ... resnet22: only the parameter
names differ. This module recognises a PANNs state dict, renames its encoder tensors (bn0, the
trunk, fc1) to bioclass's names and checks shapes and the front end. Not copied: the 527-class
AudioSet layer `fc_audioset` (the recipe's own head replaces it) and torchlibrosa's STFT and mel
matrices (bioclass computes its front end from the recipe; the mel matrix is only checked).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from bioclass.core.errors import BioclassError
from bioclass.models.frontend import FrontendConfig, mel_filterbank

# The log-mel settings every published PANNs checkpoint was trained with (PANNs' main.py defaults).
PANNS_FRONTEND = FrontendConfig(
    sample_rate=32000, n_fft=1024, hop_length=320, n_mels=64, f_min=50.0, f_max=14000.0
)

# bioclass model name -> PANNs class name.
PANNS_ARCHITECTURES: dict[str, str] = {
    "cnn6": "Cnn6",
    "cnn10": "Cnn10",
    "cnn14": "Cnn14",
    "mobilenetv1": "MobileNetV1",
    "resnet22": "ResNet22",
}

AUDIOSET_HEAD = ("fc_audioset.weight", "fc_audioset.bias")
STFT_REAL = "spectrogram_extractor.stft.conv_real.weight"
STFT_IMAG = "spectrogram_extractor.stft.conv_imag.weight"
MEL_MATRIX = "logmel_extractor.melW"
FEATURE_TENSORS = (STFT_REAL, STFT_IMAG, MEL_MATRIX)

_Layer = tuple[str, str, str, tuple[int, ...]]  # (PANNs module, bioclass module, kind, shape)


def _conv(theirs: str, ours: str, c_in: int, c_out: int, k: int, groups: int = 1) -> _Layer:
    return (theirs, ours, "conv", (c_out, c_in // groups, k, k))


def _bn(theirs: str, ours: str, c: int) -> _Layer:
    return (theirs, ours, "bn", (c,))


def _tensor_shapes(kind: str, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Tensor suffix -> shape for one layer."""
    if kind == "conv":
        return {"weight": shape}  # PANNs' convolutions have no bias (BN follows)
    if kind == "linear":
        return {"weight": shape, "bias": shape[:1]}
    stats = ("weight", "bias", "running_mean", "running_var")
    return {**dict.fromkeys(stats, shape), "num_batches_tracked": ()}


def _conv_block(
    theirs: str, ours: str, c_in: int, c_out: int, n_convs: int, k: int
) -> list[_Layer]:
    """PANNs ConvBlock (conv1, bn1, conv2, bn2) or ConvBlock5x5 (conv1, bn1) -> bioclass
    ConvBlock, a Sequential of (conv, BN, ReLU) per convolution."""
    layers = []
    for j in range(n_convs):
        layers += [
            _conv(f"{theirs}.conv{j + 1}", f"{ours}.{3 * j}", c_out if j else c_in, c_out, k),
            _bn(f"{theirs}.bn{j + 1}", f"{ours}.{3 * j + 1}", c_out),
        ]
    return layers


def _cnn(widths: tuple[int, ...], n_convs: int, k: int) -> list[_Layer]:
    ins = (1, *widths[:-1])
    return [
        layer
        for b, (c_in, c_out) in enumerate(zip(ins, widths, strict=True))
        for layer in _conv_block(f"conv_block{b + 1}", f"trunk.blocks.{b}", c_in, c_out, n_convs, k)
    ]


# PANNs' MobileNetV1 after its 1->32 stem: (in, out, stride) of each depthwise-separable block.
_MOBILENET_BLOCKS = (
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    *((512, 512, 1),) * 5,
    (512, 1024, 2),
    (1024, 1024, 1),
)


def _mobilenetv1() -> list[_Layer]:
    # PANNs puts an AvgPool2d(stride) in every block, an identity at stride 1, so its convs and
    # BNs sit at fixed places (0, 2, 4, 5); bioclass has the pool only where it downsamples.
    layers = [
        _conv("features.0.0", "trunk.features.0.0", 1, 32, 3),
        _bn("features.0.2", "trunk.features.0.2", 32),
    ]
    for i, (c_in, c_out, stride) in enumerate(_MOBILENET_BLOCKS, start=1):
        at = (0, 2, 4, 5) if stride == 2 else (0, 1, 3, 4)
        theirs, ours = f"features.{i}", f"trunk.features.{i}"
        layers += [
            _conv(f"{theirs}.0", f"{ours}.{at[0]}", c_in, c_in, 3, groups=c_in),  # depthwise
            _bn(f"{theirs}.2", f"{ours}.{at[1]}", c_in),
            _conv(f"{theirs}.4", f"{ours}.{at[2]}", c_in, c_out, 1),  # pointwise
            _bn(f"{theirs}.5", f"{ours}.{at[3]}", c_out),
        ]
    return layers


def _resnet22() -> list[_Layer]:
    layers = _conv_block("conv_block1", "trunk.stem", 1, 64, 2, 3)
    c_in = 64
    for layer, width in enumerate((64, 128, 256, 512)):
        for block in range(2):
            theirs, ours = f"resnet.layer{layer + 1}.{block}", f"trunk.layers.{2 * layer + block}"
            layers += [
                _conv(f"{theirs}.conv1", f"{ours}.conv1", c_in, width, 3),
                _bn(f"{theirs}.bn1", f"{ours}.bn1", width),
                _conv(f"{theirs}.conv2", f"{ours}.conv2", width, width, 3),
                _bn(f"{theirs}.bn2", f"{ours}.bn2", width),
            ]
            if c_in != width:
                # PANNs' shortcut is (AvgPool2d, conv, BN); bioclass pools once for both paths.
                layers += [
                    _conv(f"{theirs}.downsample.1", f"{ours}.shortcut.0", c_in, width, 1),
                    _bn(f"{theirs}.downsample.2", f"{ours}.shortcut.1", width),
                ]
            c_in = width
    return layers + _conv_block("conv_block_after1", "trunk.conv_after", 512, 2048, 2, 3)


# bioclass model name -> (trunk layers, embedding width: fc1 maps trunk channels to it).
_NETWORKS = {
    "cnn6": (lambda: _cnn((64, 128, 256, 512), 1, 5), 512),
    "cnn10": (lambda: _cnn((64, 128, 256, 512), 2, 3), 512),
    "cnn14": (lambda: _cnn((64, 128, 256, 512, 1024, 2048), 2, 3), 2048),
    "mobilenetv1": (_mobilenetv1, 1024),
    "resnet22": (_resnet22, 2048),
}


@cache
def _layers(model_name: str) -> tuple[_Layer, ...]:
    trunk, width = _NETWORKS[model_name]
    mels = PANNS_FRONTEND.n_mels
    return (_bn("bn0", "frontend.bn0", mels), *trunk(), ("fc1", "fc1", "linear", (width, width)))


@cache
def encoder_mapping(model_name: str) -> Mapping[str, str]:
    """bioclass tensor name -> PANNs tensor name, for every encoder tensor of `model_name`
    (front-end bn0, trunk, fc1), in bioclass's state-dict order."""
    # Read-only: the cache hands the same mapping to every caller.
    return MappingProxyType(
        {
            f"{ours}.{t}": f"{theirs}.{t}"
            for theirs, ours, kind, shape in _layers(model_name)
            for t in _tensor_shapes(kind, shape)
        }
    )


@cache
def _expected_shapes(model_name: str) -> Mapping[str, tuple[int, ...]]:
    """PANNs tensor name -> its shape in the published 32 kHz checkpoint (fc_audioset aside)."""
    shapes = {
        f"{theirs}.{t}": tensor_shape
        for theirs, _, kind, shape in _layers(model_name)
        for t, tensor_shape in _tensor_shapes(kind, shape).items()
    }
    n_freqs, n_fft = PANNS_FRONTEND.n_fft // 2 + 1, PANNS_FRONTEND.n_fft
    shapes[STFT_REAL] = shapes[STFT_IMAG] = (n_freqs, 1, n_fft)
    shapes[MEL_MATRIX] = (n_freqs, PANNS_FRONTEND.n_mels)
    return MappingProxyType(shapes)


def panns_state_dict(data: Any) -> dict[str, torch.Tensor] | None:
    """The model state of a loaded PANNs checkpoint (`{'model': state, ...}` as PANNs saves it,
    or a bare state dict), or None when `data` is not one."""
    state = data.get("model") if isinstance(data, Mapping) and "model" in data else data
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        return None
    if "fc_audioset.weight" not in state or "bn0.running_mean" not in state:
        return None
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        return None
    return dict(state)


def _problems(state: Mapping[str, torch.Tensor], model_name: str) -> list[str]:
    """How `state` differs from PANNs' checkpoint of `model_name` (empty: it is one)."""
    expected = _expected_shapes(model_name)
    # Checkpoints from PyTorch < 0.4.1 have no BN batch counters; nothing depends on them.
    required = {k for k in expected if not k.endswith(".num_batches_tracked")}
    missing = sorted(required - set(state))
    unexpected = sorted(set(state) - set(expected) - set(AUDIOSET_HEAD))
    wrong = [
        f"{k} is {tuple(state[k].shape)}, not {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    return [f"no {k}" for k in missing] + [f"an extra {k}" for k in unexpected] + wrong


def _which_architecture(state: Mapping[str, torch.Tensor]) -> str | None:
    """The bioclass name of the PANNs architecture `state` is exactly, if any."""
    return next((name for name in PANNS_ARCHITECTURES if not _problems(state, name)), None)


def _check_architecture(state: Mapping[str, torch.Tensor], model_name: str, source: str) -> None:
    if model_name not in PANNS_ARCHITECTURES:
        raise BioclassError(
            f"{source}: a PANNs checkpoint; PANNs weights fit model.name "
            f"{', '.join(PANNS_ARCHITECTURES)}, not {model_name}"
        )
    problems = _problems(state, model_name)
    if not problems:
        return
    other = _which_architecture(state)
    if other is not None:
        raise BioclassError(
            f"{source}: holds PANNs {PANNS_ARCHITECTURES[other]} weights, the recipe trains "
            f"{model_name} (set model.name: {other})"
        )
    shown = "; ".join(problems[:3]) + (
        f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    )
    raise BioclassError(
        f"{source}: not the 32 kHz PANNs {PANNS_ARCHITECTURES[model_name]} checkpoint bioclass "
        f"can map ({shown}); bioclass maps {', '.join(PANNS_ARCHITECTURES.values())} trained "
        "at 32 kHz"
    )


def _setting(config: FrontendConfig, name: str) -> str:
    if name == "f_max" and config.f_max is None:
        return f"null ({config.fmax_hz:g} Hz)"
    value = getattr(config, name)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_frontend(frontend: FrontendConfig, model_name: str, source: str) -> None:
    """Refuse, naming every differing setting, a recipe front end other than PANNs' (the weights
    only mean something on the features they were trained on)."""
    want = PANNS_FRONTEND
    differ = [
        name
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max")
        if (frontend.fmax_hz if name == "f_max" else getattr(frontend, name))
        != (want.fmax_hz if name == "f_max" else getattr(want, name))
    ]
    if not differ:
        return
    arch = PANNS_ARCHITECTURES.get(model_name, model_name)
    have = ", ".join(f"{name} {_setting(frontend, name)}" for name in differ)
    fix = ", ".join(f"audio.{name}: {_setting(want, name)}" for name in differ)
    raise BioclassError(
        f"{source}: PANNs {arch} was trained on {want.sample_rate} Hz audio with {want.n_mels} "
        f"mels ({want.f_min:g}-{want.fmax_hz:g} Hz, window {want.n_fft}, hop "
        f"{want.hop_length}); the recipe's audio section has {have}; set {fix}"
    )


def _check_mel_matrix(state: Mapping[str, torch.Tensor], source: str) -> None:
    """The checkpoint's mel matrix must be the one bioclass's front end computes: same mel scale,
    normalisation and band edges, or the trunk would see features it was not trained on."""
    ours = mel_filterbank(
        PANNS_FRONTEND.sample_rate,
        PANNS_FRONTEND.n_fft,
        PANNS_FRONTEND.n_mels,
        PANNS_FRONTEND.f_min,
        PANNS_FRONTEND.f_max,
    ).numpy()
    theirs = state[MEL_MATRIX].detach().cpu().float().numpy()
    # librosa builds it in float32: agreement to float32 rounding, not bit for bit.
    if not np.allclose(theirs, ours, rtol=1e-4, atol=1e-7):
        worst = float(np.abs(theirs - ours).max())
        raise BioclassError(
            f"{source}: its mel matrix ({MEL_MATRIX}) differs from the Slaney mel filters "
            f"bioclass computes for 32 kHz, 64 mels, 50-14000 Hz (max difference {worst:.3g}); "
            "bioclass cannot reproduce the features these weights were trained on"
        )


def panns_encoder_weights(
    state: Mapping[str, torch.Tensor], model_name: str, frontend: FrontendConfig, source: str
) -> dict[str, torch.Tensor]:
    """A PANNs state dict's encoder tensors under bioclass's names, after checking that they fit
    `model_name` with the recipe's `frontend`.

    Returns:
        bioclass tensor name -> tensor for every encoder tensor the checkpoint holds (all of
        them, except BN batch counters an old checkpoint lacks); never `fc_audioset`.

    Raises:
        BioclassError: another architecture, a variant bioclass cannot map (other shapes or
            layers, e.g. Cnn14_16k or ResNet38), or a recipe front end other than PANNs'.
    """
    _check_architecture(state, model_name, source)
    _check_frontend(frontend, model_name, source)
    _check_mel_matrix(state, source)
    return {
        ours: state[theirs]
        for ours, theirs in encoder_mapping(model_name).items()
        if theirs in state
    }
