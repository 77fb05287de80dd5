"""The Python API: bioclass in a notebook, without the shell.

    model = bioclass.load_model("runs/quickstart/model.pt")
    scores = model.predict("recordings/", hop=0.5)   # DataFrame, (file, start, end) x classes

`load_model` and `Model` (`model`), `scan`, `train`, `distill`, `evaluate`, `embed`
(`commands`); the command line's procedures underneath, and nothing printed unless
`progress=True` (`reporting`).
Arguments are checked as the CLI's options are (`checks`); every refusal is a `BioclassError`.
"""

from bioclass.api.commands import (
    EmbedResult,
    EvaluationResult,
    ScanResult,
    distill,
    embed,
    evaluate,
    scan,
    train,
)
from bioclass.api.model import Model, load_model

__all__ = [
    "EmbedResult",
    "EvaluationResult",
    "Model",
    "ScanResult",
    "distill",
    "embed",
    "evaluate",
    "load_model",
    "scan",
    "train",
]
