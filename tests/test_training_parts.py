"""Tests for training building blocks: SpecAugment, MixUp, weight EMA, LR schedule, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bioclass import __version__
from bioclass.augment.spec import mixup, spec_augment
from bioclass.checkpoint import (
    FORMAT,
    CheckpointError,
    atomic_save,
    load_model,
    model_checkpoint,
    read_checkpoint,
)
from bioclass.models import FrontendConfig, create_model
from bioclass.recipe import Recipe, recipe_to_dict
from bioclass.recipe.schema import AugmentSection
from bioclass.runtime.schedule import lr_factor
from bioclass.training.ema import WeightEMA

# --- SpecAugment --------------------------------------------------------------------------------


def spec_batch(batch: int = 4, frames: int = 100, mels: int = 64) -> torch.Tensor:
    """(B, 1, frames, mels) with no zero anywhere, so zeros can only come from masking."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 1, frames, mels, generator=g) + 0.5


def runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean array."""
    padded = np.r_[False, mask, False].astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return list(edges[1::2] - edges[::2])


def masked_rows_cols(spec: torch.Tensor, out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Check the zero pattern is whole stripes shared by the batch; return (time, freq) masks."""
    zero = (out == 0).numpy()
    for b in range(1, zero.shape[0]):
        assert np.array_equal(zero[b], zero[0]), "stripes must be identical across the batch"
    z = zero[0, 0]
    time_masked, freq_masked = z.all(axis=1), z.all(axis=0)
    assert np.array_equal(z, time_masked[:, None] | freq_masked[None, :]), "not whole stripes"
    kept = ~zero
    assert np.array_equal(out.numpy()[kept], spec.numpy()[kept]), "unmasked cells must not change"
    return time_masked, freq_masked


def test_spec_augment_whole_stripes_within_limits_single_stripe():
    spec = spec_batch()
    cfg = AugmentSection(time_stripes=1, time_width=16, freq_stripes=1, freq_width=8)
    widest_t = widest_f = 0
    for seed in range(300):
        out = spec_augment(spec, cfg, np.random.default_rng(seed))
        assert out.shape == spec.shape
        t, f = masked_rows_cols(spec, out)
        assert len(runs(t)) <= 1 and len(runs(f)) <= 1
        assert t.sum() <= 16 and f.sum() <= 8, f"seed {seed}: {t.sum()} frames, {f.sum()} bins"
        widest_t, widest_f = max(widest_t, int(t.sum())), max(widest_f, int(f.sum()))
    assert widest_t == 16 and widest_f == 8, "the maximum widths should be reachable"


def test_spec_augment_several_stripes_within_limits():
    spec = spec_batch(batch=3, frames=50, mels=32)
    cfg = AugmentSection(time_stripes=3, time_width=5, freq_stripes=2, freq_width=4)
    n_time_runs = set()
    for seed in range(300):
        t, f = masked_rows_cols(spec, spec_augment(spec, cfg, np.random.default_rng(seed)))
        assert len(runs(t)) <= 3 and t.sum() <= 15, (seed, runs(t))
        assert len(runs(f)) <= 2 and f.sum() <= 8, (seed, runs(f))
        n_time_runs.add(len(runs(t)))
    assert {0, 1, 2} <= n_time_runs, f"stripe counts seen: {n_time_runs}"


def test_spec_augment_width_larger_than_axis():
    spec = spec_batch(batch=2, frames=5, mels=4)
    cfg = AugmentSection(time_stripes=2, time_width=50, freq_stripes=2, freq_width=50)
    for seed in range(50):
        masked_rows_cols(spec, spec_augment(spec, cfg, np.random.default_rng(seed)))


@pytest.mark.parametrize(
    "cfg",
    [
        AugmentSection(time_stripes=0, freq_stripes=0),
        AugmentSection(time_stripes=3, time_width=0, freq_stripes=3, freq_width=0),
    ],
)
def test_spec_augment_without_stripes_is_identity(cfg):
    spec = spec_batch()
    for seed in range(20):
        assert torch.equal(spec_augment(spec, cfg, np.random.default_rng(seed)), spec)


