"""Audio classifiers of the PANNs family (Pellegrini, Interspeech 2021) with a built-in log-mel
front end."""

from __future__ import annotations

from bioclass.models.classifier import Classifier
from bioclass.models.frontend import FrontendConfig, LogMel
from bioclass.models.projection import ProjectionHead
from bioclass.models.registry import (
    MODEL_NAMES,
    count_parameters,
    create_model,
    create_model_with_weights,
    frontend_config,
    known_model,
    model_from_recipe,
)

__all__ = [
    "MODEL_NAMES",
    "Classifier",
    "FrontendConfig",
    "LogMel",
    "ProjectionHead",
    "count_parameters",
    "create_model",
    "create_model_with_weights",
    "frontend_config",
    "known_model",
    "model_from_recipe",
]
