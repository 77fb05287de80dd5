"""The training objectives a recipe can name (`loss.name`), each declaring what the rest of
bioclass needs to know about it.

Data preparation, validation, the training loop and the checkpoint ask the objective — does it
learn from unlabelled clips, how many views of a clip does it need, does it need a hard label
per clip, which score activation does it produce — instead of comparing loss names. The losses
themselves are computed in `bioclass.training.objectives`.

    ce / bce          Pellegrini (2021): categorical or binary cross-entropy (`auto` is bce when
                      MixUp is on, as in the paper, else ce)
    supcon_hybrid     SoundCLR (Nasiri & Hu 2021): SupCon on a linear projection + cross-entropy
    supcon_two_stage  SupCon alone, then the encoder is frozen and the last layer trained (CE)
    ce_angular        supervised angular margin on the embedding + cross-entropy (Wang 2022)
    clar              CLAR (Al-Tahan & Mohsenzadeh 2021): NT-Xent between two augmented views
                      + cross-entropy on the labelled clips; unlabelled clips take part
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bioclass.core.activation import Activation

if TYPE_CHECKING:  # the schema's vocabulary imports the names below
    from bioclass.recipe.schema import Recipe

AUTO = "auto"


@dataclass(frozen=True)
class ObjectiveSpec:
    """What an objective is, as far as everything but its loss computation is concerned.

    Attributes:
        name: the `loss.name` that selects it.
        activation: how its logits become scores (stored in the checkpoint for scan/evaluate).
        soft_targets: it can learn from MixUp's mixed targets; False means it needs one hard
            label per clip (a contrastive or margin term compares labels).
        learns_from_unlabelled: clips without a label take part (else they are left out).
        views: augmented views of each clip per batch.
        projection: training-only projection head: None, "linear" or "mlp".
        staged: the classifier means nothing until a first stage is over (not validated then).
        head_only: `model.freeze_encoder` (train only the last layer) is meaningful with it.
    """

    name: str
    activation: Activation = Activation.SOFTMAX
    soft_targets: bool = False
    learns_from_unlabelled: bool = False
    views: int = 1
    projection: str | None = None
    staged: bool = False
    head_only: bool = False


OBJECTIVES: dict[str, ObjectiveSpec] = {
    spec.name: spec
    for spec in (
        ObjectiveSpec("ce", soft_targets=True, head_only=True),
        ObjectiveSpec("bce", Activation.SIGMOID, soft_targets=True, head_only=True),
        ObjectiveSpec("supcon_hybrid", projection="linear"),
        ObjectiveSpec("supcon_two_stage", projection="linear", staged=True),
        ObjectiveSpec("ce_angular"),
        ObjectiveSpec("clar", learns_from_unlabelled=True, views=2, projection="mlp"),
    )
}

LOSS_NAMES: tuple[str, ...] = (AUTO, *OBJECTIVES)  # what loss.name accepts


def is_multi_label(recipe: Recipe) -> bool:
    """Whether the recipe trains on windows of annotated recordings (`data.annotations`,
    `data.reviewed`), whose targets are multi-hot: a window can hold several classes."""
    return bool(recipe.data.annotations or recipe.data.reviewed)


def distils(recipe: Recipe) -> bool:
    """Whether the recipe learns from teachers' scores (`distill.teachers`)."""
    return bool(recipe.distill.teachers)


def uses_unlabelled(recipe: Recipe) -> bool:
    """Whether clips without a label take part in training: the objective learns from them
    (clar), or teachers score them (distillation)."""
    return resolve_objective(recipe).learns_from_unlabelled or distils(recipe)


def resolve_objective(recipe: Recipe) -> ObjectiveSpec:
    """The recipe's objective; `auto` is bce with MixUp or multi-label windows (sigmoid
    scores), else ce."""
    name = recipe.loss.name
    if name == AUTO:
        name = "bce" if recipe.augment.mixup_alpha > 0 or is_multi_label(recipe) else "ce"
    return OBJECTIVES[name]