def test_spec_augment_does_not_modify_input_and_is_seeded():
    spec = spec_batch()
    before = spec.clone()
    cfg = AugmentSection(time_stripes=2, freq_stripes=2)
    a = spec_augment(spec, cfg, np.random.default_rng(5))
    b = spec_augment(spec, cfg, np.random.default_rng(5))
    assert torch.equal(spec, before)
    assert torch.equal(a, b)
    outs = [spec_augment(spec, cfg, np.random.default_rng(s)) for s in range(10)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


# --- MixUp --------------------------------------------------------------------------------------


def mix_inputs(batch: int = 6, n_classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    spec = torch.randn(batch, 1, 10, 8, generator=g)
    target = nn.functional.one_hot(torch.arange(batch) % n_classes, n_classes).float()
    return spec, target


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_mixup_is_the_drawn_convex_combination(seed):
    spec, target = mix_inputs()
    mixed, mixed_target = mixup(spec, target, 0.4, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    lam = float(rng.beta(0.4, 0.4))
    perm = torch.from_numpy(rng.permutation(spec.shape[0]))
    assert 0.0 <= lam <= 1.0
    torch.testing.assert_close(mixed, lam * spec + (1 - lam) * spec[perm])
    torch.testing.assert_close(mixed_target, lam * target + (1 - lam) * target[perm])
    torch.testing.assert_close(mixed_target.sum(dim=1), torch.ones(spec.shape[0]))
    assert (mixed_target >= 0).all() and (mixed_target <= 1).all()


def test_mixup_deterministic_for_a_seed():
    spec, target = mix_inputs()
    a = mixup(spec, target, 1.0, np.random.default_rng(3))
    b = mixup(spec, target, 1.0, np.random.default_rng(3))
    c = mixup(spec, target, 1.0, np.random.default_rng(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


# --- WeightEMA ----------------------------------------------------------------------------------


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def set_params(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_ema_tracks_then_averages_exactly():
    model = tiny_model()
    ema = WeightEMA(model, decay=0.9, start=2)
    params = [name for name, _ in model.named_parameters()]

    set_params(model, 1.0)
    ema.update(model, 1)
    assert all(torch.equal(ema.state[k], torch.full_like(ema.state[k], 1.0)) for k in params)
    set_params(model, 4.0)
    ema.update(model, 2)  # still <= start: follows the weights
    assert not ema.active
    assert all(torch.equal(ema.state[k], torch.full_like(ema.state[k], 4.0)) for k in params)

    set_params(model, 2.0)
    ema.update(model, 3)  # 0.9 * 4 + 0.1 * 2 = 3.8
    assert ema.active
    for k in params:
        torch.testing.assert_close(ema.state[k], torch.full_like(ema.state[k], 3.8))
    set_params(model, 0.0)
    ema.update(model, 4)  # 0.9 * 3.8 = 3.42
    for k in params:
        torch.testing.assert_close(ema.state[k], torch.full_like(ema.state[k], 3.42))
    assert model[0].weight.detach().eq(0).all(), "the model itself is not touched"


def test_ema_hand_computed_on_linear():
    model = nn.Linear(2, 1, bias=True)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        model.bias.fill_(0.5)
    ema = WeightEMA(model, decay=0.75, start=0)
    expected_w, expected_b = np.array([1.0, -2.0]), 0.5
    for step, (w, b) in enumerate([([3.0, 2.0], 1.5), ([-1.0, 0.0], -0.5), ([0.0, 4.0], 2.0)]):
        with torch.no_grad():
            model.weight.copy_(torch.tensor([w]))
            model.bias.fill_(b)
        ema.update(model, step + 1)
        expected_w = 0.75 * expected_w + 0.25 * np.array(w)
        expected_b = 0.75 * expected_b + 0.25 * b
        np.testing.assert_allclose(ema.state["weight"].numpy()[0], expected_w, rtol=1e-6)
        np.testing.assert_allclose(float(ema.state["bias"]), expected_b, rtol=1e-6)
    # (((1*.75 + 3*.25)*.75 - 1*.25)*.75 + 0*.25) = 0.65625
    assert float(ema.state["weight"][0, 0]) == pytest.approx(0.65625)


def test_ema_copies_batchnorm_buffers():
    model = tiny_model()
    ema = WeightEMA(model, decay=0.99, start=0)
    bn = model[1]
    model.train()
    for _ in range(3):
        model(torch.randn(8, 3) * 5 + 2)
    assert bn.num_batches_tracked.item() == 3
    ema.update(model, 1)
    assert torch.equal(ema.state["1.running_mean"], bn.running_mean)
    assert torch.equal(ema.state["1.running_var"], bn.running_var)
    assert ema.state["1.num_batches_tracked"].item() == 3
    # while the BN affine parameters (parameters, not buffers) are averaged
    with torch.no_grad():
        bn.weight.fill_(3.0)
    ema.update(model, 2)
    torch.testing.assert_close(ema.state["1.weight"], torch.full((2,), 0.99 * 1.0 + 0.01 * 3.0))


def test_ema_state_is_a_copy_and_load_state():
    model = tiny_model()
    ema = WeightEMA(model, decay=0.5, start=10)
    before = ema.state["0.weight"].clone()
    set_params(model, 7.0)
    assert torch.equal(ema.state["0.weight"], before), "EMA must not alias the model's tensors"
    saved = {k: v.clone() + 1 for k, v in model.state_dict().items()}
    ema.load_state(saved, iteration=11)
    assert ema.active and torch.equal(ema.state["0.weight"], saved["0.weight"])
    ema.load_state(saved, iteration=10)
    assert not ema.active


# --- LR schedule --------------------------------------------------------------------------------


def test_warmup_ramps_linearly():
    factors = [lr_factor(i, 100, 4, "constant") for i in range(6)]
    assert factors == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    cos = [lr_factor(i, 100, 4, "cosine") for i in range(4)]
    assert cos == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_constant_without_warmup():
    assert {lr_factor(i, 50, 0, "constant") for i in range(0, 200, 7)} == {1.0}


def test_cosine_from_one_to_zero():
    total, warmup = 120, 20
    assert lr_factor(warmup, total, warmup, "cosine") == pytest.approx(1.0)
    assert lr_factor(70, total, warmup, "cosine") == pytest.approx(0.5)  # half-way
    assert lr_factor(total, total, warmup, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(total + 50, total, warmup, "cosine") == pytest.approx(0.0, abs=1e-12)
    decay = [lr_factor(i, total, warmup, "cosine") for i in range(warmup, total + 1)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False)), "must not increase"
    expected = 0.5 * (1 + math.cos(math.pi * 30 / 100))
    assert lr_factor(50, total, warmup, "cosine") == pytest.approx(expected)


def test_cosine_without_warmup_starts_at_one():
    assert lr_factor(0, 10, 0, "cosine") == 1.0
    assert lr_factor(10, 10, 0, "cosine") == pytest.approx(0.0, abs=1e-12)


# --- checkpoints --------------------------------------------------------------------------------


def test_atomic_save_leaves_no_temp_files(tmp_path):
    path = tmp_path / "run" / "state.pt"
    atomic_save({"format": FORMAT, "x": torch.arange(3)}, path)
    atomic_save({"format": FORMAT, "x": torch.arange(5)}, path)  # overwrite
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.pt"]
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(5))


def test_atomic_save_failure_keeps_previous_file(tmp_path):
    path = tmp_path / "state.pt"
    atomic_save({"format": FORMAT, "v": 1}, path)
    with pytest.raises(Exception):  # noqa: B017 - torch/pickle raise various types
        atomic_save({"format": FORMAT, "f": lambda: None}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"], "temp file left behind"
    assert read_checkpoint(path)["v"] == 1


def test_newer_format_asks_to_upgrade(tmp_path):
    path = tmp_path / "future.pt"
    atomic_save({"format": FORMAT + 1}, path)
    with pytest.raises(CheckpointError, match="upgrade") as info:
        read_checkpoint(path)
    assert f"format {FORMAT + 1}" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"definitely not a checkpoint",
        bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)),
    ],
)
def test_random_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "random.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable bioclass checkpoint"):
        read_checkpoint(path)


def test_non_checkpoint_objects_are_refused(tmp_path):
    plain = tmp_path / "list.pt"
    torch.save([1, 2, 3], plain)
    with pytest.raises(CheckpointError, match="not a bioclass checkpoint"):
        read_checkpoint(plain)
    no_format = tmp_path / "dict.pt"
    torch.save({"weights": {}}, no_format)
    with pytest.raises(CheckpointError, match="not a bioclass checkpoint"):
        read_checkpoint(no_format)
    pickled = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 2), pickled)  # a pickled object: refused by weights_only loading
    with pytest.raises(CheckpointError, match="not a readable"):
        read_checkpoint(pickled)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")


