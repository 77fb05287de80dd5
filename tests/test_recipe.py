"""Tests for recipes: YAML loading, unknown keys and wrong types named, --set overrides, paths,
value checks and the dict/YAML round trips."""

from __future__ import annotations

import dataclasses
import time
import typing
from pathlib import Path

import pytest
import yaml

from bioclass.core.errors import BioclassError
from bioclass.recipe import (
    Recipe,
    RecipeError,
    dump_recipe,
    load_recipe,
    recipe_from_dict,
    recipe_to_dict,
    yaml_bounds,
)
from bioclass.recipe.load import parse_overrides

VALID = """\
seed: 7
audio:
  sample_rate: 32000
  clip_seconds: 2.5
  f_max: 12000
data:
  root: clips
  classes: [owl, wren, 3]
  val_fraction: 0.25
  balanced: false
model:
  name: cnn6
  dropout: 0.3
augment:
  mixup_alpha: 0.4
  specaugment: true
train:
  batch_size: 16
  lr: 0.0005
  iterations: 2000
  schedule: cosine
  metric: map
"""


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> str:
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path, overrides)
    return str(info.value)


# --- loading ------------------------------------------------------------------------------------


def test_valid_recipe_loads_with_types_and_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, VALID))
    assert isinstance(recipe, Recipe)
    assert recipe.seed == 7
    assert recipe.audio.sample_rate == 32000
    assert recipe.audio.clip_seconds == 2.5
    assert recipe.audio.f_max == 12000.0 and isinstance(recipe.audio.f_max, float)
    assert recipe.data.classes == ["owl", "wren", "3"], "class names must become strings"
    assert recipe.data.balanced is False
    assert recipe.model.name == "cnn6" and recipe.model.dropout == 0.3
    assert recipe.augment.mixup_alpha == 0.4 and recipe.augment.specaugment is True
    assert recipe.train.batch_size == 16 and recipe.train.lr == 0.0005
    assert recipe.train.iterations == 2000 and recipe.train.epochs is None
    assert recipe.train.schedule == "cosine" and recipe.train.metric == "map"
    # untouched keys keep their defaults
    assert recipe.audio.n_mels == Recipe().audio.n_mels
    assert recipe.train.ema_decay == Recipe().train.ema_decay


def test_empty_recipe_file_gives_defaults(tmp_path):
    assert load_recipe(write(tmp_path, "")) == Recipe()
    assert load_recipe(write(tmp_path, "train:\n")) == Recipe(), "an empty section is allowed"


def test_recipe_must_be_a_mapping(tmp_path):
    msg = load_error(tmp_path, "- a\n- b\n")
    assert "mapping" in msg and "list" in msg, msg


def test_section_must_be_a_mapping(tmp_path):
    msg = load_error(tmp_path, "train: 5\n")
    assert "train" in msg and "mapping" in msg, msg


def test_missing_recipe_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RecipeError, match="not found") as info:
        load_recipe(missing)
    assert str(missing) in str(info.value)


def test_recipe_error_is_a_bioclass_error():
    assert issubclass(RecipeError, BioclassError)


def test_invalid_yaml_names_line(tmp_path):
    text = "seed: 1\ntrain:\n  lr: 0.1\n  batch_size: [1, 2\n  metric: uar\n"
    msg = load_error(tmp_path, text)
    assert "not valid YAML" in msg, msg
    assert "line " in msg, msg
    line = int(msg.split("line ")[1].split(")")[0])
    assert 4 <= line <= 6, f"error should point near the broken list (line 4): {msg}"


def test_invalid_yaml_tab_indent_names_line(tmp_path):
    msg = load_error(tmp_path, "train:\n\tlr: 0.1\n")
    assert "not valid YAML (line 2)" in msg, msg


# --- unknown keys and types ---------------------------------------------------------------------


def test_unknown_top_level_key_with_suggestion(tmp_path):
    msg = load_error(tmp_path, "seeed: 3\n")
    assert "unknown key 'seeed'" in msg, msg
    assert "did you mean 'seed'" in msg, msg


def test_unknown_section_with_suggestion(tmp_path):
    msg = load_error(tmp_path, "trian:\n  lr: 0.1\n")
    assert "unknown key 'trian'" in msg and "did you mean 'train'" in msg, msg


