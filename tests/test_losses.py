"""Tests of bioclass.losses against deliberately naive, loop-by-loop float64 references.

The references below use python loops over (i, j) with math.exp / math.log / math.acos on
plain lists of floats, so they share no code (and no vectorisation tricks) with the losses
under test. The stable variants only add the textbook max-subtraction of log-sum-exp, needed
for tau = 0.01 where exp(1/tau) = exp(100) is beyond float64 comfort once summed.
"""

from __future__ import annotations

import math

import pytest
import torch

from bioclass.losses import (
    angular_contrastive,
    angular_margin,
    angular_margin_supervised,
    nt_xent,
    supcon,
)

# ---------------------------------------------------------------------------------------------
# Naive references (float64, python loops)
# ---------------------------------------------------------------------------------------------


def _rows(x: torch.Tensor) -> list[list[float]]:
    return [[float(v) for v in row] for row in x.detach().double().tolist()]


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(a * a for a in v))
    return [a / norm for a in v]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _cos(a: list[float], b: list[float]) -> float:
    return _dot(_unit(a), _unit(b))


def _log_sum_exp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def ref_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float, stable: bool = False) -> float:
    """Eq. 1 of Wang et al. 2022 averaged over all 2B anchors, literally."""
    z = _rows(z1) + _rows(z2)
    n, b = len(z), len(z) // 2
    total = 0.0
    for i in range(n):
        j = (i + b) % n
        if stable:
            logits = [_cos(z[i], z[k]) / tau for k in range(n) if k != i]
            total += -(_cos(z[i], z[j]) / tau - _log_sum_exp(logits))
        else:
            num = math.exp(_cos(z[i], z[j]) / tau)
            den = sum(math.exp(_cos(z[i], z[k]) / tau) for k in range(n) if k != i)
            total += -math.log(num / den)
    return total / n


def ref_supcon(z: torch.Tensor, labels: list[int], tau: float, stable: bool = False) -> float:
    """Khosla et al. L^sup_out; -1 rows: no anchor, no positive, still in denominators."""
    zs = _rows(z)
    n = len(zs)
    losses = []
    for i in range(n):
        if labels[i] == -1:
            continue
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        logits = [_cos(zs[i], zs[a]) / tau for a in range(n) if a != i]
        log_den = _log_sum_exp(logits) if stable else math.log(sum(math.exp(v) for v in logits))
        acc = 0.0
        for p in positives:
            acc += _cos(zs[i], zs[p]) / tau - log_den
        losses.append(-acc / len(positives))
    return sum(losses) / len(losses) if losses else 0.0


def _ref_margin_pairs(h: list[list[float]], same: list[list[bool]], m: float) -> float:
    pos_sum, pos_n, neg_sum, neg_n = 0.0, 0, 0.0, 0
    for i in range(len(h)):
        for j in range(len(h)):
            if i == j:
                continue
            theta = math.acos(max(-1.0, min(1.0, _cos(h[i], h[j]))))
            if same[i][j]:
                pos_sum += theta**2
                pos_n += 1
            else:
                neg_sum += max(0.0, m - theta) ** 2
                neg_n += 1
    return (pos_sum / pos_n if pos_n else 0.0) + (neg_sum / neg_n if neg_n else 0.0)


def ref_angular_margin(h1: torch.Tensor, h2: torch.Tensor, m: float) -> float:
    h = _rows(h1) + _rows(h2)
    n, b = len(h), len(h) // 2
    same = [[j == (i + b) % n for j in range(n)] for i in range(n)]
    return _ref_margin_pairs(h, same, m)


def ref_angular_margin_supervised(h: torch.Tensor, labels: list[int], m: float) -> float:
    kept = [row for row, y in zip(_rows(h), labels, strict=True) if y != -1]
    ys = [y for y in labels if y != -1]
    same = [[ys[i] == ys[j] for j in range(len(ys))] for i in range(len(ys))]
    return _ref_margin_pairs(kept, same, m)


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# NT-Xent
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.1, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("batch", [1, 3, 6])
def test_nt_xent_matches_naive_reference(tau: float, batch: int) -> None:
    z1, z2 = _randn(batch, 5, seed=batch), _randn(batch, 5, seed=100 + batch)
    got = nt_xent(z1, z2, tau)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(ref_nt_xent(z1, z2, tau), rel=1e-10, abs=1e-12)
    # float32 inputs give the same value to float32 accuracy
    got32 = nt_xent(z1.float(), z2.float(), tau)
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(ref_nt_xent(z1, z2, tau), rel=1e-5, abs=1e-6)


