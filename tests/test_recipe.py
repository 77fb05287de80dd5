"""Tests for recipes: YAML loading, unknown keys and wrong types named, --set overrides, paths,
value checks and the dict/YAML round trips."""

from __future__ import annotations

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