def test_unknown_key_in_section_with_suggestion(tmp_path):
    msg = load_error(tmp_path, "train:\n  batchsize: 8\n")
    assert "train.batchsize" in msg, msg
    assert "did you mean 'batch_size'" in msg, msg
    assert "valid:" in msg and "batch_size" in msg.split("valid:")[1], msg


def test_unknown_key_without_close_match_lists_valid_keys(tmp_path):
    msg = load_error(tmp_path, "audio:\n  zzzzzz: 1\n")
    assert "audio.zzzzzz" in msg and "did you mean" not in msg, msg
    assert "sample_rate" in msg, "the valid keys should be listed"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train:\n  lr: fast\n", "train.lr"),
        ("train:\n  batch_size: 3.5\n", "train.batch_size"),
        ("train:\n  batch_size: true\n", "train.batch_size"),
        ('data:\n  balanced: "yes"\n', "data.balanced"),
        ("data:\n  balanced: 1\n", "data.balanced"),
        ("audio:\n  sample_rate: '16000'\n", "audio.sample_rate"),
        ("model:\n  name: 5\n", "model.name"),
        ("data:\n  classes: owl\n", "data.classes"),
        ("data:\n  classes: [owl, [a, b]]\n", "data.classes"),
        ("seed: 1.5\n", "seed"),
        ("train:\n  iterations: many\n", "train.iterations"),
    ],
)
def test_wrong_type_names_the_key(tmp_path, text, key):
    msg = load_error(tmp_path, text)
    assert f"{key} must be" in msg, msg
    assert "got" in msg, msg


def test_int_is_accepted_for_float_and_null_for_optional(tmp_path):
    recipe = load_recipe(write(tmp_path, "train:\n  lr: 1\n  epochs: null\naudio:\n  f_max: ~\n"))
    assert recipe.train.lr == 1.0 and isinstance(recipe.train.lr, float)
    assert recipe.train.epochs is None and recipe.audio.f_max is None


def test_scientific_notation_learning_rate(tmp_path):
    recipe = load_recipe(write(tmp_path, "train:\n  lr: 1e-3\n"), ["train.weight_decay=5e-4"])
    assert recipe.train.lr == pytest.approx(1e-3)
    assert recipe.train.weight_decay == pytest.approx(5e-4)


# --- overrides ----------------------------------------------------------------------------------


def test_parse_overrides_nested_and_typed():
    out = parse_overrides(
        ["train.lr=0.01", "train.metric=map", "data.balanced=false", "seed=3", "audio.f_max="]
    )
    assert out == {
        "train": {"lr": 0.01, "metric": "map"},
        "data": {"balanced": False},
        "seed": 3,
        "audio": {"f_max": None},
    }


def test_parse_overrides_keeps_equals_in_value():
    assert parse_overrides(["data.root=a=b"]) == {"data": {"root": "a=b"}}


@pytest.mark.parametrize("item", ["foo", "=3", " =3", "train.lr"])
def test_parse_overrides_bad_syntax(item):
    with pytest.raises(RecipeError, match="expected section.key=value") as info:
        parse_overrides([item])
    assert repr(item) in str(info.value)


def test_parse_overrides_value_below_a_scalar_is_an_error():
    with pytest.raises(RecipeError, match="not a section"):
        parse_overrides(["seed=1", "seed.x=2"])


def test_override_wins_over_file(tmp_path):
    recipe = load_recipe(
        write(tmp_path, VALID), ["train.lr=0.1", "train.batch_size=64", "model.name=cnn10"]
    )
    assert recipe.train.lr == 0.1
    assert recipe.train.batch_size == 64
    assert recipe.model.name == "cnn10"
    # the rest of the section stays as the file says
    assert recipe.train.iterations == 2000 and recipe.train.metric == "map"


def test_override_can_add_a_section_missing_from_file(tmp_path):
    recipe = load_recipe(write(tmp_path, "seed: 1\n"), ["augment.mixup_alpha=0.2"])
    assert recipe.augment.mixup_alpha == 0.2 and recipe.seed == 1