def test_nt_xent_is_zero_for_a_single_pair() -> None:
    # B = 1: the positive is the only other embedding, so the softmax is 1 and the loss 0.
    assert nt_xent(_randn(1, 4, seed=0), _randn(1, 4, seed=1), 0.1).item() == pytest.approx(0.0)


@pytest.mark.parametrize("tau", [0.01, 0.05])
def test_nt_xent_low_temperature_is_finite_and_exact(tau: float) -> None:
    z1, z2 = _randn(5, 4, seed=7), _randn(5, 4, seed=8)
    ref = ref_nt_xent(z1, z2, tau, stable=True)
    assert ref > 1.0  # a genuinely large loss, far from a trivial value
    for dtype, rel in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        a = z1.detach().clone().to(dtype).requires_grad_(True)
        b = z2.detach().clone().to(dtype).requires_grad_(True)
        loss = nt_xent(a, b, tau)
        assert torch.isfinite(loss)
        assert loss.item() == pytest.approx(ref, rel=rel)
        loss.backward()
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
        assert a.grad.abs().sum() > 0


def test_nt_xent_stable_and_plain_references_agree() -> None:
    # Sanity check of the test's own references where both can be evaluated.
    z1, z2 = _randn(4, 3, seed=3), _randn(4, 3, seed=4)
    assert ref_nt_xent(z1, z2, 0.2) == pytest.approx(ref_nt_xent(z1, z2, 0.2, stable=True))


@pytest.mark.parametrize("tau", [0.01, 0.1, 1.0])
@pytest.mark.parametrize("batch", [2, 5])
def test_nt_xent_identical_embeddings_give_log_2b_minus_1(tau: float, batch: int) -> None:
    z1 = torch.ones(batch, 8, requires_grad=True)
    z2 = torch.ones(batch, 8, requires_grad=True)
    loss = nt_xent(z1, z2, tau)
    # 1/sqrt(8) is inexact in float32: cosines are 1 only to ~1e-7, amplified by 1/tau.
    assert loss.item() == pytest.approx(math.log(2 * batch - 1), abs=1e-6 + 3e-7 / tau)
    loss.backward()
    assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()


def test_nt_xent_orthogonal_negatives_closed_form() -> None:
    # Both views of item i are e_i and different items are orthogonal:
    # l = -log(e^{1/tau} / (e^{1/tau} + (2B - 2))) = log(1 + (2B - 2) e^{-1/tau}).
    batch, tau = 4, 0.5
    eye = torch.eye(batch, 6)
    expected = math.log(1 + (2 * batch - 2) * math.exp(-1 / tau))
    assert nt_xent(eye, eye.clone(), tau).item() == pytest.approx(expected, rel=1e-6)
    # All 2B embeddings mutually orthogonal: every logit is 0, loss = log(2B - 1).
    eye8 = torch.eye(2 * batch)
    assert nt_xent(eye8[:batch], eye8[batch:], tau).item() == pytest.approx(
        math.log(2 * batch - 1), rel=1e-6
    )


def test_nt_xent_is_invariant_to_input_scale() -> None:
    z1, z2 = _randn(4, 6, seed=11), _randn(4, 6, seed=12)
    scale = torch.tensor([[0.01], [3.0], [250.0], [1.0]], dtype=torch.float64)
    assert nt_xent(z1 * scale, z2 * 7.0, 0.1).item() == pytest.approx(
        nt_xent(z1, z2, 0.1).item(), rel=1e-10
    )


def test_nt_xent_rewards_aligned_views() -> None:
    z1 = _randn(6, 8, seed=21)
    aligned = nt_xent(z1, z1 + 0.01 * _randn(6, 8, seed=22), 0.1)
    unrelated = nt_xent(z1, _randn(6, 8, seed=23), 0.1)
    assert aligned.item() < 0.5
    assert unrelated.item() > 2.0


