"""BatchNorm folding (`models.fusion.fuse_conv_bn`) on every architecture: folded outputs match
the unfolded model, the number folded is what each design allows, and scanning gives the same
scores through the folded model that `prepare_for_inference` builds."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from bioclass.inference.models import prepare_for_inference
from bioclass.inference.score import OutputKind, WindowOutput, fast_mode_problem, score_file
from bioclass.inference.stream import WindowPlan
from bioclass.models import MODEL_NAMES, Classifier, FrontendConfig, create_model
from bioclass.models.fusion import fuse_conv_bn

N_CLASSES = 4
FRONTEND = FrontendConfig()  # 16 kHz, hop 320
# 1 s gives 51 frames: enough for the stride-32 trunks, and cheap on a 2-core CPU.
CLIP_SAMPLES = FRONTEND.sample_rate

# BatchNorm2d layers that sit right after a Conv2d in one of the architecture's nn.Sequentials,
# worked out from the model code. Kept apart from the structural count so that a change in an
# architecture (or in what fuse_conv_bn folds) has to be acknowledged here.
EXPECTED_FOLDS = {
    "cnn6": 4,  # 4 blocks x 1 conv
    "cnn10": 8,  # 4 blocks x 2 convs
    "cnn10_half": 8,  # as cnn10, at half the width
    "cnn14": 12,  # 6 blocks x 2 convs
    # 13 pointwise convs + the 9 depthwise convs that keep the resolution. In the stem and the
    # 4 downsampling depthwise convs a 2x2 average pool sits between conv and BN, so the pair is
    # not adjacent and stays unfolded.
    "mobilenetv1": 22,
    # Stem (2) + conv_after (2) + the 3 projection shortcuts of layers 2-4. The BasicBlocks'
    # conv1/bn1 and conv2/bn2 are wired in forward(), not in a Sequential, so all 16 stay.
    "resnet22": 7,
    # Pre-activation design: every BN precedes its conv. The two conv -> BN edges that do exist
    # in the data flow (stem -> first block's bn1, each block's conv1 -> bn2) cross module
    # boundaries or live in forward(), so nothing is folded and the model is left untouched.
    "wideresnet28_2": 0,
}


def _conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv name, BN name) of every BatchNorm2d directly after a Conv2d in an nn.Sequential."""
    pairs = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (conv_name, conv), (norm_name, norm) in zip(children, children[1:], strict=False):
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                pairs.append((f"{prefix}.{conv_name}", f"{prefix}.{norm_name}"))
    return pairs