def test_override_unknown_key_and_wrong_type(tmp_path):
    path = write(tmp_path, VALID)
    with pytest.raises(RecipeError, match=r"train\.batchsize.*did you mean 'batch_size'"):
        load_recipe(path, ["train.batchsize=8"])
    with pytest.raises(RecipeError, match=r"train\.lr must be a number"):
        load_recipe(path, ["train.lr=fast"])


def test_override_bad_syntax_in_load_recipe(tmp_path):
    with pytest.raises(RecipeError, match="'foo'"):
        load_recipe(write(tmp_path, VALID), ["foo"])


# --- paths --------------------------------------------------------------------------------------


def test_relative_paths_in_file_resolve_against_recipe_folder(tmp_path, monkeypatch):
    recipe_dir = tmp_path / "recipes" / "birds"
    path = write(recipe_dir, "data:\n  labels_csv: ../labels.csv\n  audio_root: audio\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    recipe = load_recipe(path)
    assert recipe.data.labels_csv == str((tmp_path / "recipes" / "labels.csv").resolve())
    assert recipe.data.audio_root == str((recipe_dir / "audio").resolve())


def test_relative_override_paths_resolve_against_cwd(tmp_path, monkeypatch):
    path = write(tmp_path / "recipes", "data:\n  root: clips\n")
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    recipe = load_recipe(path, ["data.root=mine/clips"])
    assert recipe.data.root == str((cwd / "mine" / "clips").resolve())
    # without the override, the file's path (relative to the recipe) is used
    assert load_recipe(path).data.root == str((tmp_path / "recipes" / "clips").resolve())


def test_absolute_path_is_kept(tmp_path):
    target = tmp_path / "abs" / "clips"
    recipe = load_recipe(write(tmp_path / "r", f"data:\n  root: {target}\n"))
    assert recipe.data.root == str(target.resolve())


# --- value checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train:\n  metric: f1\n", "train.metric must be one of uar, map, accuracy"),
        ("train:\n  metric: uarr\n", "did you mean 'uar'"),
        ("train:\n  iterations: 10\n  epochs: 2\n", "train.iterations or train.epochs"),
        ("data:\n  root: a\n  labels_csv: b.csv\n", "data.root"),
        ("audio:\n  sample_rate: 16000\n  f_max: 9000\n", "audio.f_max"),
        ("audio:\n  f_min: 500\n  f_max: 400\n", "audio.f_max"),
        ("audio:\n  sample_rate: 0\n", "audio.sample_rate must be positive"),
        ("audio:\n  clip_seconds: 0\n", "audio.clip_seconds"),
        ("audio:\n  channel: -1\n", "audio.channel"),
        ("data:\n  val_fraction: 1.0\n", "data.val_fraction"),
        ("data:\n  max_bad_fraction: 1.5\n", "data.max_bad_fraction"),
        ("data:\n  classes: [a, b, a]\n", "twice"),
        ("train:\n  lr: 0\n", "train.lr must be positive"),
        ("train:\n  ema_decay: 1.0\n", "train.ema_decay"),
        ("train:\n  schedule: linear\n", "train.schedule"),
        ("train:\n  batch_size: 0\n", "train.batch_size must be positive"),
        ("augment:\n  mixup_alpha: -0.1\n", "augment.mixup_alpha"),
        ("augment:\n  time_width: -1\n", "augment"),
        ("model:\n  dropout: 1.0\n", "model.dropout"),
    ],
)
def test_value_checks(tmp_path, text, expected):
    msg = load_error(tmp_path, text)
    assert expected in msg, msg
    assert "recipe.yaml" in msg, f"the message should name the recipe file: {msg}"


def test_f_max_at_nyquist_is_fine(tmp_path):
    recipe = load_recipe(write(tmp_path, "audio:\n  sample_rate: 16000\n  f_max: 8000\n"))
    assert recipe.audio.f_max == 8000.0


def test_f_max_nyquist_check_follows_sample_rate_override(tmp_path):
    path = write(tmp_path, "audio:\n  sample_rate: 32000\n  f_max: 12000\n")
    assert load_recipe(path).audio.f_max == 12000.0
    with pytest.raises(RecipeError, match="audio.f_max"):
        load_recipe(path, ["audio.sample_rate=16000"])


