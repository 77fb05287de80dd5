"""Starting from AudioSet-pretrained PANNs checkpoints (`model.init_from`): the front end equals
PANNs', every encoder tensor lands where PANNs' forward pass uses it, the AudioSet head is left
out, and what cannot fit is refused in one line.

No real PANNs file can be fetched here: the checkpoints are built by `panns_reference`, a rebuild
of the published networks with PANNs' own names, and saved the way PANNs' training script does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import panns_reference
import pytest
import torch
from helpers import run_cli

from bioclass.checkpoint import CheckpointError, encoder_weights, load_encoder_weights
from bioclass.models import FrontendConfig, create_model
from bioclass.models.frontend import LogMel, mel_filterbank
from bioclass.models.panns import (
    AUDIOSET_HEAD,
    FEATURE_TENSORS,
    PANNS_FRONTEND,
    panns_encoder_weights,
)
from bioclass.synthetic.dataset import make_clip_dataset

AUDIO = (
    "{sample_rate: 32000, clip_seconds: 0.5, n_fft: 1024, hop_length: 320, n_mels: 64, "
    "f_min: 50, f_max: 14000}"
)


def _wave(seconds: float, n: int = 1, seed: int = 0) -> torch.Tensor:
    """Noise plus tones at 32 kHz: energy in every mel band."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(32000 * seconds)) / 32000
    waves = [
        0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (300 + 900 * i) * t)
        for i in range(n)
    ]
    return torch.from_numpy(np.stack(waves).astype(np.float32))


def _pretrained(name: str, seed: int = 0) -> panns_reference.PannsNet:
    """A PANNs network with random weights and BN statistics, as if trained (eval mode)."""
    torch.manual_seed(seed)
    net = panns_reference.build(name)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n) + 0.5
            m.bias.data = 0.1 * torch.randn(n)
            m.running_mean = 0.1 * torch.randn(n)
            m.running_var = torch.rand(n) + 0.5
            m.num_batches_tracked = torch.tensor(660000)
    # bn0 sees dB values: statistics of that scale keep the trunk's input near unit variance.
    net.bn0.running_mean = torch.randn(64) - 40.0
    net.bn0.running_var = torch.full((64,), 300.0)
    return net.eval()


@pytest.fixture(scope="module")
def cnn6_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, panns_reference.PannsNet]:
    net = _pretrained("cnn6")
    path = tmp_path_factory.mktemp("panns") / "Cnn6_mAP=0.343.pth"
    panns_reference.save_like_panns(net.state_dict(), path)
    return path, net


def test_bioclass_front_end_equals_panns_front_end() -> None:
    net = panns_reference.build("cnn6")
    ours = mel_filterbank(32000, 1024, 64, 50.0, 14000.0)
    np.testing.assert_allclose(
        ours.numpy(), net.logmel_extractor.melW.numpy(), rtol=1e-5, atol=1e-9
    )
    wave = _wave(1.0)
    with torch.no_grad():
        theirs = net.log_mel(wave)  # torchlibrosa's conv-DFT STFT, melW, 10 log10(max(x, 1e-10))
        mine = LogMel(PANNS_FRONTEND).log_mel(wave)
    assert mine.shape == theirs.shape == (1, 1, 101, 64)
    assert float((mine - theirs).abs().max()) < 1e-3  # dB; measured 3e-5 (float32 rounding)


