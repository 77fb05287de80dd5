"""The names a recipe may use, each list defined once.

The schema takes its defaults from here, validation checks values against these lists and the
augmentations name them in their errors; a name added here is known to all three at once. The
order of each list is the order error messages print it in.
"""

from __future__ import annotations

from bioclass.recipe.objectives import LOSS_NAMES

METRICS = ("uar", "map", "accuracy")
SCHEDULES = ("constant", "cosine")
LOSSES = LOSS_NAMES  # `auto` and the objectives of the registry
PRETRAIN_LOSSES = ("ntxent", "acl")
SAMPLINGS = ("random", "non_overlapping", "same")
# How the windows of a clip longer than the model's window make one clip score: mean of the
# windows' probabilities, their maximum, the activation of their mean logits, or (as bioclass
# did before pooling) the centre window alone.
POOLINGS = ("mean_prob", "max_prob", "mean_logit", "centre")
CALIBRATIONS = ("shared", "per_class", "none")
# How MixUp mixes two targets: lambda-weighted, or the union (each class at its maximum).
MIXUP_TARGETS = ("convex", "union")

FADE_SHAPES = ("linear", "logarithmic", "exponential")
TIME_MASK_FILLS = ("noise", "zero")
NOISE_COLOURS = ("white", "pink", "brown")

# The wave_augment sub-sections that run with a probability, in the order `augment_wave` draws
# their gates (changing it changes every augmented clip) and validation reports their `prob`.
WAVE_STEPS = (
    "trim_silence",
    "scale",
    "pitch_shift",
    "time_stretch",
    "fade",
    "time_mask",
    "time_shift",
    "noise",
)