def test_recipe_from_dict_validates_and_names_source():
    with pytest.raises(RecipeError, match=r"^ckpt: train\.metric"):
        recipe_from_dict({"train": {"metric": "nope"}}, source="ckpt")
    with pytest.raises(RecipeError, match="unknown key 'model.nme'"):
        recipe_from_dict({"model": {"nme": "cnn6"}})


# --- round trips --------------------------------------------------------------------------------


def test_dict_round_trip(tmp_path):
    recipe = load_recipe(write(tmp_path, VALID))
    data = recipe_to_dict(recipe)
    assert data["train"]["batch_size"] == 16 and data["data"]["classes"] == ["owl", "wren", "3"]
    assert recipe_from_dict(data) == recipe
    assert recipe_from_dict(recipe_to_dict(Recipe())) == Recipe()


def test_dump_recipe_reloads_to_same_recipe(tmp_path):
    recipe = load_recipe(write(tmp_path, VALID), ["train.lr=0.002", "audio.channel=1"])
    text = dump_recipe(recipe)
    assert yaml.safe_load(text) == recipe_to_dict(recipe)
    # saved somewhere else: the (absolute) data paths must still point at the same place
    again = load_recipe(write(tmp_path / "other" / "place", text, "resolved.yaml"))
    assert again == recipe
    assert again.data.root == str((tmp_path / "clips").resolve())