def _batchnorms(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def _calibrate(model: Classifier, wave: torch.Tensor, seed: int) -> None:
    """Give every BatchNorm2d a random affine part and running statistics of real activations.

    Fresh models have BN = identity (weight 1, bias 0, mean 0, var 1), which would let a fold
    that ignores the statistics or the affine part pass unnoticed.
    """
    gen = torch.Generator().manual_seed(seed)
    norms = _batchnorms(model)
    with torch.no_grad():
        for bn in norms:
            bn.weight.uniform_(0.5, 1.5, generator=gen)
            bn.bias.copy_(0.2 * torch.randn(bn.bias.shape, generator=gen))
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        # Momentum 1 makes the running statistics exactly this pass's batch statistics.
        bn.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(wave)
    for bn, momentum in zip(norms, momenta, strict=True):
        bn.momentum = momentum
    model.eval()


@pytest.fixture(scope="module")
def calibrated() -> Iterator[Callable[[str], tuple[Classifier, torch.Tensor]]]:
    """get(name) -> (calibrated eval model, (2, CLIP_SAMPLES) wave); built once per module.

    Callers must deep-copy the model before changing it.
    """
    cache: dict[str, tuple[Classifier, torch.Tensor]] = {}

    def get(name: str) -> tuple[Classifier, torch.Tensor]:
        if name not in cache:
            torch.manual_seed(0)
            model = create_model(name, N_CLASSES, FRONTEND)
            gen = torch.Generator().manual_seed(1)
            wave = 0.1 * torch.randn(2, CLIP_SAMPLES, generator=gen)
            _calibrate(model, wave, seed=2)
            cache[name] = (model, wave)
        return cache[name]

    yield get
    cache.clear()  # Cnn14 and ResNet22 hold ~0.3 GB each


def test_expected_folds_cover_the_registry() -> None:
    assert set(EXPECTED_FOLDS) == set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_folding_keeps_outputs_and_folds_every_conv_bn_pair(name: str, calibrated) -> None:
    model, wave = calibrated(name)
    pairs = _conv_bn_pairs(model)
    for _, norm_name in pairs:
        bn = model.get_submodule(norm_name)
        # The premise of the output comparison: statistics far from a fresh BN's.
        assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
        assert bn.running_mean.abs().max() > 1e-3
    n_norms = len(_batchnorms(model))

    with torch.no_grad():
        logits, embedding = model(wave), model.embed(wave)
    fused = copy.deepcopy(model)
    folded = fuse_conv_bn(fused)
    with torch.no_grad():
        fused_logits, fused_embedding = fused(wave), fused.embed(wave)

    assert folded == len(pairs) == EXPECTED_FOLDS[name]
    assert (folded > 0) == (name != "wideresnet28_2")
    for conv_name, norm_name in pairs:
        assert isinstance(fused.get_submodule(norm_name), nn.Identity)
        # The BN's shift ends up as the bias of the (bias-free) conv before it.
        assert fused.get_submodule(conv_name).bias is not None
    assert _conv_bn_pairs(fused) == []
    # Everything that was not a conv -> BN pair (bn0, pre-activation BNs, ...) is still there.
    assert len(_batchnorms(fused)) == n_norms - folded
    assert fuse_conv_bn(fused) == 0

    assert fused_logits.shape == (2, N_CLASSES)
    if folded == 0:
        assert torch.equal(fused_logits, logits)
        assert torch.equal(fused_embedding, embedding)
        return
    # Folding only reorders float32 rounding, and that error scales with the size of the outputs,
    # not of each element, hence atol relative to the largest output. Measured as a fraction of
    # that scale: <= 5e-6 for the CNNs and ResNet22, 2e-5 to 5e-5 for MobileNetV1 (at most 70% of
    # this tolerance over 20 seeds), whose deep BNs see 4 values per channel here and get scales
    # up to ~400; its unfolded float32 output is itself ~6e-5 of scale off a float64 run, where
    # folding agrees to ~1e-13. Dropping the BN's bias, mean, variance or weight, or a 10x eps,
    # fails by far more.
    for got, want in ((fused_logits, logits), (fused_embedding, embedding)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_folding_a_model_in_train_mode_is_refused(name: str, calibrated) -> None:
    model = copy.deepcopy(calibrated(name)[0]).train()
    pairs = _conv_bn_pairs(model)
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn(model)
    # Refused before touching anything: a half-folded model would train wrongly.
    assert _conv_bn_pairs(model) == pairs


# 2 s windows, 1 s hop: 3 feature frames per window even for MobileNetV1's 0.64 s step, so fast
# mode really pools windows from one shared feature map instead of being too coarse to run.
SCAN_PLAN = WindowPlan.from_seconds(FRONTEND.sample_rate, 2.0, 1.0)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """5 s at 16 kHz, noise that drops 20 dB at 3 s plus a tone, as 16-bit WAV; (path, audio)."""
    rate = FRONTEND.sample_rate
    t = np.arange(5 * rate) / rate
    rng = np.random.default_rng(4)
    noise = 0.1 * rng.standard_normal(t.size) * np.where(t < 3.0, 1.0, 0.1)
    wave = (noise + 0.05 * np.sin(2 * np.pi * 900 * t) * (t < 2.5)).astype(np.float32)
    path = tmp_path_factory.mktemp("fusion") / "rec.wav"
    sf.write(str(path), wave, rate, subtype="PCM_16")
    audio, _ = sf.read(str(path), dtype="float32")
    return path, audio


@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("name", ["cnn10", "mobilenetv1"])
def test_scan_scores_folded_match_unfolded(
    name: str, mode: str, recording: tuple[Path, np.ndarray]
) -> None:
    path, audio = recording
    rate, window = FRONTEND.sample_rate, SCAN_PLAN.window_samples
    # BN statistics from the windows being scanned, plus one running into silence like the
    # zero padding fast mode reads past the end. Statistics from other audio (the 1 s noise
    # clips above) push MobileNetV1 to embeddings of ~1e3 and one-hot softmax scores, which
    # would hide a wrong fold.
    clips = [audio[s : s + window] for s in SCAN_PLAN.starts(audio.size)]
    clips.append(np.concatenate([audio[-rate:], np.zeros(window - rate, np.float32)]))
    torch.manual_seed(0)
    model = create_model(name, N_CLASSES, FRONTEND)
    _calibrate(model, torch.from_numpy(np.stack(clips)), seed=5)

    unfolded = copy.deepcopy(model).eval()
    prepared = prepare_for_inference(copy.deepcopy(model), torch.device("cpu"))
    assert len(_conv_bn_pairs(unfolded)) == EXPECTED_FOLDS[name]
    assert _conv_bn_pairs(prepared) == []
    assert fast_mode_problem([unfolded], SCAN_PLAN) is None

    for output in (WindowOutput.class_scores("softmax"), WindowOutput.embedding()):
        want = score_file(path, [unfolded], output, SCAN_PLAN, mode=mode).streams[0].scores
        got = score_file(path, [prepared], output, SCAN_PLAN, mode=mode).streams[0].scores
        softmax = output.kind is OutputKind.CLASS_SCORES
        width = N_CLASSES if softmax else model.embed_dim
        assert got.shape == want.shape == (4, width)
        if softmax:
            assert want.max() < 0.99  # not saturated, so differences in the logits show
        # Same float32 rounding argument as above (measured <= 2e-5 of scale); channels-last
        # kernels in the prepared model add their own.
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
