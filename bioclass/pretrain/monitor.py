"""How good are the learnt representations? kNN accuracy and a linear probe on a labelled set,
and the alignment / uniformity of the embeddings (Wang & Isola, 2020).

kNN follows Fonseca et al. (2021): cosine similarity to every training embedding, majority vote
of the k nearest (the paper: k = 200). The linear probe is a softmax regression on standardised
frozen embeddings. Both report accuracy and UAR on a validation part split by group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bioclass.data.clips import ClipDataset
from bioclass.evaluation.metrics import classification_metrics
from bioclass.models import Classifier


@torch.no_grad()
def embed_clips(
    model: Classifier, dataset: ClipDataset, batch_size: int, device: torch.device
) -> np.ndarray:
    """(N, D) embeddings h of every clip (centre crop / zero pad), in eval mode."""
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    out = [model.embed(wave.to(device)).float().cpu() for wave, _ in loader]
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, model.embed_dim), np.float32)


def knn_classify(
    train: np.ndarray, train_y: np.ndarray, test: np.ndarray, k: int, n_classes: int
) -> np.ndarray:
    """(N_test, C) kNN scores: vote counts of the k most cosine-similar training embeddings.

    Ties between classes go to the class whose voters are more similar in total (added as a
    fraction below one vote).
    """
    a = F.normalize(torch.from_numpy(train).float(), dim=1)
    b = F.normalize(torch.from_numpy(test).float(), dim=1)
    sim = b @ a.T  # (N_test, N_train)
    k = min(k, a.shape[0])
    top_sim, top_idx = sim.topk(k, dim=1)  # (N_test, k)
    labels = torch.from_numpy(train_y)[top_idx]  # (N_test, k)
    votes = F.one_hot(labels, n_classes).float()  # (N_test, k, C)
    count = votes.sum(dim=1)
    closeness = (votes * (top_sim[..., None] + 1) / 2).sum(dim=1)  # in [0, k]
    return (count + closeness / (k + 1)).numpy()


def linear_probe(
    train: np.ndarray,
    train_y: np.ndarray,
    test: np.ndarray,
    n_classes: int,
    epochs: int,
    seed: int,
    weight_decay: float = 1e-4,
) -> np.ndarray:
    """(N_test, C) softmax scores of a linear classifier trained on frozen embeddings.

    Full-batch Adam for `epochs` steps on standardised features, class-balanced loss weights
    (the labelled sets of field work are imbalanced; UAR is what is reported).
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(train).float()
    mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    x = (x - mean) / std
    xt = (torch.from_numpy(test).float() - mean) / std
    y = torch.from_numpy(train_y).long()
    counts = torch.bincount(y, minlength=n_classes).float()
    weight = torch.where(counts > 0, counts.sum() / (n_classes * counts.clamp_min(1)), 0.0)
    layer = torch.nn.Linear(x.shape[1], n_classes)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=generator)
        layer.bias.zero_()
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(epochs):
            loss = F.cross_entropy(layer(x), y, weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return torch.softmax(layer(xt), dim=1).numpy()


def alignment(h1: np.ndarray, h2: np.ndarray) -> float:
    """Mean squared distance between the L2-normalised embeddings of positive pairs (lower:
    the two views of a pair land closer)."""
    a = F.normalize(torch.from_numpy(h1).float(), dim=1)
    b = F.normalize(torch.from_numpy(h2).float(), dim=1)
    return float((a - b).pow(2).sum(dim=1).mean())


def uniformity(h: np.ndarray, t: float = 2.0) -> float:
    """log E exp(-t ||x - y||^2) over pairs of L2-normalised embeddings (lower: more spread
    over the hypersphere; Wang & Isola 2020)."""
    x = F.normalize(torch.from_numpy(h).float(), dim=1)
    d2 = torch.pdist(x).pow(2)
    if d2.numel() == 0:
        return float("nan")
    return float(torch.logsumexp(-t * d2, dim=0) - np.log(d2.numel()))


@dataclass
class LabelledProbeSet:
    """A labelled set split into a reference part and a held-out part (by group)."""

    train: ClipDataset
    val: ClipDataset
    classes: list[str]


def probe_metrics(
    model: Classifier,
    probe: LabelledProbeSet,
    k: int,
    probe_epochs: int,
    batch_size: int,
    device: torch.device,
    seed: int,
) -> dict[str, float | None]:
    """kNN and linear-probe accuracy and UAR of the encoder on the held-out labelled clips."""
    train = embed_clips(model, probe.train, batch_size, device)
    val = embed_clips(model, probe.val, batch_size, device)
    n_classes = len(probe.classes)
    out: dict[str, float | None] = {}
    for name, scores in (
        ("knn", knn_classify(train, probe.train.targets, val, k, n_classes)),
        ("probe", linear_probe(train, probe.train.targets, val, n_classes, probe_epochs, seed)),
    ):
        metrics = classification_metrics(scores, probe.val.targets, probe.classes)
        out[f"{name}_accuracy"] = metrics["accuracy"]
        out[f"{name}_uar"] = metrics["uar"]
    return out