def selection_metric(recipe: Recipe) -> str:
    """The validation metric that selects the model: `train.metric`, except that multi-label
    windows read the default `uar` as `map` (recall of one true class per clip has no meaning
    when a window holds several or none)."""
    metric = recipe.train.metric
    return "map" if is_multi_label(recipe) and metric == "uar" else metric


def resolve_loss(recipe: Recipe) -> str:
    """The name of the recipe's objective (`auto` resolved)."""
    return resolve_objective(recipe).name


def _choices(names: list[str]) -> str:
    """'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def mixup_problem(recipe: Recipe) -> str | None:
    """Why the recipe's objective cannot learn from MixUp's mixed targets, if it cannot."""
    if recipe.loss.name not in LOSS_NAMES or recipe.augment.mixup_alpha <= 0:
        return None
    if resolve_objective(recipe).soft_targets:
        return None
    mixable = _choices([AUTO, *(s.name for s in OBJECTIVES.values() if s.soft_targets)])
    return (
        f"augment.mixup_alpha needs loss.name {mixable}: {recipe.loss.name} needs a hard "
        "label per clip (set augment.mixup_alpha: 0)"
    )


def frozen_encoder_problem(recipe: Recipe) -> str | None:
    """Why `model.freeze_encoder` makes no sense with the recipe's objective, if it does not."""
    if recipe.loss.name not in LOSS_NAMES or not recipe.model.freeze_encoder:
        return None
    if resolve_objective(recipe).head_only:
        return None
    return (
        f"model.freeze_encoder trains only the last layer: use loss.name ce (not "
        f"{recipe.loss.name})"
    )


def multi_label_problem(recipe: Recipe) -> str | None:
    """Why the recipe cannot train on multi-label windows (`data.annotations`, `data.reviewed`),
    if it cannot."""
    if not is_multi_label(recipe) or recipe.loss.name not in LOSS_NAMES:
        return None
    keys = "data.annotations / data.reviewed"
    if resolve_objective(recipe).activation is not Activation.SIGMOID:
        return (
            f"{keys} train multi-label windows (several classes or none per window): use "
            f"loss.name auto or bce, not {recipe.loss.name}"
        )
    t, d = recipe.train, recipe.data
    if t.metric == "accuracy":
        return f"train.metric accuracy needs one label per clip; with {keys} use map"
    if t.cv_folds is not None:
        return f"train.cv_folds is not available with {keys} yet (set it to null)"
    if d.unlabelled or d.labelled_per_class is not None or d.labelled_fraction < 1.0:
        return (
            f"data.unlabelled, labelled_per_class and labelled_fraction are for clip "
            f"training; {keys} train on every annotated window"
        )
    return None


def distill_problem(recipe: Recipe) -> str | None:
    """Why the recipe cannot learn from teachers, if it cannot: distillation compares the
    student's class scores with the teachers', which a contrastive or staged objective does not
    produce on every step."""
    if not distils(recipe) or recipe.loss.name not in LOSS_NAMES:
        return None
    spec = resolve_objective(recipe)
    if not spec.soft_targets or spec.views != 1:
        return (
            f"distill.teachers needs loss.name auto, ce or bce (the student learns class "
            f"scores), not {recipe.loss.name}"
        )
    if recipe.model.freeze_encoder:
        return "distill.teachers trains the whole student: set model.freeze_encoder: false"
    return None


def mixup_targets_problem(recipe: Recipe) -> str | None:
    """Why `augment.mixup_targets: union` does not fit the recipe's objective, if it does not:
    the union of two one-hot targets is not a distribution for a softmax."""
    if recipe.augment.mixup_targets != "union" or recipe.loss.name not in LOSS_NAMES:
        return None
    if resolve_objective(recipe).activation is Activation.SIGMOID:
        return None
    return (
        "augment.mixup_targets union needs sigmoid scores (loss.name bce, or auto with MixUp or "
        "data.annotations); use convex"
    )
