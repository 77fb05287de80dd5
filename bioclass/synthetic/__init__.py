"""Synthetic bioacoustic test signals: forest ambience, four made-up species, and datasets.

Everything here is deterministic given a ``numpy.random.Generator``. The bundled ``sample_data/``
is made with it and tests can make data on the fly, so no real recordings are needed.

Modules:
    ambience: non-stationary forest-like background noise.
    calls: the call generators of the synthetic species (``SPECIES``).
    dataset: labelled clips and long recordings with a truth table, written to disk.
    soundscape: recordings with overlapping calls of several species and their annotation tables.
"""

from __future__ import annotations

from bioclass.synthetic.ambience import (
    AmbienceProfile,
    AmbienceStream,
    make_ambience,
    random_profile,
)
from bioclass.synthetic.calls import SPECIES
from bioclass.synthetic.dataset import (
    BACKGROUND_LABEL,
    SynthesisedClip,
    make_clip,
    make_clip_dataset,
    make_long_recording,
    synthesise_clip,
)
from bioclass.synthetic.soundscape import make_multilabel_recording, make_multilabel_soundscape

__all__ = [
    "BACKGROUND_LABEL",
    "SPECIES",
    "SynthesisedClip",
    "AmbienceProfile",
    "AmbienceStream",
    "make_ambience",
    "make_clip",
    "make_clip_dataset",
    "make_long_recording",
    "make_multilabel_recording",
    "make_multilabel_soundscape",
    "random_profile",
    "synthesise_clip",
]
