"""Contrastive losses on embedding batches: SimCLR NT-Xent and supervised contrastive (SupCon).

Both losses work on cosine similarities: the inputs are L2-normalised here, so callers may pass
raw projection-head outputs. Everything is computed in float32 (float64 inputs stay float64)
with autocast switched off, because at the usual low temperatures (tau = 0.05 ... 0.2) the
logits reach 1/tau = 20 and beyond, where half precision loses the small differences that carry
the gradient. Log-probabilities come from logsumexp with the self-similarity masked by -inf
rather than from exp() then log(), so tau = 0.01 (logits up to 100) does not overflow.

References:
    Chen et al. 2020 (SimCLR); Fonseca et al. 2021 and Wang et al. 2022 eq. 1 (NT-Xent on
    sound events); Khosla et al. 2020 (SupCon, the L^sup_out form); Nasiri & Hu 2021
    (SoundCLR eq. 3-4, SupCon on a 64-d projection next to cross-entropy).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["nt_xent", "supcon"]

#: Label value marking a row of `supcon` as unlabelled (a negative only, never an anchor).
UNLABELLED = -1


def _full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """A context that turns autocast off on `device` (a no-op where autocast does not exist).

    Casting the inputs to float32 is not enough under autocast: the matmul inside would be
    re-cast to bf16/fp16, so the region has to leave autocast explicitly.
    """
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # device type without autocast support
        return contextlib.nullcontext()


def _compute_dtype(x: Tensor) -> Tensor:
    """`x` as float32, or float64 if it already is (so float64 references stay exact)."""
    return x if x.dtype == torch.float64 else x.float()


def _check_matrix(x: Tensor, name: str) -> None:
    """Raise ValueError unless `x` is a non-empty (rows, dim) floating tensor."""
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (rows, dim), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")


def _check_pair(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Raise ValueError unless `a` and `b` are (B, D) matrices of the same shape."""
    _check_matrix(a, name_a)
    _check_matrix(b, name_b)
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape (the two views of one batch), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _check_labels(labels: Tensor, n_rows: int, name: str) -> None:
    """Raise ValueError unless `labels` is an integer (n_rows,) tensor with values >= -1."""
    if labels.dim() != 1 or labels.shape[0] != n_rows:
        raise ValueError(
            f"labels must have shape ({n_rows},) to match the rows of {name}, "
            f"got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    if n_rows and int(labels.min()) < UNLABELLED:
        raise ValueError(
            f"labels must be class indices >= 0, or {UNLABELLED} for unlabelled rows; "
            f"got a minimum of {int(labels.min())}"
        )


def _check_positive(value: float, name: str) -> None:
    """Raise ValueError unless `value` is a finite number > 0."""
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")


def _self_masked_log_softmax(sim: Tensor, rows: Tensor | None = None) -> Tensor:
    """Row-wise log-softmax of `sim` over the columns k != i, for the selected rows.

    Args:
        sim: (N, N) scaled similarities (logits).
        rows: (M,) indices of the rows wanted; None for all N rows.
    Returns:
        (M, N) log-probabilities; the self column of each row is -inf.
    """
    row_idx = torch.arange(sim.shape[0], device=sim.device) if rows is None else rows
    logits = sim[row_idx]
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(row_idx.shape[0], device=sim.device), row_idx] = True
    # -inf removes k == i from the denominator exactly; logsumexp subtracts the row maximum,
    # so exp never overflows even at tau = 0.01.
    logits = logits.masked_fill(self_mask, float("-inf"))
    return logits - torch.logsumexp(logits, dim=1, keepdim=True)


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """SimCLR NT-Xent loss over the 2B embeddings of two augmented views.

    Row i of `z1` and row i of `z2` are the two views of item i. Stacking them gives 2B
    embeddings whose positive pairs are (i, i + B); every other embedding is a negative. For each
    of the 2B anchors

        l_i = -log( exp(sim(z_i, z_p(i)) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau) )

    with sim the cosine similarity and p(i) the other view, and the loss is the mean of l_i over
    all 2B anchors (both directions of every pair, as in SimCLR).

    Args:
        z1: (B, D) projections of the first views; need not be normalised (done here).
        z2: (B, D) projections of the second views, same shape as `z1`.
        temperature: tau > 0 (dimensionless; 0.1-0.2 is usual, stable down to 0.01).
    Returns:
        Scalar loss in nats (float32, or float64 for float64 inputs). It is 0 for B = 1 (no
        negatives) and log(2B - 1) when all embeddings coincide.
    Raises:
        ValueError: if `z1`/`z2` are not 2-D, differ in shape, or `temperature` <= 0.
    """
    _check_pair(z1, z2, "z1", "z2")
    _check_positive(temperature, "temperature")
    batch = z1.shape[0]
    with _full_precision(z1.device):
        z = torch.cat([_compute_dtype(z1), _compute_dtype(z2)], dim=0)
        z = F.normalize(z, dim=1)
        sim = z @ z.T / temperature  # (2B, 2B) cosine / tau
        log_prob = _self_masked_log_softmax(sim)
        anchors = torch.arange(2 * batch, device=z.device)
        partners = (anchors + batch) % (2 * batch)  # i <-> i + B
        return -log_prob[anchors, partners].mean()