def test_panns_file_initialises_the_whole_encoder(cnn6_file) -> None:
    path, net = cnn6_file
    model = create_model("cnn6", 3, PANNS_FRONTEND).eval()
    head_before = model.fc.weight.clone()
    assert load_encoder_weights(model, path, "cnn6", PANNS_FRONTEND) == 31
    assert torch.equal(model.fc.weight, head_before)  # the recipe's head, not fc_audioset
    wave = _wave(0.5, n=2)
    with torch.no_grad():
        torch.testing.assert_close(model.embed(wave), net(wave)["embedding"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["cnn10", "mobilenetv1", "resnet22"])
def test_mapped_weights_reproduce_the_panns_embedding(name: str) -> None:
    net = _pretrained(name)
    weights = panns_encoder_weights(net.state_dict(), name, PANNS_FRONTEND, "test")
    model = create_model(name, 3, PANNS_FRONTEND).eval()
    own = model.state_dict()
    assert set(weights) == {k for k in own if not k.startswith("fc.")}
    own.update(weights)
    model.load_state_dict(own)
    wave = _wave(0.4)
    with torch.no_grad():
        torch.testing.assert_close(model.embed(wave), net(wave)["embedding"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "spot"),
    [
        ("cnn6", {"trunk.blocks.3.1.running_var": "conv_block4.bn1.running_var"}),
        ("cnn10", {"trunk.blocks.1.3.weight": "conv_block2.conv2.weight"}),
        ("cnn14", {"trunk.blocks.5.4.num_batches_tracked": "conv_block6.bn2.num_batches_tracked"}),
        ("mobilenetv1", {"trunk.features.1.3.weight": "features.1.4.weight"}),
        ("resnet22", {"trunk.layers.4.shortcut.1.bias": "resnet.layer3.0.downsample.2.bias"}),
    ],
)
def test_each_panns_tensor_lands_once_and_the_head_not_at_all(
    name: str, spot: dict[str, str], tmp_path: Path
) -> None:
    with torch.device("meta"):  # names and shapes only: Cnn14 would be 320 MB
        layout = panns_reference.build(name).state_dict()
    # Each tensor a distinct constant (an expanded scalar: tiny on disk whatever its shape);
    # the front-end matrices keep their values, which are checked.
    tag = {k: float(i + 1) for i, k in enumerate(layout)}
    state = {
        k: v if k in FEATURE_TENSORS else torch.tensor(tag[k], dtype=v.dtype).expand(v.shape)
        for k, v in layout.items()
    }
    path = tmp_path / "panns.pth"
    panns_reference.save_like_panns(state, path)
    model = create_model(name, 2, PANNS_FRONTEND)
    head_before = model.fc.weight.clone()
    n = load_encoder_weights(model, path, name, PANNS_FRONTEND)
    landed = {}
    for k, v in model.state_dict().items():
        if k.startswith("fc."):
            continue
        assert v.min() == v.max(), f"{k} is not one PANNs tensor"
        landed[k] = float(v.flatten()[0])
    assert n == len(landed)
    expected = set(layout) - set(AUDIOSET_HEAD) - set(FEATURE_TENSORS)
    assert sorted(landed.values()) == sorted(tag[k] for k in expected)  # each exactly once
    assert all(landed[ours] == tag[theirs] for ours, theirs in spot.items())
    assert torch.equal(model.fc.weight, head_before)


def _refusal(state_or_path, name: str = "cnn6", frontend: FrontendConfig = PANNS_FRONTEND) -> str:
    with pytest.raises(CheckpointError) as info:
        encoder_weights(state_or_path, name, frontend)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_front_end_other_than_panns_is_refused_naming_every_setting(cnn6_file) -> None:
    path, _ = cnn6_file
    message = _refusal(path, frontend=FrontendConfig(sample_rate=16000, hop_length=160))
    assert message == (
        f"{path}: PANNs Cnn6 was trained on 32000 Hz audio with 64 mels (50-14000 Hz, window "
        "1024, hop 320); the recipe's audio section has sample_rate 16000, hop_length 160, "
        "f_max null (8000 Hz); set audio.sample_rate: 32000, audio.hop_length: 320, "
        "audio.f_max: 14000"
    )


def test_another_architecture_is_refused(cnn6_file) -> None:
    path, _ = cnn6_file
    assert "holds PANNs Cnn6 weights, the recipe trains cnn10 (set model.name: cnn6)" in _refusal(
        path, "cnn10"
    )
    assert "PANNs weights fit model.name cnn6, cnn10, cnn14, mobilenetv1, resnet22, not " in (
        _refusal(path, "wideresnet28_2")
    )


def test_variants_bioclass_cannot_map_are_refused(cnn6_file, tmp_path: Path) -> None:
    path, net = cnn6_file
    state = net.state_dict()
    # Cnn14_16k-style front end: a 512-point STFT gives a 257-row mel matrix.
    small = {**state, "logmel_extractor.melW": torch.zeros(257, 64)}
    torch.save({"model": small}, tmp_path / "16k.pth")
    assert "logmel_extractor.melW is (257, 64), not (513, 64)" in _refusal(tmp_path / "16k.pth")
    extra = {**state, "conv_block5.conv1.weight": torch.zeros(3, 3)}
    torch.save({"model": extra}, tmp_path / "extra.pth")
    assert "an extra conv_block5.conv1.weight" in _refusal(tmp_path / "extra.pth")
    htk = {**state, "logmel_extractor.melW": state["logmel_extractor.melW"] * 1.01}
    torch.save({"model": htk}, tmp_path / "mel.pth")
    assert "its mel matrix (logmel_extractor.melW) differs" in _refusal(tmp_path / "mel.pth")


def test_old_checkpoints_without_batch_counters_load(cnn6_file, tmp_path: Path) -> None:
    _, net = cnn6_file
    state = {k: v for k, v in net.state_dict().items() if "num_batches_tracked" not in k}
    torch.save({"model": state}, tmp_path / "old.pth")  # also: no iteration, no sampler
    model = create_model("cnn6", 2, PANNS_FRONTEND)
    assert load_encoder_weights(model, tmp_path / "old.pth", "cnn6", PANNS_FRONTEND) == 31 - 5


def test_files_that_are_neither_kind_are_one_line_errors(tmp_path: Path) -> None:
    torch.save({"weights": {}}, tmp_path / "dict.pt")
    assert "not a bioclass checkpoint (model.pt, encoder.pt) nor a PANNs one" in _refusal(
        tmp_path / "dict.pt"
    )
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")  # a pickled object
    assert "not a readable bioclass or PANNs checkpoint" in _refusal(tmp_path / "module.pt")
    # Numeric numpy arrays are let through for PANNs' sampler state; object arrays never are.
    torch.save({"model": {}, "sampler": np.array([print], dtype=object)}, tmp_path / "obj.pth")
    assert "not a readable bioclass or PANNs checkpoint" in _refusal(tmp_path / "obj.pth")


@pytest.fixture(scope="module")
def dataset_32k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips32k")
    table = make_clip_dataset(
        root,
        np.random.default_rng(1),
        {"background": 6, "harmonic": 4, "pulses": 4},
        sample_rate=32000,
        duration_range=(0.5, 0.7),
        n_groups=3,
    )
    table.to_csv(root / "labels.csv", index=False)
    return root


def _recipe(folder: Path, dataset: Path, init_from: Path, audio: str = AUDIO) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(
        f"seed: 1\naudio: {audio}\n"
        f"data: {{labels_csv: {dataset / 'labels.csv'}, val_fraction: 0.3}}\n"
        f"model: {{name: cnn6, init_from: {init_from}}}\n"
        "train: {batch_size: 4, iterations: 2, eval_every: 2}\n",
        encoding="utf-8",
    )
    return path


def test_train_starts_from_a_panns_checkpoint(cnn6_file, dataset_32k: Path, tmp_path: Path) -> None:
    path, net = cnn6_file
    recipe = _recipe(tmp_path, dataset_32k, path)
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    assert "initialised 31 encoder tensors from" in output
    assert pd.read_csv(tmp_path / "run" / "metrics.csv")["iteration"].tolist() == [2]


def test_train_refuses_the_wrong_front_end_before_reading_data(
    cnn6_file, dataset_32k: Path, tmp_path: Path
) -> None:
    path, _ = cnn6_file
    recipe = _recipe(tmp_path, dataset_32k, path)
    code, output = run_cli("train", recipe, "--out", tmp_path / "run", "--set", "audio.n_mels=128")
    assert code == 1
    assert "the recipe's audio section has n_mels 128; set audio.n_mels: 64" in output
    assert "decoding" not in output
