"""Angular margin losses of the Angular Contrastive Loss (ACL, Wang et al. 2022, eq. 2-3).

The angular margin loss works on encoder embeddings h (before the projection head): after L2
normalisation the angle theta_ij = arccos(<h_i, h_j>) of every pair i != j is pulled to 0 for a
positive pair (theta^2) and pushed beyond a margin m for a negative pair (max(0, m - theta)^2).
ACL mixes it with NT-Xent on the projections z: alpha * L_C + (1 - alpha) * L_A.

Pair averaging (a choice the paper leaves open): the per-pair terms are averaged over all
ordered pairs i != j separately for the positives and for the negatives, and the two means are
summed. With B items and two views there are 2B positive and 2B(2B - 2) negative ordered pairs,
so a plain mean over all pairs would let the negatives outweigh the positives more and more as
the batch grows; averaging each kind on its own keeps their balance independent of batch size.
A kind with no pair in the batch (B = 1 has no negatives) contributes 0.

Numerics: d/dx arccos(x) = -1/sqrt(1 - x^2) is infinite at x = +-1, which is exactly where
identical (or opposite) embeddings land, so the cosine is clamped to [-1 + eps, 1 - eps] with
eps = 1e-6. In float32 that is well above the rounding step near 1 (6e-8), keeps the slope below
~710, and costs at most arccos(1 - 1e-6)^2 = 2e-6 rad^2 of bias on a positive pair. The losses
are computed in float32 (float64 inputs stay float64) with autocast switched off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from bioclass.losses.contrastive import (
    UNLABELLED,
    _check_labels,
    _check_matrix,
    _check_pair,
    _check_positive,
    _compute_dtype,
    _full_precision,
    nt_xent,
)

__all__ = ["angular_contrastive", "angular_margin", "angular_margin_supervised"]

#: Clamp on |cos| below 1 so arccos keeps a finite derivative (see the module docstring).
COS_EPS = 1e-6


def _check_margin(margin: float) -> None:
    """Raise ValueError unless `margin` is a finite angle >= 0 (radians)."""
    if not (margin >= 0 and margin < float("inf")):
        raise ValueError(f"margin must be a finite angle >= 0 in radians, got {margin}")


def _pair_angles(h: Tensor) -> Tensor:
    """(N, N) angles in radians between the L2-normalised rows of `h` (float32 or float64)."""
    hn = F.normalize(_compute_dtype(h), dim=1)
    cos = (hn @ hn.T).clamp(-1.0 + COS_EPS, 1.0 - COS_EPS)
    return torch.arccos(cos)


def _margin_loss(theta: Tensor, positive: Tensor, negative: Tensor, margin: float) -> Tensor:
    """Mean theta^2 over `positive` pairs plus mean max(0, m - theta)^2 over `negative` pairs.

    Args:
        theta: (N, N) pair angles in radians.
        positive: (N, N) bool, ordered positive pairs (diagonal excluded by the caller).
        negative: (N, N) bool, ordered negative pairs (disjoint from `positive`).
        margin: m in radians.
    Returns:
        Scalar in rad^2; a kind with no pair contributes an exact 0 (still on the graph).
    """
    pos_term = theta.pow(2)
    neg_term = (margin - theta).clamp(min=0).pow(2)
    # Sums over masked entries divided by max(count, 1): 0 / 1 = 0 for a missing kind.
    zero = torch.zeros_like(theta)
    pos_mean = torch.where(positive, pos_term, zero).sum() / positive.sum().clamp(min=1)
    neg_mean = torch.where(negative, neg_term, zero).sum() / negative.sum().clamp(min=1)
    return pos_mean + neg_mean


def angular_margin(h1: Tensor, h2: Tensor, margin: float) -> Tensor:
    """Self-supervised angular margin loss L_A (Wang et al. 2022, eq. 2) on two views.

    Row i of `h1` and row i of `h2` are the encoder embeddings of the two views of item i. Over
    the 2B stacked, L2-normalised embeddings, the ordered pairs (i, i + B) and (i + B, i) are
    positive (S_ij = 1, term theta_ij^2) and every other pair i != j is negative (S_ij = 0, term
    max(0, m - theta_ij)^2), with theta_ij = arccos(<h_i, h_j>) in radians.

    Averaging: the mean of the positive terms over the 2B positive ordered pairs plus the mean
    of the negative terms over the 2B(2B - 2) negative ordered pairs, so the positive/negative
    balance does not depend on the batch size. With B = 1 there are no negatives and the
    negative part is 0.

    Args:
        h1: (B, D) encoder embeddings of the first views; need not be normalised (done here).
        h2: (B, D) encoder embeddings of the second views, same shape as `h1`.
        margin: m >= 0 in radians (angles lie in [0, pi]).
    Returns:
        Scalar loss in rad^2 (float32, or float64 for float64 inputs), in [0, pi^2 + m^2].
    Raises:
        ValueError: if `h1`/`h2` are not 2-D, differ in shape, or `margin` < 0.
    """
    _check_pair(h1, h2, "h1", "h2")
    _check_margin(margin)
    batch = h1.shape[0]
    with _full_precision(h1.device):
        theta = _pair_angles(torch.cat([_compute_dtype(h1), _compute_dtype(h2)], dim=0))
        idx = torch.arange(2 * batch, device=theta.device)
        positive = torch.zeros_like(theta, dtype=torch.bool)
        positive[idx, (idx + batch) % (2 * batch)] = True
        not_self = ~torch.eye(2 * batch, dtype=torch.bool, device=theta.device)
        negative = not_self & ~positive
        return _margin_loss(theta, positive, negative, margin)


def angular_margin_supervised(h: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Supervised angular margin loss (the ACL "CE + margin loss" at the penultimate layer).

    Same per-pair terms as `angular_margin`, but S_ij = 1 iff rows i and j carry the same label:
    ordered pairs i != j with equal labels are positive (theta^2), pairs with different labels
    negative (max(0, m - theta)^2). Rows labelled -1 (unlabelled) are dropped entirely: they are
    in no pair at all. Positives and negatives are averaged separately over their ordered pairs
    and the two means summed; a kind with no pair in the batch contributes 0.

    Args:
        h: (N, D) embeddings, e.g. the input of the classifier layer; normalised here.
        labels: (N,) integer class indices >= 0, or -1 for rows to ignore.
        margin: m >= 0 in radians.
    Returns:
        Scalar loss in rad^2 (float32, or float64 for float64 inputs); a zero still connected to
        `h` if fewer than two labelled rows remain.
    Raises:
        ValueError: if `h` is not 2-D, `labels` is not an integer (N,) tensor with values >= -1,
            or `margin` < 0.
    """
    _check_matrix(h, "h")
    _check_labels(labels, h.shape[0], "h")
    _check_margin(margin)
    labels = labels.to(h.device)
    with _full_precision(h.device):
        keep = labels != UNLABELLED
        if int(keep.sum()) < 2:
            return _compute_dtype(h).sum() * 0  # no pair at all; keep the graph
        theta = _pair_angles(h[keep])
        y = labels[keep]
        same = y[:, None] == y[None, :]
        not_self = ~torch.eye(y.shape[0], dtype=torch.bool, device=theta.device)
        return _margin_loss(theta, same & not_self, ~same, margin)