# --- the bundled recipes -----------------------------------------------------------------------

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_recipes_load_and_round_trip(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe_from_dict(recipe_to_dict(recipe)) == recipe


def test_primates_recipe_is_the_papers_cnn10_16k_setup() -> None:
    r = load_recipe(RECIPES / "primates.yaml")
    assert (r.audio.sample_rate, r.audio.clip_seconds, r.audio.n_mels) == (16000, 3.0, 64)
    assert (r.audio.n_fft, r.audio.hop_length) == (1024, 320)
    assert r.model.name == "cnn10"
    assert (r.train.batch_size, r.train.lr, r.train.iterations) == (32, 1e-3, 60000)
    assert (r.train.ema_decay, r.train.ema_start) == (0.995, 15000)
    assert 0 < r.augment.mixup_alpha < 1 and r.augment.specaugment
    assert (r.augment.time_width, r.augment.freq_width) == (16, 8)
    assert r.data.balanced and r.train.metric == "uar"
    assert r.data.labels_csv.endswith("ComParE2021_PRS/lab/labels.csv")
    assert "background" in r.data.classes


def test_simclr_recipe_has_fonsecas_settings() -> None:
    r = load_recipe(RECIPES / "pretrain_simclr.yaml")
    p = r.pretrain
    assert (p.sampling, p.mixback_alpha, p.temperature, p.loss) == ("random", 0.05, 0.2, "ntxent")
    assert r.train.batch_size == 128 and p.acl_alpha == 0.3
    # about 1 s = 101 frames of 10 ms
    assert r.audio.hop_length == 160 and round(p.patch_seconds * 16000 / 160) == 101


# --- bounds: what a recipe may expand to, and what a message may quote -----------------------


def _alias_bomb(levels: int = 8, fan: int = 9) -> str:
    """`data.unlabelled` holding anchors whose aliases repeat the previous anchor `fan` times:
    488 bytes standing for 9**9 (387 million) paths."""
    lines = ["data:", "  unlabelled:", f"  - &a0 [{', '.join(['x'] * fan)}]"]
    for i in range(1, levels + 1):
        lines.append(f"  - &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_once_in_one_short_line(tmp_path):
    path = write(tmp_path, _alias_bomb())
    started = time.perf_counter()
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert time.perf_counter() - started < 1.0  # was 82 s and 2.4 GB
    message = str(info.value)
    assert "aliases expand this value to more than 100,000 values" in message
    assert "\n" not in message and len(message) < 300, message


def test_small_aliases_still_work(tmp_path):
    text = (
        "wave_augment:\n  fade: &on {prob: 0.5}\n  time_mask: *on\n"
        "data:\n  classes: &names [owl, wren]\npretrain:\n  archives: *names\n"
    )
    recipe = load_recipe(write(tmp_path, text))
    assert recipe.wave_augment.time_mask.prob == 0.5
    assert recipe.data.classes == ["owl", "wren"]


def test_many_values_without_aliases_are_refused_too(tmp_path, monkeypatch):
    # The same count as for aliases, at a bound small enough to write out quickly (100,000
    # values take PyYAML's pure-Python composer seconds).
    monkeypatch.setattr(yaml_bounds, "MAX_VALUES", 1000)
    names = [f"c{i}" for i in range(1000)]
    loaded = load_recipe(write(tmp_path, f"data:\n  classes: [{', '.join(names[:990])}]\n"))
    assert len(loaded.data.classes) == 990
    msg = load_error(tmp_path, f"data:\n  classes: [{', '.join(names)}]\n")
    assert "refused (line 2): this value holds more than 1,000 values" in msg


def test_alias_inside_its_own_anchor_is_refused(tmp_path):
    msg = load_error(tmp_path, "data:\n  unlabelled: &loop [a, *loop]\n")
    assert "refused (line 2): an alias refers to a value that contains it" in msg


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, style):
    depth = 50_000
    if style == "flow":
        text = "data:\n  unlabelled: " + "[" * depth + "x" + "]" * depth + "\n"
    else:  # "- - - ... x": each dash opens a list inside the previous one
        text = "data:\n  unlabelled:\n    " + "- " * depth + "x\n"
    started = time.perf_counter()
    msg = load_error(tmp_path, text)  # a RecursionError would not be a RecipeError
    assert time.perf_counter() - started < 5.0
    assert "refused" in msg and "nested more than 64 levels deep" in msg
    assert "\n" not in msg and len(msg) < 300, msg


def test_nesting_a_recipe_needs_is_far_below_the_bound(tmp_path):
    text = "pretrain:\n  views:\n    mask:\n      prob: 0.5\ndata:\n  classes: [[a]]\n"
    assert "must be a list of names, got [['a']]" in load_error(tmp_path, text)


def _alias_bomb_flow(levels: int = 8, fan: int = 9) -> str:
    """The same bomb on one line, as a --set value."""
    items = [f"&a0 [{', '.join(['x'] * fan)}]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    return f"[{', '.join(items)}]"


@pytest.mark.parametrize(
    "value", ["[" * 50_000 + "]" * 50_000, _alias_bomb_flow()], ids=["deep", "aliases"]
)
def test_overrides_are_read_within_the_same_bounds(tmp_path, value):
    started = time.perf_counter()
    msg = load_error(tmp_path, "", (f"data.unlabelled={value}",))
    assert time.perf_counter() - started < 1.0
    assert msg.startswith("--set 'data.unlabelled=") and "refused (line 1)" in msg
    assert "\n" not in msg and len(msg) < 300, msg


def test_override_key_of_many_parts_is_refused(tmp_path):
    msg = load_error(tmp_path, "", ("data" + ".a" * 50_000 + "=1",))
    assert "a key of more than 64 parts" in msg and len(msg) < 200


@pytest.mark.parametrize(
    ("text", "overrides", "start"),
    [
        ("train:\n  metric: [" + ", ".join(["uar"] * 10_000) + "]\n", (), "train.metric must"),
        ("data:\n  classes: " + "x" * 100_000 + "\n", (), "data.classes must be a list"),
        ("train:\n  lr: " + "1" * 400 + "\n", (), "finite number, got <an integer of 1326 bits>"),
        ("wave_augment:\n  fade:\n    shapes: [" + "y" * 100_000 + "]\n", (), "wave_augment"),
        ("data:\n  " + "k" * 1000 + ": 1\n", (), "unknown key 'data.kkk"),
        ("", ("train.lr=" + "z" * 100_000,), "train.lr must be a number"),
        ("", ("x" * 100_000,), "--set 'xxx"),
        ("", ("model.name=" + "m" * 100_000,), None),
    ],
    ids=["list", "string", "huge-int", "name", "key", "override", "bad-override", "model"],
)
def test_long_values_are_cut_short_in_messages(tmp_path, text, overrides, start):
    path = write(tmp_path, text)
    if start is None:  # model names are checked when the model is built
        from bioclass.models import known_model

        with pytest.raises(BioclassError) as info:
            known_model(load_recipe(path, overrides).model.name)
        start = "unknown model 'mmm"
    else:
        with pytest.raises(RecipeError) as info:
            load_recipe(path, overrides)
    msg = str(info.value)
    assert start in msg, msg
    # Bounded whatever the value's length (the recipe's path aside; an unknown key lists the
    # section's valid keys, bounded by the schema).
    assert ("…" in msg or "bits>" in msg) and len(msg.replace(str(path), "")) < 500, msg


def test_quote_is_repr_when_short_and_cut_when_long():
    from bioclass.recipe.quote import QUOTE_LIMIT, quote

    for value in ("often", 1.5, float("nan"), None, [1, "a"], {"a": (1,)}, {2}, b"x"):
        assert quote(value) == repr(value)
    huge = list(range(10**6))
    assert quote(huge) == repr(huge)[: QUOTE_LIMIT - 1] + "…"
    looped: list = []
    looped.append(looped)
    assert len(quote(looped)) == QUOTE_LIMIT  # a self-reference is cut, not followed forever
    assert quote(10**5000) == "<an integer of 16610 bits>"


@pytest.mark.parametrize(
    "text",
    [
        "seed: !!python/object/apply:os.system ['echo owned']\n",
        "model:\n  name: !!python/name:os.system\n",
        "train: !!python/object:argparse.Namespace {lr: 1}\n",
    ],
)
def test_python_tags_are_still_refused(tmp_path, text):
    msg = load_error(tmp_path, text)
    assert "not valid YAML (line" in msg and "could not determine a constructor" in msg


@pytest.mark.parametrize(
    "text",
    ["seed: " + "1" * 5000 + "\n", "seed: !!int owl\n", "train:\n  lr: !!float owl\n"],
    ids=["int-past-python-limit", "bad-int-tag", "bad-float-tag"],
)
def test_tagged_values_that_cannot_be_read_are_one_line(tmp_path, text):
    msg = load_error(tmp_path, text)  # PyYAML raises ValueError for these
    assert "not valid YAML (line" in msg and "cannot read this" in msg
    assert len(msg) < 300


# --- numbers that are not numbers ----------------------------------------------------------------


def _float_keys(cls: type = Recipe, prefix: str = "") -> list[str]:
    """Every float-valued key of the recipe, dotted."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys += _float_keys(hint, f"{prefix}{f.name}.")
        elif float in (hint, *typing.get_args(hint)):
            keys.append(f"{prefix}{f.name}")
    return keys


FLOAT_KEYS = _float_keys()


def test_the_float_keys_are_all_found():
    assert len(FLOAT_KEYS) > 40 and "train.lr" in FLOAT_KEYS and "audio.f_max" in FLOAT_KEYS


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_every_number_refuses_nan_and_infinities(tmp_path, key, value):
    """NaN compares false both ways, so it used to pass every one-sided bound."""
    msg = load_error(tmp_path, "", (f"{key}={value}",))
    # A [min, max] pair is one rule naming both ends ("...min_rate must be <= max_rate").
    section, name = key.rsplit(".", 1)
    assert section in msg and name in msg, msg


def test_nan_is_named_as_not_finite(tmp_path):
    assert load_error(tmp_path, "train:\n  lr: .nan\n").endswith(
        "train.lr must be finite and positive, got nan"
    )
    assert "train.lr must be finite and positive, got inf" in load_error(
        tmp_path, "", ("train.lr=.inf",)
    )
    assert "audio.f_min must be finite and in [0, 8000)" in load_error(
        tmp_path, "audio:\n  f_min: .nan\n  f_max: 4000\n"
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.lr=-0.001", "train.lr must be positive, got -0.001"),
        ("train.weight_decay=-1", "train.weight_decay must be >= 0, got -1.0"),
        ("seed=-1", "seed must be in [0, 4294967295], got -1"),
        ("seed=4294967296", "seed must be in [0, 4294967295]"),
    ],
)
def test_negative_values_that_used_to_crash_later(tmp_path, override, expected):
    assert expected in load_error(tmp_path, "", (override,))
