"""bioclass: train species classifiers on labelled clips and scan long field recordings."""

from __future__ import annotations

__version__ = "0.1.0"
