"""`bioclass distill` and `distill.teachers`: the losses, the teachers' replayed augmentation,
a student trained end to end, and every refusal."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from helpers import run_cli

from bioclass.augment.spec import mixup, spec_augment
from bioclass.checkpoint import read_checkpoint
from bioclass.core.activation import Activation
from bioclass.recipe.schema import AugmentSection
from bioclass.training.distill import (
    AugmentDraws,
    distillation_loss,
    labelled_loss,
    labelled_share,
    replay_augment,
)

G = AugmentSection(mixup_alpha=0.4, specaugment=True, time_width=4, freq_width=3)


def _augment(spec: torch.Tensor, target: torch.Tensor, seed: int, draws: AugmentDraws):
    """What `Fit._augmented` does with the draws kept, on a given log-mel batch."""
    rng = np.random.default_rng(seed)
    draws.specaugment = copy.deepcopy(rng)
    spec = spec_augment(spec, G, rng)
    draws.mixup = copy.deepcopy(rng)
    return mixup(spec, target, G.mixup_alpha, rng)


def test_a_teacher_replays_the_students_augmentation_exactly() -> None:
    spec = torch.randn(6, 1, 20, 16)
    target = F.one_hot(torch.arange(6) % 3, 3).float()
    draws = AugmentDraws()
    student, _ = _augment(spec, target, 5, draws)
    # Twice: each replay works on copies, so every teacher of an ensemble sees the same.
    for _ in range(2):
        assert torch.equal(replay_augment(spec, G, draws, student.shape), student)
    # Another spectrogram shape gets MixUp (the same partners and weight) but no stripes.
    other = torch.randn(6, 1, 24, 16)
    replayed = replay_augment(other, G, draws, student.shape)
    lam_mixed, _ = mixup(other, target, G.mixup_alpha, copy.deepcopy(draws.mixup))
    assert torch.equal(replayed, lam_mixed)


def test_an_ensemble_scores_the_mean_of_its_teachers_matched_by_class_name(
    trained: Path,
) -> None:
    from bioclass.training.distill import Teachers

    ckpt = read_checkpoint(trained / "model.pt")
    classes = list(ckpt["classes"])
    dev = torch.device("cpu")
    rate = ckpt["frontend"]["sample_rate"]
    one = Teachers.load([str(trained / "model.pt")], classes, rate, dev)
    flipped = Teachers.load([str(trained / "model.pt")], classes[::-1], rate, dev)
    wave = torch.randn(4, rate)
    plain = AugmentSection()
    shape = one.members[0].model.spectrogram(wave).shape
    p = one.scores(wave, plain, AugmentDraws(), shape, 1.0)
    q = flipped.scores(wave, plain, AugmentDraws(), shape, 1.0)
    assert torch.allclose(q, p.flip(1))  # the same class, wherever the student puts it
    pair = Teachers(one.members + flipped.members)
    mean = pair.scores(wave, plain, AugmentDraws(), shape, 1.0)
    assert torch.allclose(mean, (p + p.flip(1)) / 2)
    hot = one.scores(wave, plain, AugmentDraws(), shape, 4.0)
    assert float(hot.std()) < float(p.std())  # a higher temperature softens the scores


def test_labelled_loss_equals_the_plain_objective_when_every_row_is_labelled() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 1])
    assert torch.allclose(
        labelled_loss(logits, y, None, None, Activation.SOFTMAX), F.cross_entropy(logits, y)
    )
    soft = torch.softmax(torch.randn(5, 4), dim=1)
    share = torch.ones(5)
    expected = -(soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    assert torch.allclose(labelled_loss(logits, y, soft, share, Activation.SOFTMAX), expected)
    multi_hot = torch.tensor([[1, 0, 1, 0]] * 5).float()
    assert torch.allclose(
        labelled_loss(logits, multi_hot, None, None, Activation.SIGMOID),
        F.binary_cross_entropy_with_logits(logits, multi_hot),
    )


def test_unlabelled_rows_carry_no_label_loss() -> None:
    logits = torch.randn(4, 3)
    y = torch.tensor([2, -1, 0, -1])
    base = labelled_loss(logits, y, None, None, Activation.SOFTMAX)
    changed = logits.clone()
    changed[[1, 3]] += 10.0  # unlabelled rows' scores do not matter to the labels' loss
    assert torch.allclose(labelled_loss(changed, y, None, None, Activation.SOFTMAX), base)
    assert torch.allclose(base, F.cross_entropy(logits[[0, 2]], y[[0, 2]]))
    none = torch.tensor([-1, -1, -1, -1])
    assert float(labelled_loss(logits, none, None, None, Activation.SIGMOID)) == 0.0


def test_a_row_mixed_with_an_unlabelled_clip_counts_by_its_labelled_share() -> None:
    # Row 0 is 0.7 of a labelled clip of class 1 and 0.3 of an unlabelled clip: its target is
    # class 1 (renormalised), weighted 0.7; row 1 is all unlabelled and does not count.
    logits = torch.randn(3, 3)
    target = torch.tensor([[0.0, 0.7, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    share = torch.tensor([0.7, 0.0, 1.0])
    y = torch.tensor([1, -1, 0])
    got = labelled_loss(logits, y, target, share, Activation.SOFTMAX)
    per_row = F.cross_entropy(logits[[0, 2]], torch.tensor([1, 0]), reduction="none")
    assert torch.allclose(got, (0.7 * per_row[0] + per_row[1]) / 1.7)


def test_labelled_share_follows_mixup() -> None:
    y = torch.tensor([0, -1, 1, -1, 2, 2])
    spec = torch.randn(6, 1, 20, 16)
    target = F.one_hot(y.clamp(min=0), 3).float() * (y >= 0).float().unsqueeze(1)
    draws = AugmentDraws()
    _, mixed = _augment(spec, target, 11, draws)
    share = labelled_share(y, G, draws, 6)
    # Every mixed one-hot row sums to the share of it that came from labelled clips.
    assert torch.allclose(mixed.sum(dim=1), share)
    assert labelled_share(torch.ones(6, 3), G, draws, 6) is None  # multi-hot: all labelled
    plain = AugmentSection()
    assert torch.equal(labelled_share(y, plain, AugmentDraws(), 6), (y >= 0).float())


def test_the_soft_term_pulls_the_student_to_the_teacher() -> None:
    torch.manual_seed(1)
    teacher = torch.softmax(torch.randn(8, 5) * 2, dim=1)
    logits = torch.zeros(8, 5, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(600):
        loss = distillation_loss(logits, teacher, torch.tensor(0.0), 1.0, 2.0, Activation.SOFTMAX)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # At temperature T the student's softened scores reach the teacher's.
    assert torch.allclose(torch.softmax(logits.detach() / 2.0, dim=1), teacher, atol=1e-3)
    # weight 0: the labels alone.
    labels = torch.tensor(0.25)
    labels_only = distillation_loss(logits.detach(), teacher, labels, 0.0, 2.0, Activation.SOFTMAX)
    assert float(labels_only) == 0.25


def test_distill_trains_a_student_that_scans(trained: Path, dataset: Path, tmp_path: Path) -> None:
    unlabelled = tmp_path / "field"
    unlabelled.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(unlabelled / f"f{i}.wav", rng.normal(0, 0.1, 8000 * 3).astype("float32"), 8000)
    out = tmp_path / "student"
    code, output = run_cli(
        "distill",
        trained / "model.pt",
        "--student",
        "mobilenetv1",
        "--out",
        out,
        "--set",
        f"data.unlabelled=[{unlabelled}]",
        "--set",
        "distill.temperature=2",
    )
    assert code == 0, output
    assert "distilling from 1 teacher: model.pt (cnn6)" in output
    assert "unlabelled)" in output  # the field windows took part
    student = read_checkpoint(out / "model.pt")
    teacher = read_checkpoint(trained / "model.pt")
    assert student["model_name"] == "mobilenetv1"
    assert student["classes"] == teacher["classes"]
    assert student["recipe"]["distill"]["teachers"] == [str((trained / "model.pt").resolve())]
    assert student["recipe"]["data"]["labels_csv"] == teacher["recipe"]["data"]["labels_csv"]
    (source,) = student["distilled_from"]
    assert len(source["sha256"]) == 64 and source["model"] == "cnn6"
    assert student["thresholds"]  # fitted as for any trained model
    clip = sorted(dataset.rglob("*.flac"))[0]
    code, output = run_cli("scan", clip, "--model", out / "model.pt", "--out", tmp_path / "d.csv")
    assert code == 0, output
    assert (tmp_path / "d.csv").is_file()


def test_train_with_distill_teachers_resumes_like_any_run(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted distillation continues with `bioclass train --resume` and ends where an
    uninterrupted one does."""
    from bioclass.runtime import loop

    recipe = read_checkpoint(trained / "model.pt")["recipe"]
    sets = ["--set", "train.iterations=6"]
    whole = tmp_path / "whole"
    student = ["distill", trained / "model.pt", "--student", "cnn6"]
    code, output = run_cli(*student, "--out", whole, *sets)
    assert code == 0, output
    calls = {"n": 0}
    original = loop.run_loop

    def stop_after_first_validation(plan, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            plan = type(plan)(**{**plan.__dict__, "n_iterations": 3})
        return original(plan, *args, **kwargs)

    assert recipe["train"]["eval_every"] == 3
    part = tmp_path / "part"
    monkeypatch.setattr("bioclass.training.fit.run_loop", stop_after_first_validation)
    code, output = run_cli(*student, "--out", part, *sets)
    assert code == 0, output
    monkeypatch.undo()
    code, output = run_cli("train", "--resume", part)
    assert code == 0, output
    a = read_checkpoint(whole / "last.pt")["weights"]
    b = read_checkpoint(part / "last.pt")["weights"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_api_distils_as_the_command_does(trained: Path, tmp_path: Path) -> None:
    import bioclass

    result = bioclass.distill(
        trained / "model.pt", "cnn10_half", tmp_path / "s", overrides={"train.iterations": 3}
    )
    assert (result.run_dir / "model.pt").is_file()
    assert read_checkpoint(result.run_dir / "model.pt")["model_name"] == "cnn10_half"
    with pytest.raises(bioclass.BioclassError, match="student must be a model name"):
        bioclass.distill(trained / "model.pt", 7, tmp_path / "t")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--student", "cnn6", "--set", "audio.sample_rate=16000"], "scores audio at 8000 Hz"),
        (["--student", "nonet"], "unknown model"),
        (
            ["--student", "cnn6", "--set", "loss.name=clar", "--set", "augment.mixup_alpha=0"],
            "distill.teachers needs loss.name auto, ce or bce",
        ),
        (["--student", "cnn6", "--set", "distill.weight=1.5"], "distill.weight"),
        (["--student", "cnn6", "--set", "distill.temperature=0"], "distill.temperature"),
    ],
)
def test_bad_distillations_are_refused_in_one_line(
    trained: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "student"
    code, output = run_cli("distill", trained / "model.pt", *args, "--out", out)
    assert code == 1
    assert message in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert not out.exists()


def test_a_teacher_that_cannot_teach_is_refused(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    code, output = run_cli("distill", tmp_path / "nope.pt", "--student", "cnn6", "--out", out)
    assert code == 1 and "no such checkpoint file" in output
    # Another set of classes: the training data's labels lack one of the teacher's.
    table = (dataset / "labels.csv").read_text().splitlines()
    kept = [table[0]] + [row for row in table[1:] if ",pulses," not in row]
    (tmp_path / "labels.csv").write_text("\n".join(kept) + "\n")
    code, output = run_cli(
        "distill",
        trained / "model.pt",
        "--student",
        "cnn6",
        "--set",
        f"data.labels_csv={tmp_path / 'labels.csv'}",
        "--set",
        f"data.audio_root={dataset}",
        "--out",
        out,
    )
    assert code == 1
    assert "scores other classes than the training data has (it adds: pulses)" in output, output
    assert not (out / "model.pt").exists()


def test_a_run_with_unlabelled_windows_evaluates_its_test_split(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    """The run's split.csv lists its unlabelled windows with an empty label; evaluating its
    test rows (as training's own held-out report does) reads only those rows."""
    table = (dataset / "labels.csv").read_text().splitlines()
    header = table[0] + ",split"
    rows = [f"{row},{'test' if i % 5 == 0 else 'train'}" for i, row in enumerate(table[1:])]
    (tmp_path / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    field = tmp_path / "field"
    field.mkdir()
    sf.write(field / "f.wav", np.random.default_rng(0).normal(0, 0.1, 8000 * 2), 8000)
    out = tmp_path / "student"
    code, output = run_cli(
        "distill", trained / "model.pt", "--student", "cnn6", "--out", out,
        "--set", f"data.labels_csv={tmp_path / 'labels.csv'}",
        "--set", f"data.audio_root={dataset}",
        "--set", f"data.unlabelled=[{field}]",
    )  # fmt: skip
    assert code == 0, output
    assert "Held-out test split" in output
    split = (out / "split.csv").read_text().splitlines()
    assert any(",," in row for row in split)  # the unlabelled windows, no label
    code, output = run_cli("evaluate", out / "model.pt", out / "split.csv", "--split", "test")
    assert code == 0, output
