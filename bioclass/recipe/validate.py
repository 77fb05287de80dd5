"""Every rule a recipe's values must follow, each written as one `Rules` call.

The loader (`bioclass.recipe.load`) reads, merges and type-checks a recipe, then asks
`recipe_problem` what is wrong with its values. Rules run in the order their problems are
reported: the first broken one is the message the user sees.
"""

from __future__ import annotations

import math
from dataclasses import fields

from bioclass.recipe.objectives import (
    distill_problem,
    frozen_encoder_problem,
    mixup_problem,
    mixup_targets_problem,
    multi_label_problem,
)
from bioclass.recipe.quote import quote
from bioclass.recipe.rules import Rules, each
from bioclass.recipe.schema import Recipe, ViewAugmentSection, WaveAugmentSection
from bioclass.recipe.vocab import (
    CALIBRATIONS,
    FADE_SHAPES,
    LOSSES,
    METRICS,
    MIXUP_TARGETS,
    NOISE_COLOURS,
    POOLINGS,
    PRETRAIN_LOSSES,
    SAMPLINGS,
    SCHEDULES,
    TIME_MASK_FILLS,
    WAVE_STEPS,
)

SEED_MAX = 2**32 - 1


def recipe_problem(recipe: Recipe) -> str | None:
    """The problem to report for a type-checked recipe, or None when its values are valid.

    The main sections report their first problem only. The augmentation sections are checked
    only once those pass; they report their first problem and how many more there are, since
    their lists of problems are also used on their own (`check_wave_augment`,
    `check_view_augment`).
    """
    rules = Rules()
    check_settings(recipe, rules)
    check_loss(recipe, rules)
    check_pretrain(recipe, rules)
    if rules.problems:
        return rules.problems[0]
    problems = check_wave_augment(recipe.wave_augment) + check_view_augment(recipe.pretrain.views)
    if problems:
        return problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    return None


def check_settings(recipe: Recipe, rules: Rules) -> None:
    """The audio, data, train, augment and model sections (values already type-checked)."""
    a, d, t, g, m = recipe.audio, recipe.data, recipe.train, recipe.augment, recipe.model
    # Every seed consumer takes it: numpy refuses negative seeds, torch seeds of 64 bits and
    # more, and pretraining seeds with seed * 1,000,003 + iteration.
    rules.require(
        0 <= recipe.seed <= SEED_MAX, f"seed must be in [0, {SEED_MAX}], got {quote(recipe.seed)}"
    )
    rules.positive("audio.sample_rate", a.sample_rate)
    rules.positive("audio.n_fft", a.n_fft)
    rules.positive("audio.hop_length", a.hop_length)
    rules.positive("audio.n_mels", a.n_mels)
    rules.positive("train.batch_size", t.batch_size)
    rules.positive("train.eval_every", t.eval_every)
    rules.positive("audio.clip_seconds", a.clip_seconds)
    nyquist = a.sample_rate / 2
    rules.in_range(
        "audio.f_max",
        a.f_max,
        # A NaN f_min is f_min's own problem (next rule), not f_max's.
        a.f_min if math.isfinite(a.f_min) else -math.inf,
        nyquist,
        "(]",
        low_text="f_min",
        note=f"for sample_rate {a.sample_rate}",
        got=False,
    )
    rules.in_range("audio.f_min", a.f_min, 0, nyquist, "[)", got=False)
    rules.at_least("audio.channel", a.channel, 0, note="or null (mix to mono)")
    rules.not_both(
        "data.root (a folder per class)", bool(d.root), "data.labels_csv", bool(d.labels_csv)
    )
    rules.in_range("data.val_fraction", d.val_fraction, 0, 1, "()", between=True)
    rules.in_range("data.max_bad_fraction", d.max_bad_fraction, 0, 1, "[]", between=True)
    rules.unique("data.classes", d.classes, "class")
    # An empty path is "not given"; a count of 0 is given (and then not positive).
    rules.not_both(
        "train.iterations", t.iterations is not None, "train.epochs", t.epochs is not None
    )
    rules.positive("train.iterations and train.epochs", each(t.iterations, t.epochs))
    rules.positive("train.lr", t.lr)
    rules.at_least("train.weight_decay", t.weight_decay, 0)
    rules.in_range("train.ema_decay", t.ema_decay, 0, 1, "[)")
    rules.one_of("train.metric", t.metric, METRICS)
    rules.one_of("train.schedule", t.schedule, SCHEDULES, suggest=False)
    rules.one_of("train.pooling", t.pooling, POOLINGS)
    rules.in_range("train.pooling_hop", t.pooling_hop, 0, 1, "(]")
    rules.at_least("train.smoothing", t.smoothing, 1)
    rules.one_of("train.calibration", t.calibration, CALIBRATIONS)
    if t.cv_folds is not None:
        rules.at_least("train.cv_folds", t.cv_folds, 2, note="(or null: one split)")
    rules.at_least(
        "train.num_workers, warmup_iterations and ema_start",
        each(t.num_workers, t.warmup_iterations, t.ema_start),
        0,
    )
    rules.at_least("augment.mixup_alpha", g.mixup_alpha, 0)
    rules.one_of("augment.mixup_targets", g.mixup_targets, MIXUP_TARGETS)
    rules.at_least(
        "augment stripe counts and widths",
        each(g.time_stripes, g.time_width, g.freq_stripes, g.freq_width),
        0,
    )
    rules.in_range(
        "model.dropout and model.block_dropout", each(m.dropout, m.block_dropout), 0, 1, "[)"
    )
    rules.at_least("data.labelled_per_class", d.labelled_per_class, 1, note="or null")
    rules.in_range("data.labelled_fraction", d.labelled_fraction, 0, 1, "(]")
    rules.at_least("train.unlabelled_ratio", t.unlabelled_ratio, 0)
    rules.positive("data.min_overlap_seconds", d.min_overlap_seconds)
    rules.in_range("data.min_overlap_fraction", d.min_overlap_fraction, 0, 1, "(]")
    rules.in_range("data.random_windows", d.random_windows, 0, 1, "[]")
    for old, new in d.label_map.items():
        rules.require(
            bool(old.strip()) and (new is None or bool(new.strip())),
            f"data.label_map: {old!r}: {new!r} maps to or from an empty name; give a class "
            "name, or null to drop the label",
        )