def test_truncated_checkpoint_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "ok.pt"
    atomic_save({"format": FORMAT, "w": torch.randn(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


FRONTEND = FrontendConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=32, f_max=4000)


@pytest.fixture(scope="module")
def tiny_checkpoint() -> dict:
    torch.manual_seed(0)
    model = create_model("cnn6", 3, FRONTEND)
    ema_state = {
        k: (v + 0.01 if v.is_floating_point() else v.clone()) for k, v in model.state_dict().items()
    }
    recipe = recipe_to_dict(Recipe())
    return model_checkpoint(
        model,
        "cnn6",
        ["owl", "wren", "robin"],
        FRONTEND,
        recipe,
        ema_state,
        use_ema=True,
        score_activation="softmax",
        extra={"iteration": 12},
    )


def test_model_checkpoint_loads_with_weights_only(tmp_path, tiny_checkpoint):
    path = tmp_path / "model.pt"
    atomic_save(tiny_checkpoint, path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["format"] == FORMAT and ckpt["bioclass_version"] == __version__
    assert ckpt["classes"] == ["owl", "wren", "robin"] and ckpt["model_name"] == "cnn6"
    assert FrontendConfig.from_dict(ckpt["frontend"]) == FRONTEND
    assert ckpt["recipe"] == recipe_to_dict(Recipe())
    assert ckpt["iteration"] == 12 and ckpt["use_ema"] is True
    assert ckpt["score_activation"] == "softmax"
    assert ckpt["head_dropout"] == Recipe().model.dropout
    assert set(ckpt["weights"]) == set(ckpt["ema_weights"])


@pytest.mark.parametrize("use_ema", [True, False])
def test_load_model_uses_chosen_weights(tmp_path, tiny_checkpoint, use_ema):
    path = tmp_path / "model.pt"
    atomic_save({**tiny_checkpoint, "use_ema": use_ema}, path)
    model, ckpt = load_model(path)
    assert not model.training, "inference model must be in eval mode"
    chosen = ckpt["ema_weights"] if use_ema else ckpt["weights"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, chosen[k]), k
    with torch.no_grad():
        logits = model(torch.randn(2, 8000))
    assert logits.shape == (2, 3)
