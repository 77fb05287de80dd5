"""Tests for the model zoo: parameter counts vs. the papers, shapes, strides, registry errors."""

from __future__ import annotations

import functools

import pytest
import torch

from bioclass.core.errors import BioclassError
from bioclass.models import (
    MODEL_NAMES,
    Classifier,
    FrontendConfig,
    count_parameters,
    create_model,
    create_model_with_weights,
)

N_CLASSES = 5
SR = FrontendConfig().sample_rate
HOP = FrontendConfig().hop_length

# Millions of parameters with 5 classes, as reported by Pellegrini (Interspeech 2021).
PAPER_PARAMS_M = {
    "cnn6": 4.57,
    "cnn10": 4.95,
    "mobilenetv1": 4.26,
    "resnet22": 62.60,
    "wideresnet28_2": 1.5,
}

EMBED_DIMS = {
    "cnn6": 512,
    "cnn10": 512,
    "cnn10_half": 256,
    "cnn14": 2048,
    "mobilenetv1": 1024,
    "resnet22": 2048,
    "wideresnet28_2": 128,
}


@functools.cache
def _model(name: str) -> Classifier:
    """One shared instance per architecture: Cnn14/ResNet22 are slow to build."""
    torch.manual_seed(0)
    return create_model(name, N_CLASSES, FrontendConfig())


def _wave(batch: int, n_samples: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, n_samples, generator=gen)


def test_registry_names():
    assert MODEL_NAMES == (
        "cnn6",
        "cnn10",
        "cnn10_half",
        "cnn14",
        "mobilenetv1",
        "resnet22",
        "wideresnet28_2",
    )
    assert set(EMBED_DIMS) == set(MODEL_NAMES)


@pytest.mark.parametrize(("name", "millions"), sorted(PAPER_PARAMS_M.items()))
def test_parameter_count_matches_paper(name, millions):
    n = count_parameters(_model(name))
    assert abs(n / 1e6 - millions) <= 0.03 * millions, f"{name}: {n:,} params"


def test_cnn14_parameter_count_matches_panns():
    # PANNs reports 80.8 M for Cnn14 with the 527 AudioSet classes.
    n = count_parameters(_model("cnn14")) + (527 - N_CLASSES) * (2048 + 1)
    assert abs(n / 1e6 - 80.8) <= 0.03 * 80.8


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_and_embed_shapes(name):
    model = _model(name).train()
    wave = _wave(2, SR * 3)
    logits = model(wave)
    assert logits.shape == (2, N_CLASSES)
    assert torch.isfinite(logits).all()
    model.eval()
    with torch.no_grad():
        emb = model.embed(wave)
    assert model.embed_dim == EMBED_DIMS[name]
    assert emb.shape == (2, EMBED_DIMS[name])
    assert torch.isfinite(emb).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_headless_returns_embedding(name):
    base = _model(name)
    # Reuse the trunk so the big models are not built twice.
    encoder = Classifier(base.frontend, base.trunk, base.trunk_channels, base.embed_dim, 0).eval()
    assert encoder.headless
    with torch.no_grad():
        out = encoder(_wave(2, SR))
        torch.testing.assert_close(out, encoder.embed(_wave(2, SR)))
    assert out.shape == (2, base.embed_dim)
    with pytest.raises(ValueError, match="headless"):
        encoder.classify(encoder.spectrogram(_wave(1, SR)))


def test_create_headless_model():
    model = create_model("cnn6", 0, FrontendConfig())
    assert model.n_classes == 0
    assert not any(name.startswith("fc.") for name, _ in model.named_parameters())
    assert model.eval()(_wave(1, SR)).shape == (1, 512)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_eval_is_deterministic(name):
    model = _model(name).eval()
    wave = _wave(2, SR)
    with torch.no_grad():
        torch.testing.assert_close(model(wave), model(wave), rtol=0, atol=0)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_second_input_works(name):
    model = _model(name).eval()
    with torch.no_grad():
        logits = model(_wave(1, SR))
    assert logits.shape == (1, N_CLASSES)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["cnn6", "cnn10"])
def test_shortest_input_of_stride16_models(name):
    model = _model(name).eval()
    n_samples = int(0.32 * SR)  # 17 frames: just above the time stride of 16
    with torch.no_grad():
        spec = model.spectrogram(_wave(1, n_samples))
        assert model.features(spec).shape[2] == 1
        assert torch.isfinite(model(_wave(1, n_samples))).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_too_short_spectrogram_is_a_clear_error(name):
    model = _model(name).eval()
    spec = torch.zeros(1, 1, model.time_stride - 1, 64)  # one frame short of one output frame
    with pytest.raises(BioclassError, match="too short"), torch.no_grad():
        model.features(spec)