def supcon(z: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L^sup_out) on one batch of embeddings.

    For an anchor i with positives P(i) = {p != i : y_p = y_i},

        loss_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / tau)
                                                  / sum_{a != i} exp(z_i.z_a / tau) )

    on L2-normalised z, and the loss is the mean of loss_i over the anchors that have at least one
    positive; anchors without a positive (a class seen once in the batch) are left out of the
    mean but still serve as negatives for the others. To use two views per clip, concatenate
    them (2B rows) and repeat the labels: each view is then a positive of the other.

    Unlabelled rows: a label of -1 marks a row as unlabelled. Such a row is never an anchor and
    never a positive (two unlabelled rows are not assumed to share a class), but it does count as
    a negative in every anchor's denominator, so unlabelled clips still push labelled ones apart.

    Args:
        z: (N, D) embeddings (e.g. a 64-d projection as in SoundCLR); normalised here.
        labels: (N,) integer class indices >= 0, or -1 for unlabelled rows.
        temperature: tau > 0 (dimensionless; 0.07-0.1 is usual, stable down to 0.01).
    Returns:
        Scalar loss in nats (float32, or float64 for float64 inputs). If no anchor has a positive
        it is a zero that is still connected to `z` (so `.backward()` works and gives zeros).
    Raises:
        ValueError: if `z` is not 2-D, `labels` is not an integer (N,) tensor with values >= -1,
            or `temperature` <= 0.
    """
    _check_matrix(z, "z")
    _check_labels(labels, z.shape[0], "z")
    _check_positive(temperature, "temperature")
    labels = labels.to(z.device)
    with _full_precision(z.device):
        zn = F.normalize(_compute_dtype(z), dim=1)
        n = zn.shape[0]
        labelled = labels != UNLABELLED
        not_self = ~torch.eye(n, dtype=torch.bool, device=z.device)
        positive = (labels[:, None] == labels[None, :]) & labelled[:, None] & not_self
        n_pos = positive.sum(dim=1)
        anchors = torch.nonzero(n_pos > 0).squeeze(1)
        if anchors.numel() == 0:
            # Nothing to pull together; keep the graph so a training step can still backprop.
            return zn.sum() * 0
        sim = zn @ zn.T / temperature  # (N, N) cosine / tau
        # Only anchor rows: each has a positive, hence a non-empty denominator (no -inf - -inf).
        log_prob = _self_masked_log_softmax(sim, anchors)  # (M, N)
        pos = positive[anchors]
        # where() rather than a product: the self column is -inf and -inf * 0 would be NaN.
        pos_log_prob = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
        return -(pos_log_prob / n_pos[anchors]).mean()