# ---------------------------------------------------------------------------------------------
# SupCon
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.07, 0.1, 0.5, 1.0])
def test_supcon_matches_naive_reference(tau: float) -> None:
    z = _randn(9, 5, seed=31)
    labels = [0, 1, 0, 2, 1, 0, 3, 2, 1]  # class 3 is a singleton anchor: excluded
    got = supcon(z, torch.tensor(labels), tau)
    assert got.item() == pytest.approx(ref_supcon(z, labels, tau), rel=1e-10)
    got32 = supcon(z.float(), torch.tensor(labels), tau)
    assert got32.item() == pytest.approx(ref_supcon(z, labels, tau), rel=1e-5)


def test_supcon_excludes_anchors_without_positives_from_the_mean() -> None:
    z = _randn(5, 4, seed=32)
    labels = [0, 0, 1, 2, 3]  # only rows 0 and 1 are anchors; 2-4 are negatives only
    got = supcon(z, torch.tensor(labels), 0.2).item()
    # Mean of two anchors, not a sum over five rows divided by five.
    zs = _rows(z)
    per_anchor = []
    for i, p in ((0, 1), (1, 0)):
        logits = [_cos(zs[i], zs[a]) / 0.2 for a in range(5) if a != i]
        per_anchor.append(-(_cos(zs[i], zs[p]) / 0.2 - _log_sum_exp(logits)))
    assert got == pytest.approx(sum(per_anchor) / 2, rel=1e-10)


@pytest.mark.parametrize("tau", [0.01, 0.05])
def test_supcon_low_temperature_is_finite_and_exact(tau: float) -> None:
    z = _randn(8, 4, seed=33)
    labels = [0, 1, 1, 0, 2, 2, 0, 1]
    ref = ref_supcon(z, labels, tau, stable=True)
    zf = z.float().requires_grad_(True)
    loss = supcon(zf, torch.tensor(labels), tau)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(ref, rel=1e-4)
    loss.backward()
    assert torch.isfinite(zf.grad).all() and zf.grad.abs().sum() > 0


def test_supcon_with_two_views_equals_nt_xent_when_every_item_is_its_own_class() -> None:
    # Two views concatenated, labels repeated, all items distinct: SupCon reduces to NT-Xent.
    z1, z2 = _randn(5, 6, seed=34), _randn(5, 6, seed=35)
    labels = torch.arange(5).repeat(2)
    assert supcon(torch.cat([z1, z2]), labels, 0.2).item() == pytest.approx(
        nt_xent(z1, z2, 0.2).item(), rel=1e-10
    )


def test_supcon_two_views_with_shared_classes_matches_reference() -> None:
    z1, z2 = _randn(4, 6, seed=36), _randn(4, 6, seed=37)
    labels = [0, 1, 0, 2] * 2
    got = supcon(torch.cat([z1, z2]), torch.tensor(labels), 0.1)
    assert got.item() == pytest.approx(ref_supcon(torch.cat([z1, z2]), labels, 0.1), rel=1e-10)


def test_supcon_separated_classes_score_lower_than_shuffled_labels() -> None:
    n_classes, per_class = 4, 5
    centres = torch.eye(n_classes, 8, dtype=torch.float64) * 5
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    z = centres[labels] + 0.3 * _randn(len(labels), 8, seed=38)
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]
    assert not torch.equal(shuffled, labels)
    true_loss = supcon(z, labels, 0.1).item()
    shuffled_loss = supcon(z, shuffled, 0.1).item()
    # The L_out floor is log(|P(i)|) (all probability spread evenly over the positives):
    # perfect clusters come close to it; shuffled labels are far above.
    floor = math.log(per_class - 1)
    assert floor <= true_loss < floor + 0.05
    assert shuffled_loss > true_loss + 5.0


def test_supcon_without_any_positive_is_a_zero_on_the_graph() -> None:
    z = _randn(4, 3, seed=39).requires_grad_(True)
    for labels in (torch.tensor([0, 1, 2, 3]), torch.tensor([-1, -1, -1, -1])):
        loss = supcon(z, labels, 0.1)
        assert loss.item() == 0.0
        assert loss.requires_grad
        loss.backward()
        assert torch.equal(z.grad, torch.zeros_like(z))
        z.grad = None


