"""Representation-learning losses: NT-Xent, supervised contrastive and angular margin (ACL).

All losses take raw embeddings (they L2-normalise inside), compute in float32 with autocast
off, and raise ValueError on mismatched shapes. Label value -1 means "unlabelled" where labels
are taken (see each function for how such rows are treated).
"""

from __future__ import annotations

from bioclass.losses.angular import (
    angular_contrastive,
    angular_margin,
    angular_margin_supervised,
)
from bioclass.losses.contrastive import UNLABELLED, nt_xent, supcon

__all__ = [
    "UNLABELLED",
    "angular_contrastive",
    "angular_margin",
    "angular_margin_supervised",
    "nt_xent",
    "supcon",
]