def check_loss(recipe: Recipe, rules: Rules) -> None:
    """The loss section, and whether the objective allows MixUp and a frozen encoder (as the
    objective declares it: `bioclass.recipe.objectives`)."""
    loss = recipe.loss
    rules.one_of("loss.name", loss.name, LOSSES)
    mixup = mixup_problem(recipe)
    rules.require(mixup is None, mixup or "")
    rules.in_range("loss.alpha", loss.alpha, 0, 1, "[]")
    rules.positive("loss.temperature", loss.temperature)
    rules.at_least("loss.projection_dim", loss.projection_dim, 1)
    rules.at_least("loss.margin", loss.margin, 0, note="(radians)")
    rules.in_range("loss.supcon_fraction", loss.supcon_fraction, 0, 1, "()")
    frozen = frozen_encoder_problem(recipe)
    rules.require(frozen is None, frozen or "")
    multi = multi_label_problem(recipe)
    rules.require(multi is None, multi or "")
    union = mixup_targets_problem(recipe)
    rules.require(union is None, union or "")
    check_distill(recipe, rules)


def check_distill(recipe: Recipe, rules: Rules) -> None:
    """The distill section (what needs the teachers' files is checked when training starts)."""
    d = recipe.distill
    rules.in_range("distill.weight", d.weight, 0, 1, "[]")
    rules.positive("distill.temperature", d.temperature)
    rules.require(
        all(bool(t) for t in d.teachers), "distill.teachers: an empty path; give checkpoint files"
    )
    rules.unique("distill.teachers", d.teachers, "teacher")
    problem = distill_problem(recipe)
    rules.require(problem is None, problem or "")


def check_pretrain(recipe: Recipe, rules: Rules) -> None:
    """The pretrain section, apart from its views (`check_view_augment`)."""
    p = recipe.pretrain
    rules.one_of("pretrain.loss", p.loss, PRETRAIN_LOSSES)
    rules.one_of("pretrain.sampling", p.sampling, SAMPLINGS)
    rules.positive("pretrain.patch_seconds", p.patch_seconds)
    rules.in_range("pretrain.mixback_alpha", p.mixback_alpha, 0, 1, "[]")
    rules.positive("pretrain.temperature", p.temperature)
    rules.in_range("pretrain.acl_alpha", p.acl_alpha, 0, 1, "[]")
    rules.at_least("pretrain.margin", p.margin, 0, note="(radians)")
    rules.at_least(
        "pretrain.projection_dim and pretrain.projection_hidden",
        each(p.projection_dim, p.projection_hidden),
        1,
    )
    rules.at_least("pretrain.knn_k and pretrain.probe_epochs", each(p.knn_k, p.probe_epochs), 1)