@pytest.mark.parametrize("tau", [0.05, 0.2])
def test_supcon_unlabelled_rows_match_reference(tau: float) -> None:
    z = _randn(8, 5, seed=40)
    labels = [0, -1, 0, 1, -1, 1, 1, -1]
    got = supcon(z, torch.tensor(labels), tau)
    assert got.item() == pytest.approx(ref_supcon(z, labels, tau, stable=True), rel=1e-10)


def test_supcon_unlabelled_rows_are_negatives_but_not_positives() -> None:
    z = _randn(6, 5, seed=41)
    base = torch.tensor([0, 0, 1, 1, -1, -1])
    # Negatives: moving an unlabelled row changes the denominators, hence the loss ...
    moved = z.clone()
    moved[4] = z[0] * 3  # an unlabelled row right on top of anchor 0
    assert supcon(moved, base, 0.2).item() > supcon(z, base, 0.2).item() + 1e-3
    # ... whereas dropping them from the batch gives a different value (they were counted).
    assert supcon(z[:4], base[:4], 0.2).item() != pytest.approx(supcon(z, base, 0.2).item())
    # Not positives: two identical unlabelled rows do not form a pair (no anchor at all here).
    twins = torch.stack([z[0], z[0], z[1], z[2]])
    assert supcon(twins, torch.tensor([-1, -1, 0, 1]), 0.2).item() == 0.0


def test_supcon_is_invariant_to_input_scale() -> None:
    z = _randn(6, 4, seed=42)
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    assert supcon(z * 123.0, labels, 0.1).item() == pytest.approx(
        supcon(z, labels, 0.1).item(), rel=1e-10
    )


