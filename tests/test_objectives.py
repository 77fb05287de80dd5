"""Training objectives beyond cross-entropy (SoundCLR, supervised ACL, CLAR), semi-supervised
data, waveform augmentation in training, and starting from a pretrained encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from helpers import run_cli

from bioclass.data.clips import ClipDataset, ClipSpec
from bioclass.data.sampler import BatchSampler
from bioclass.data.unlabelled import withhold_labels
from bioclass.losses import angular_margin_supervised, nt_xent, supcon
from bioclass.models import FrontendConfig, create_model
from bioclass.recipe import recipe_from_dict
from bioclass.recipe.objectives import resolve_loss
from bioclass.training.objectives import Objective

FRONTEND = FrontendConfig(sample_rate=8000, n_fft=256, hop_length=160, n_mels=32, f_max=4000)

BASE = """\
seed: 3
audio: {{sample_rate: 8000, clip_seconds: 1.0, n_fft: 256, hop_length: 160, n_mels: 32,
        f_max: 4000}}
data: {{labels_csv: {csv}, val_fraction: 0.3}}
model: {{name: cnn6}}
train: {{batch_size: 8, iterations: 6, eval_every: 3, ema_start: 3, ema_decay: 0.9}}
"""


def _setup(loss: dict, iterations: int = 10):
    recipe = recipe_from_dict({"loss": loss, "model": {"name": "cnn6"}})
    torch.manual_seed(0)
    model = create_model("cnn6", 3, FRONTEND, head_dropout=0.0, block_dropout=0.0)
    objective = Objective.build(recipe, model, iterations)
    model.eval()
    if objective.head is not None:
        objective.head.eval()
    spec = torch.randn(8, 1, 51, 32)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    return recipe, model, objective, spec, y


def test_auto_loss_follows_the_paper() -> None:
    assert resolve_loss(recipe_from_dict({})) == "ce"
    assert resolve_loss(recipe_from_dict({"augment": {"mixup_alpha": 0.4}})) == "bce"


def test_supcon_hybrid_is_the_soundclr_sum() -> None:
    recipe, model, objective, spec, y = _setup(
        {"name": "supcon_hybrid", "alpha": 0.3, "temperature": 0.5}
    )
    h, logits = model.embed_and_classify(spec)
    z = objective.head(F.normalize(h, dim=1))
    assert z.shape == (8, 64)  # SoundCLR's 64-d linear projection
    expected = 0.3 * supcon(z, y, 0.5) + 0.7 * F.cross_entropy(logits, y)
    got = objective.loss(model, spec, y, None, iteration=1)
    torch.testing.assert_close(got, expected)


def test_ce_angular_adds_the_margin_loss_on_the_embedding() -> None:
    _, model, objective, spec, y = _setup({"name": "ce_angular", "alpha": 0.5, "margin": 0.7})
    h, logits = model.embed_and_classify(spec)
    expected = 0.5 * angular_margin_supervised(h, y, 0.7) + 0.5 * F.cross_entropy(logits, y)
    torch.testing.assert_close(objective.loss(model, spec, y, None, 1), expected)


def test_clar_pairs_views_and_ignores_missing_labels_in_ce() -> None:
    _, model, objective, spec, _ = _setup({"name": "clar", "alpha": 0.5, "temperature": 0.2})
    y = torch.tensor([0, 1, -1, -1, 0, 1, -1, -1])  # 4 clips x 2 views, two unlabelled
    h, logits = model.embed_and_classify(spec)
    z = objective.head(h)
    ce = F.cross_entropy(logits[y >= 0], y[y >= 0])
    expected = 0.5 * nt_xent(z[:4], z[4:], 0.2) + 0.5 * ce
    torch.testing.assert_close(objective.loss(model, spec, y, None, 1), expected)
    only_unlabelled = torch.full((8,), -1)
    loss = objective.loss(model, spec, only_unlabelled, None, 1)
    torch.testing.assert_close(loss, 0.5 * nt_xent(z[:4], z[4:], 0.2))


def test_two_stage_freezes_the_encoder_after_supcon() -> None:
    recipe, model, objective, spec, y = _setup(
        {"name": "supcon_two_stage", "supcon_fraction": 0.5}, iterations=10
    )
    assert not objective.frozen(5) and objective.frozen(6)
    assert not objective.validates(5) and objective.validates(6)
    optimizer = torch.optim.Adam([*model.parameters(), *objective.parameters()], lr=0.01)
    for iteration in (6, 7):
        objective.set_mode(model, iteration)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        loss = objective.loss(model, spec, y, None, iteration)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        after = model.state_dict()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed == {"fc.weight", "fc.bias"}  # BN statistics included: nothing else
    objective.set_mode(model, 1)
    assert all(p.requires_grad for p in model.parameters())


def test_sampler_adds_unlabelled_clips_to_balanced_batches() -> None:
    targets = np.array([0] * 20 + [1] * 4 + [-1] * 50)
    sampler = BatchSampler(targets, 8, seed=1, balanced=True, start=0, stop=20, n_unlabelled=6)
    for batch in sampler:
        idx = np.array([i for i, _ in batch])
        assert len(idx) == 14
        labelled, extra = idx[:8], idx[8:]
        assert (targets[labelled] >= 0).all() and (targets[extra] == -1).all()
        assert (targets[labelled] == 0).sum() == 4  # balanced among the labelled
    again = BatchSampler(targets, 8, seed=1, balanced=True, start=5, stop=6, n_unlabelled=6)
    assert next(iter(again)) == sampler.batch(5)  # resumable


def test_withhold_labels_keeps_n_per_class() -> None:
    table = pd.DataFrame({"label": ["a"] * 30 + ["b"] * 3})
    keep = withhold_labels(table, per_class=5, fraction=1.0, seed=0)
    assert keep[:30].sum() == 5 and keep[30:].sum() == 3
    keep = withhold_labels(table, per_class=None, fraction=0.1, seed=0)
    assert keep[:30].sum() == 3 and keep[30:].sum() == 1  # at least one per class


def test_clip_views_are_augmented_independently_and_reproducibly(tmp_path: Path) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
    table = pd.DataFrame({"file": [str(tmp_path / "a.wav")], "label": ["x"]})
    cfg = recipe_from_dict(
        {"wave_augment": {"noise": {"prob": 1.0}, "time_shift": {"prob": 1.0}}}
    ).wave_augment
    data = ClipDataset(table, ["x"], ClipSpec(8000, 1.0), augment=cfg, views=2)
    views, target = data[(0, 42)]
    assert views.shape == (2, 8000) and target == 0
    assert not torch.equal(views[0], views[1])
    torch.testing.assert_close(data[(0, 42)][0], views)
    plain, _ = data[0]  # evaluation: no augmentation
    assert plain.shape == (8000,)


def _train(tmp_path: Path, csv: Path, name: str, *sets: str) -> tuple[int, str]:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(BASE.format(csv=csv))
    args = ["train", recipe, "--out", tmp_path / name]
    for s in sets:
        args += ["--set", s]
    return run_cli(*args)


def test_clar_trains_with_unlabelled_audio_and_withheld_labels(
    dataset: Path, tmp_path: Path
) -> None:
    from bioclass.synthetic.dataset import make_long_recording

    archive = tmp_path / "archive"
    make_long_recording(
        archive / "field.wav", np.random.default_rng(1), 12.0, 8000, n_calls=2, species=["harmonic"]
    )
    code, output = _train(
        tmp_path,
        dataset / "labels.csv",
        "clar",
        "loss.name=clar",
        f"data.unlabelled={archive}",
        "data.labelled_per_class=2",
        "wave_augment.fade.prob=0.5",
        "wave_augment.noise.prob=0.5",
    )
    assert code == 0, output
    split = pd.read_csv(tmp_path / "clar" / "split.csv")
    train = split[split["split"] == "train"]
    assert train["labelled"].sum() == 6  # 2 per class x 3 classes
    assert (train["file"] == str(archive / "field.wav")).sum() == 12  # 1 s windows
    assert "(+ " in output and "unlabelled)" in output
    assert (tmp_path / "clar" / "model.pt").is_file()


@pytest.mark.parametrize("loss", ["supcon_hybrid", "supcon_two_stage", "ce_angular"])
def test_supervised_hybrid_losses_train_end_to_end(
    dataset: Path, tmp_path: Path, loss: str
) -> None:
    code, output = _train(tmp_path, dataset / "labels.csv", loss, f"loss.name={loss}")
    assert code == 0, output
    metrics = pd.read_csv(tmp_path / loss / "metrics.csv")
    if loss == "supcon_two_stage":
        assert metrics["iteration"].min() > 3  # no validation during the SupCon stage
    assert np.isfinite(metrics["train_loss"]).all()


def test_frozen_encoder_from_init_keeps_encoder_weights(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    code, output = _train(
        tmp_path,
        dataset / "labels.csv",
        "frozen",
        f"model.init_from={trained / 'model.pt'}",
        "model.freeze_encoder=true",
    )
    assert code == 0, output
    assert "initialised" in output
    source = torch.load(trained / "model.pt", weights_only=True)
    source_weights = source["ema_weights"] if source["use_ema"] else source["weights"]
    final = torch.load(tmp_path / "frozen" / "last.pt", weights_only=True)["weights"]
    encoder = [k for k in final if k.startswith(("frontend.", "trunk.", "fc1."))]
    assert encoder and all(torch.equal(final[k], source_weights[k]) for k in encoder)
    assert not torch.equal(final["fc.weight"], source_weights["fc.weight"])


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["model.name=cnn10"], "holds a cnn6 encoder, the recipe trains cnn10"),
        (["audio.n_mels=24"], "front end differs from the recipe's audio section in n_mels"),
    ],
)
def test_incompatible_init_checkpoint_is_refused_early(
    trained: Path, dataset: Path, tmp_path: Path, sets: list[str], expected: str
) -> None:
    code, output = _train(
        tmp_path, dataset / "labels.csv", "bad", f"model.init_from={trained / 'model.pt'}", *sets
    )
    assert code == 1
    assert expected in output
    assert "decoding" not in output  # refused before the data were read


def test_mixup_with_a_contrastive_loss_is_refused(dataset: Path, tmp_path: Path) -> None:
    code, output = _train(
        tmp_path, dataset / "labels.csv", "mix", "loss.name=clar", "augment.mixup_alpha=0.4"
    )
    assert code == 1
    assert "augment.mixup_alpha needs loss.name auto, ce or bce" in output