def check_wave_augment(cfg: WaveAugmentSection) -> list[str]:
    """Problems with a wave_augment section, one readable line each (empty when valid).

    Checks every field, whether or not its augmentation is enabled: probabilities and fractions
    in [0, 1], positive frame length / threshold / rates, max_factor >= 1, max_semitones >= 0,
    min <= max, and known shape / fill / colour names. Numbers must be finite (the section is
    also checked on its own, without the loader's type checks).

    Returns:
        Messages such as "wave_augment.fade.prob must be in [0, 1], got 1.5".
    """
    rules = Rules("wave_augment", finite=True)
    for step in WAVE_STEPS:
        rules.in_range(f"{step}.prob", getattr(cfg, step).prob, 0, 1, "[]")
    rules.above("trim_silence.threshold_db", cfg.trim_silence.threshold_db, 0)
    rules.above("trim_silence.frame_seconds", cfg.trim_silence.frame_seconds, 0)
    rules.at_least("scale.max_factor", cfg.scale.max_factor, 1)
    rules.at_least("pitch_shift.max_semitones", cfg.pitch_shift.max_semitones, 0)
    stretch = cfg.time_stretch
    rules.ordered(
        "time_stretch", "min_rate", stretch.min_rate, "max_rate", stretch.max_rate, above=0
    )
    rules.flag("random_pad_crop", cfg.random_pad_crop)
    rules.in_range("fade.max_fraction", cfg.fade.max_fraction, 0, 1, "[]")
    rules.names_in("fade.shapes", cfg.fade.shapes, FADE_SHAPES, "shape")
    rules.in_range("time_mask.max_fraction", cfg.time_mask.max_fraction, 0, 1, "[]")
    rules.known("time_mask.fill", cfg.time_mask.fill, TIME_MASK_FILLS, "fill")
    rules.in_range("time_shift.max_fraction", cfg.time_shift.max_fraction, 0, 1, "[]")
    rules.names_in("noise.colours", cfg.noise.colours, NOISE_COLOURS, "colour")
    noise = cfg.noise
    rules.ordered(
        "noise",
        "min_snr_db",
        noise.min_snr_db,
        "max_snr_db",
        noise.max_snr_db,
        note="(both finite)",
    )
    return rules.problems


def check_view_augment(cfg: ViewAugmentSection, prefix: str = "pretrain.views") -> list[str]:
    """Problems with a view augmentation section, one readable line each (empty when valid).

    Args:
        cfg: the section to check.
        prefix: dotted recipe key of the section, used to name the offending keys.
    Returns:
        One message per bad value, e.g. "pretrain.views.resized_crop.min_scale must be in
        (0, 1], got 0.0".
    """
    rules = Rules(prefix, finite=True)
    for f in fields(cfg):
        rules.in_range(f"{f.name}.prob", getattr(cfg, f.name).prob, 0, 1, "[]")
    rules.in_range("resized_crop.min_scale", cfg.resized_crop.min_scale, 0, 1, "(]")
    rules.in_range("compression.min_ratio", cfg.compression.min_ratio, 0, 1, "(]")
    rules.at_least("noise.max_std", cfg.noise.max_std, 0, what="a finite number")
    for key in ("time_stripes", "time_width", "freq_stripes", "freq_width"):
        rules.count(f"mask.{key}", getattr(cfg.mask, key))
    for key in ("max_time_frames", "max_freq_bins"):
        rules.count(f"shift.{key}", getattr(cfg.shift, key))
    low, high = cfg.blur.min_sigma, cfg.blur.max_sigma
    low_ok = rules.at_least("blur.min_sigma", low, 0, what="a finite number")
    # Judge max_sigma against 0 when min_sigma is itself bad, so one mistake gives one message.
    rules.at_least(
        "blur.max_sigma",
        high,
        low if low_ok else 0.0,
        what="a finite number",
        bound_text=f"blur.min_sigma ({quote(low)}) and >= 0",
    )
    return rules.problems