def test_supcon_identical_embeddings_are_finite() -> None:
    z = torch.ones(6, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = supcon(z, labels, 0.01)
    # every logit equal: each positive has probability 1/(N - 1); float32 cosines of the
    # normalised rows are 1 only to ~1e-7, amplified by 1/tau = 100.
    assert loss.item() == pytest.approx(math.log(5), abs=3e-5)
    loss.backward()
    assert torch.isfinite(z.grad).all()


# ---------------------------------------------------------------------------------------------
# Angular margin
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [0.1, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_angular_margin_matches_naive_reference(margin: float, batch: int) -> None:
    h1, h2 = _randn(batch, 6, seed=50 + batch), _randn(batch, 6, seed=60 + batch)
    got = angular_margin(h1, h2, margin)
    assert got.item() == pytest.approx(ref_angular_margin(h1, h2, margin), rel=1e-9, abs=1e-12)
    got32 = angular_margin(h1.float(), h2.float(), margin)
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(ref_angular_margin(h1, h2, margin), rel=1e-5, abs=1e-6)


def test_angular_margin_averages_positives_and_negatives_separately() -> None:
    # Positive angle pi/3 for every item, every negative at pi/2; with m = 2:
    # loss = (pi/3)^2 + (2 - pi/2)^2 whatever the batch size.
    expected = (math.pi / 3) ** 2 + (2 - math.pi / 2) ** 2
    for batch in (2, 3, 4):
        eye = torch.eye(2 * batch, dtype=torch.float64)
        h1 = eye[:batch]
        h2 = 0.5 * eye[:batch] + math.sqrt(3) / 2 * eye[batch:]
        # negatives between different items: h1_i.h2_k = 0 and h2_i.h2_k = 0 for i != k
        assert angular_margin(h1, h2, 2.0).item() == pytest.approx(expected, rel=1e-9)


def test_angular_margin_orthogonal_embeddings() -> None:
    eye = torch.eye(8)
    h1, h2 = eye[:4], eye[4:]
    quarter = (math.pi / 2) ** 2
    assert angular_margin(h1, h2, 1.0).item() == pytest.approx(quarter, rel=1e-6)
    assert angular_margin(h1, h2, 2.5).item() == pytest.approx(
        quarter + (2.5 - math.pi / 2) ** 2, rel=1e-6
    )


@pytest.mark.parametrize("margin", [0.5, 1.0])
def test_angular_margin_identical_embeddings_have_finite_gradients(margin: float) -> None:
    h1 = torch.ones(3, 5, requires_grad=True)
    h2 = torch.ones(3, 5, requires_grad=True)
    loss = angular_margin(h1, h2, margin)
    # the clamp floor, ~1.4e-3 rad, at the float32 value of 1 - 1e-6
    theta0 = math.acos(float(torch.tensor(1 - 1e-6, dtype=torch.float32)))
    assert loss.item() == pytest.approx(theta0**2 + (margin - theta0) ** 2, abs=1e-5)
    loss.backward()
    assert torch.isfinite(h1.grad).all() and torch.isfinite(h2.grad).all()
    assert not torch.isnan(h1.grad).any()


def test_angular_margin_gradient_flows_and_pushes_negatives_apart() -> None:
    h1 = _randn(4, 6, seed=70, dtype=torch.float32).requires_grad_(True)
    h2 = _randn(4, 6, seed=71, dtype=torch.float32).requires_grad_(True)
    loss = angular_margin(h1, h2, math.pi)  # margin pi: every negative pair is active
    loss.backward()
    assert h1.grad.abs().sum() > 0 and h2.grad.abs().sum() > 0
    with torch.no_grad():  # one gradient step lowers the loss
        after = angular_margin(h1 - 0.05 * h1.grad, h2 - 0.05 * h2.grad, math.pi)
    assert after.item() < loss.item()


def test_angular_margin_is_invariant_to_input_scale() -> None:
    h1, h2 = _randn(3, 4, seed=72), _randn(3, 4, seed=73)
    assert angular_margin(h1 * 0.001, h2 * 40.0, 0.8).item() == pytest.approx(
        angular_margin(h1, h2, 0.8).item(), rel=1e-10
    )


@pytest.mark.parametrize("margin", [0.3, 1.0, 2.0])
def test_angular_margin_supervised_matches_naive_reference(margin: float) -> None:
    h = _randn(9, 5, seed=80)
    labels = [0, 1, -1, 0, 2, 1, -1, 0, 2]
    got = angular_margin_supervised(h, torch.tensor(labels), margin)
    assert got.item() == pytest.approx(ref_angular_margin_supervised(h, labels, margin), rel=1e-9)


def test_angular_margin_supervised_ignores_unlabelled_rows_entirely() -> None:
    h = _randn(6, 4, seed=81)
    labels = torch.tensor([0, 1, -1, 0, 1, -1])
    kept = labels != -1
    full = angular_margin_supervised(h, labels, 1.0).item()
    assert full == pytest.approx(angular_margin_supervised(h[kept], labels[kept], 1.0).item())
    moved = h.clone()
    moved[2] = h[0]  # an unlabelled row anywhere changes nothing
    assert angular_margin_supervised(moved, labels, 1.0).item() == pytest.approx(full)


def test_angular_margin_supervised_missing_kind_contributes_zero() -> None:
    h = _randn(4, 5, seed=82)
    m = math.pi  # every negative pair inside the margin, so the negative term is non-zero
    only_pos = angular_margin_supervised(h, torch.tensor([3, 3, 3, 3]), m).item()
    only_neg = angular_margin_supervised(h, torch.tensor([0, 1, 2, 3]), m).item()
    assert only_pos == pytest.approx(ref_angular_margin_supervised(h, [3] * 4, m), rel=1e-9)
    assert only_neg == pytest.approx(ref_angular_margin_supervised(h, [0, 1, 2, 3], m), rel=1e-9)
    assert only_pos > 0 and only_neg > 0
    hg = h.clone().requires_grad_(True)
    none = angular_margin_supervised(hg, torch.tensor([-1, -1, 5, -1]), 1.0)
    assert none.item() == 0.0
    none.backward()
    assert torch.equal(hg.grad, torch.zeros_like(hg))


def test_angular_margin_supervised_equals_self_supervised_with_item_labels() -> None:
    h1, h2 = _randn(4, 6, seed=83), _randn(4, 6, seed=84)
    labels = torch.arange(4).repeat(2)
    assert angular_margin_supervised(torch.cat([h1, h2]), labels, 1.2).item() == pytest.approx(
        angular_margin(h1, h2, 1.2).item(), rel=1e-10
    )


def test_angular_margin_supervised_identical_embeddings_finite() -> None:
    h = torch.ones(4, 3, requires_grad=True)
    loss = angular_margin_supervised(h, torch.tensor([0, 0, 1, 1]), 1.0)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(h.grad).all()


# ---------------------------------------------------------------------------------------------
# ACL
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "tau", "margin"), [(0.3, 0.2, 0.5), (0.7, 0.1, 1.0)])
def test_angular_contrastive_matches_naive_combination(
    alpha: float, tau: float, margin: float
) -> None:
    z1, z2 = _randn(4, 3, seed=90), _randn(4, 3, seed=91)
    h1, h2 = _randn(4, 7, seed=92), _randn(4, 7, seed=93)
    expected = alpha * ref_nt_xent(z1, z2, tau) + (1 - alpha) * ref_angular_margin(h1, h2, margin)
    got = angular_contrastive(z1, z2, h1, h2, alpha=alpha, temperature=tau, margin=margin)
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_angular_contrastive_endpoints_and_gradients() -> None:
    z1, z2 = _randn(4, 3, seed=94), _randn(4, 3, seed=95)
    h1 = _randn(4, 7, seed=96).requires_grad_(True)
    h2 = _randn(4, 7, seed=97)
    assert angular_contrastive(z1, z2, h1, h2, 1.0, 0.2, 0.5).item() == pytest.approx(
        nt_xent(z1, z2, 0.2).item()
    )
    zero_alpha = angular_contrastive(z1, z2, h1, h2, 0.0, 0.2, 0.5)
    assert zero_alpha.item() == pytest.approx(angular_margin(h1, h2, 0.5).item())
    zero_alpha.backward()
    assert h1.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# Precision and input validation