def test_too_short_wave_is_a_clear_error():
    model = _model("resnet22").eval()
    with pytest.raises(BioclassError, match="too short"), torch.no_grad():
        model(_wave(1, SR // 2))  # 26 frames < time stride 32


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_time_stride_matches_feature_map(name):
    model = _model(name).eval()
    frames = 4 * model.time_stride
    n_samples = (frames - 1) * HOP  # centred STFT: n_samples // hop + 1 frames
    with torch.no_grad():
        spec = model.spectrogram(_wave(1, n_samples))
        feat = model.features(spec)
    assert spec.shape == (1, 1, frames, 64)
    assert feat.shape[0:2] == (1, model.trunk_channels)
    assert feat.shape[2] == frames // model.time_stride == 4
    assert feat.shape[3] == 64 // model.freq_stride


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_are_finite(name):
    model = _model(name).train()
    loss = model(_wave(2, SR)).square().mean()
    loss.backward()
    try:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert all(torch.isfinite(g).all() for g in grads)
        assert model.fc1.weight.grad is not None and model.fc1.weight.grad.abs().sum() > 0
        assert model.frontend.bn0.weight.grad is not None
    finally:
        model.zero_grad(set_to_none=True)  # free the big models' gradient memory


def test_state_dict_round_trip_holds_only_weights():
    model = _model("cnn6").eval()
    state = model.state_dict()
    assert not any(k.endswith(("window", "mel_fb")) for k in state)
    fresh = create_model("cnn6", N_CLASSES, FrontendConfig()).eval()
    fresh.load_state_dict(state, strict=True)
    wave = _wave(2, SR)
    with torch.no_grad():
        torch.testing.assert_close(fresh(wave), model(wave))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_model_built_from_weights_is_the_stored_model_exactly(name):
    """Loading skips the random initialisation: every tensor must come from the weights or be
    remade from the front end's settings, so the outputs are bit for bit the stored model's."""
    model = _model(name).eval()
    # Moved BatchNorm statistics too: a buffer left as it was made would not match them.
    gen = torch.Generator().manual_seed(1)
    state = {
        k: v + 0.01 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }
    stored = create_model(name, N_CLASSES, FrontendConfig()).eval()
    stored.load_state_dict(state)
    loaded = create_model_with_weights(name, state, N_CLASSES, FrontendConfig()).eval()
    for (key, a), (_, b) in zip(stored.named_buffers(), loaded.named_buffers(), strict=True):
        assert torch.equal(a, b), key
    wave = _wave(2, SR)
    with torch.no_grad():
        assert torch.equal(loaded(wave), stored(wave))


def test_weights_that_do_not_fit_the_model_are_refused():
    state = _model("cnn6").state_dict()
    with pytest.raises(RuntimeError, match="size mismatch"):
        create_model_with_weights("cnn6", state, N_CLASSES + 1, FrontendConfig())
    with pytest.raises(RuntimeError, match="Missing key"):
        create_model_with_weights(
            "cnn6", {k: v for k, v in state.items() if "bn0" not in k}, N_CLASSES
        )


def test_autocast_forward_is_finite():
    model = _model("wideresnet28_2").eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(_wave(2, SR))
    assert torch.isfinite(logits.float()).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_autocast_matches_float32_front_end():
    model = create_model("cnn6", N_CLASSES, FrontendConfig()).cuda().eval()
    wave = _wave(2, SR).cuda()
    with torch.no_grad():
        ref_spec = model.spectrogram(wave)
        with torch.autocast("cuda", dtype=torch.float16):
            spec = model.spectrogram(wave)
            logits = model(wave)
    # The STFT/log must not run in fp16 even under autocast.
    assert spec.dtype == torch.float32
    torch.testing.assert_close(spec, ref_spec)
    assert torch.isfinite(logits.float()).all()


def test_custom_frontend_is_used():
    cfg = FrontendConfig(sample_rate=32000, hop_length=320, n_mels=128, f_max=14000.0)
    model = create_model("wideresnet28_2", 3, cfg).eval()
    assert model.frontend.config == cfg
    with torch.no_grad():
        spec = model.spectrogram(_wave(1, 32000))
        assert spec.shape == (1, 1, 101, 128)
        assert model(_wave(1, 32000)).shape == (1, 3)


def test_unknown_model_name_lists_choices():
    with pytest.raises(BioclassError) as info:
        create_model("resnet23", N_CLASSES, FrontendConfig())
    message = str(info.value)
    assert "unknown model 'resnet23'" in message
    assert "did you mean 'resnet22'" in message
    for name in MODEL_NAMES:
        assert name in message


def test_model_name_is_case_insensitive():
    assert isinstance(create_model("WideResNet28_2", 2), Classifier)


def test_count_parameters_skips_frozen():
    model = create_model("wideresnet28_2", N_CLASSES, FrontendConfig())
    total = count_parameters(model)
    for p in model.trunk.parameters():
        p.requires_grad_(False)
    frozen = sum(p.numel() for p in model.trunk.parameters())
    assert count_parameters(model) == total - frozen