def angular_contrastive(
    z1: Tensor,
    z2: Tensor,
    h1: Tensor,
    h2: Tensor,
    alpha: float,
    temperature: float,
    margin: float,
) -> Tensor:
    """Angular Contrastive Loss: alpha * NT-Xent(z1, z2) + (1 - alpha) * L_A(h1, h2) (eq. 3).

    NT-Xent acts on the projection-head outputs z, the angular margin loss on the encoder
    embeddings h (the paper finds the geometry is kept better before the projection). The
    paper's best self-supervised setting is alpha = 0.3 with tau = 0.2.

    Args:
        z1: (B, Dz) projections of the first views.
        z2: (B, Dz) projections of the second views.
        h1: (B, Dh) encoder embeddings of the first views (Dh may differ from Dz).
        h2: (B, Dh) encoder embeddings of the second views.
        alpha: weight in [0, 1]; 1 gives pure NT-Xent, 0 pure angular margin loss.
        temperature: NT-Xent tau > 0.
        margin: angular margin m >= 0 in radians.
    Returns:
        Scalar loss (a mix of nats and rad^2, as in the paper).
    Raises:
        ValueError: on mismatched shapes (including a different B for z and h), alpha outside
            [0, 1], temperature <= 0 or margin < 0.
    """
    _check_pair(z1, z2, "z1", "z2")
    _check_pair(h1, h2, "h1", "h2")
    if z1.shape[0] != h1.shape[0]:
        raise ValueError(
            f"z and h must describe the same batch, got {z1.shape[0]} rows in z1 and "
            f"{h1.shape[0]} in h1"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    _check_positive(temperature, "temperature")
    _check_margin(margin)
    return alpha * nt_xent(z1, z2, temperature) + (1.0 - alpha) * angular_margin(h1, h2, margin)