# ---------------------------------------------------------------------------------------------


def test_losses_compute_in_float32_under_autocast() -> None:
    z1, z2 = _randn(4, 8, seed=100).float(), _randn(4, 8, seed=101).float()
    labels = torch.tensor([0, 1, 0, 1])
    plain = (nt_xent(z1, z2, 0.05), supcon(z1, labels, 0.05), angular_margin(z1, z2, 1.0))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        cast = (nt_xent(z1, z2, 0.05), supcon(z1, labels, 0.05), angular_margin(z1, z2, 1.0))
    for a, b in zip(plain, cast, strict=True):
        assert b.dtype == torch.float32
        assert b.item() == pytest.approx(a.item(), rel=1e-6)
    # half-precision inputs are upcast
    half = nt_xent(z1.bfloat16(), z2.bfloat16(), 0.1)
    assert half.dtype == torch.float32 and torch.isfinite(half)


@pytest.mark.parametrize(
    "call",
    [
        lambda: nt_xent(torch.randn(4, 3), torch.randn(5, 3), 0.1),
        lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 2), 0.1),
        lambda: nt_xent(torch.randn(4), torch.randn(4), 0.1),
        lambda: nt_xent(torch.randn(0, 3), torch.randn(0, 3), 0.1),
        lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 3), 0.0),
        lambda: supcon(torch.randn(4, 3), torch.tensor([0, 1, 0]), 0.1),
        lambda: supcon(torch.randn(4, 3), torch.tensor([[0, 1, 0, 1]]), 0.1),
        lambda: supcon(torch.randn(4, 3), torch.tensor([0.0, 1.0, 0.0, 1.0]), 0.1),
        lambda: supcon(torch.randn(4, 3), torch.tensor([0, -2, 0, 1]), 0.1),
        lambda: supcon(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), -0.1),
        lambda: angular_margin(torch.randn(3, 4), torch.randn(3, 5), 0.5),
        lambda: angular_margin(torch.randn(3, 4), torch.randn(3, 4), -0.5),
        lambda: angular_margin_supervised(torch.randn(3, 4), torch.tensor([0, 1]), 0.5),
        lambda: angular_contrastive(
            torch.randn(4, 3),
            torch.randn(4, 3),
            torch.randn(5, 6),
            torch.randn(5, 6),
            0.3,
            0.2,
            0.5,
        ),
        lambda: angular_contrastive(
            torch.randn(4, 3),
            torch.randn(4, 3),
            torch.randn(4, 6),
            torch.randn(4, 6),
            1.5,
            0.2,
            0.5,
        ),
    ],
)
def test_bad_inputs_raise_value_error(call) -> None:
    with pytest.raises(ValueError):
        call()
