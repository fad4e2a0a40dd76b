"""Shipped presets and demo data, and finding/listing/saving presets."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from finetune_gui import presets
from finetune_gui.config import ConfigError, RunConfig, TaskKind, load_config

REPO = Path(__file__).resolve().parents[2]
PRESETS_DIR = REPO / "presets"
DEMO = REPO / "resources" / "demo"
SHIPPED = sorted(PRESETS_DIR.glob("*.toml"))
REQUIRED = {
    "demo-fashion",
    "resnet18-quick-head",
    "resnet50-finetune",
    "mobilenet-v3-small",
    "bert-base-sentiment",
    "distilbert-topics",
    "minilm-sentiment",
    "gpt2-finetune",
    "smollm2-lora",
    "fashion-multilabel",
    "fashion-brightness-regression",
}


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user-presets"
    monkeypatch.setenv(presets.ENV_PRESETS_DIR, str(folder))
    return folder


def _is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


# ---------------------------------------------------------------- shipped presets


def test_builtin_dir_is_the_repos_presets_folder():
    assert presets.builtin_presets_dir() == PRESETS_DIR
    assert REQUIRED <= {p.stem for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_preset_validates(path):
    cfg = load_config(path)
    assert cfg.base_dir == PRESETS_DIR
    assert cfg.name == path.stem
    assert cfg.description and "\n" not in cfg.description
    # What is on disk is exactly what the model writes back: no stray or misspelt keys survive a round trip.
    assert RunConfig.model_validate(cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_preset_paths_exist_or_are_user_placeholders(path):
    cfg = load_config(path)
    for key, value in (("data.path", cfg.data.path), ("model.weights_path", cfg.model.weights_path)):
        if not value:
            assert key != "data.path", "a preset must name its data (a '~/...' placeholder for user data)"
            continue
        if value.startswith("~"):
            continue  # the user's own data: they edit it
        resolved = cfg.resolve(value)
        assert _is_inside(resolved, REPO), f"{key}={value!r} leaves the repository; use '~/...' for user data"
        assert resolved.exists(), f"{key}={value!r} -> {resolved} does not exist"


def _shipped_image_manifests() -> list[Path]:
    found = []
    for path in SHIPPED:
        cfg = load_config(path)
        if cfg.task.kind.is_image and cfg.data.path.endswith(".csv") and not cfg.data.path.startswith("~"):
            found.append(path)
    return found


IMAGE_MANIFEST_PRESETS = _shipped_image_manifests()


def test_multilabel_and_regression_demos_use_manifests():
    assert {p.stem for p in IMAGE_MANIFEST_PRESETS} >= {"fashion-multilabel", "fashion-brightness-regression"}


@pytest.mark.parametrize("path", IMAGE_MANIFEST_PRESETS, ids=lambda p: p.stem)
def test_image_manifests_reference_existing_files(path):
    cfg = load_config(path)
    data = cfg.resolve(cfg.data.path)
    with open(data, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for col in [cfg.data.path_column, *cfg.data.label_columns]:
        assert col in rows[0], f"{data.name} has no column {col!r}"
    missing = [r[cfg.data.path_column] for r in rows if not (data.parent / r[cfg.data.path_column]).is_file()]
    assert not missing, missing[:5]


def _has_validation_split(cfg: RunConfig) -> bool:
    """A val_fraction, or data that names its own validation rows (a val folder, a split column with val rows)."""
    if cfg.data.val_fraction > 0:
        return True
    data = cfg.resolve(cfg.data.path)
    if data.is_dir():
        return any((data / name).is_dir() for name in ("val", "valid", "validation", "dev"))
    if data.suffix == ".csv" and data.is_file():
        with data.open(encoding="utf-8") as f:
            return any(
                row.get("split", "").strip().lower() in ("val", "valid", "validation", "dev")
                for row in csv.DictReader(f)
            )
    return False


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_preset_with_a_validation_split_stops_early(path):
    """A run that keeps training while validation loss rises wastes time (issue 13: 8 epochs, 16 minutes, val loss
    up from epoch 3); with a validation split to watch, every shipped preset stops when it stops improving."""
    cfg = load_config(path)
    if not _has_validation_split(cfg):
        pytest.skip("no validation split: early stopping would watch the training loss")
    es = cfg.early_stopping
    assert es.enabled, f"{path.name}: early_stopping.enabled is false"
    assert es.restore_best
    # one bad epoch must not end a run: the demo's val loss jumps at epoch 2 (random init) and is best at epoch 3
    assert es.patience >= 2, f"{path.name}: patience {es.patience} ends the run at the first epoch without a gain"


def test_the_default_config_stops_early_and_keeps_the_best_weights():
    """The GUI starts from these defaults."""
    es = RunConfig().early_stopping
    assert es.enabled and es.restore_best and es.patience == 3


def test_demo_preset_is_small_offline_and_has_four_classes():
    cfg = load_config(PRESETS_DIR / "demo-fashion.toml")
    assert cfg.task.kind is TaskKind.IMAGE_CLASSIFICATION
    assert cfg.model.name == "resnet18" and cfg.model.pretrained and cfg.model.allow_random_init
    assert cfg.model.freeze == "none"
    assert cfg.data.image_size == 32 and cfg.train.epochs == 3 and cfg.train.batch_size == 32
    assert cfg.checkpoint.output_dir == "runs"
    root = cfg.resolve(cfg.data.path)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert classes == ["bag", "dress", "sneaker", "trouser"]
    for c in classes:
        pngs = sorted((root / c).glob("*.png"))
        assert len(pngs) == 60
        with Image.open(pngs[0]) as im:
            assert im.size == (28, 28)


def test_demo_data_is_small():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 1_500_000, f"resources/demo holds {total} bytes"
    assert (DEMO / "fortunes.txt").stat().st_size <= 150_000


def test_fashion_csv_labels_are_computed_from_the_pixels():
    with open(DEMO / "fashion_brightness.csv", newline="", encoding="utf-8") as f:
        values = {r["path"]: float(r["value"]) for r in csv.DictReader(f)}
    with open(DEMO / "fashion_multilabel.csv", newline="", encoding="utf-8") as f:
        labels = {r["path"]: r["labels"].split(";") for r in csv.DictReader(f)}
    assert len(values) == len(labels) == 240 and values.keys() == labels.keys()
    group = {"trouser": "clothing", "dress": "clothing", "sneaker": "footwear", "bag": "accessory"}
    seen = set()
    for rel, value in values.items():
        mean = np.asarray(Image.open(DEMO / rel).convert("L"), dtype=np.float64).mean() / 255.0
        assert value == pytest.approx(mean, abs=1e-4)
        expected = [group[Path(rel).parent.name]] + (["dark"] if mean < 0.2 else [])
        assert labels[rel] == expected
        seen.update(expected)
    assert seen == {"clothing", "footwear", "accessory", "dark"}


def test_reviews_are_balanced_and_distinct():
    with open(DEMO / "reviews.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert 100 <= len(rows) <= 200
    assert {r["label"] for r in rows} == {"positive", "negative"}
    assert sum(r["label"] == "positive" for r in rows) == len(rows) // 2
    assert len({r["text"].lower() for r in rows}) == len(rows)


def test_fortunes_corpus_keeps_separators():
    text = (DEMO / "fortunes.txt").read_text(encoding="utf-8")
    entries = [e for e in text.split("\n%\n") if e.strip()]
    assert len(entries) > 500
    assert not any(ord(c) < 32 and c not in "\n\t" for c in text)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
    or not Path("/usr/share/games/fortunes/wisdom").exists(),
    reason="needs Debian packages dataset-fashion-mnist and fortunes",
)
def test_make_demo_data_reproduces_the_shipped_files(tmp_path):
    spec = importlib.util.spec_from_file_location("make_demo_data", REPO / "scripts" / "make_demo_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path)]) == 0
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(made) == 243
    for rel in made:
        assert (tmp_path / rel).read_bytes() == (DEMO / rel).read_bytes(), rel


# ---------------------------------------------------------------- listing, finding, saving


def test_user_presets_dir_per_platform(monkeypatch, tmp_path):
    monkeypatch.delenv(presets.ENV_PRESETS_DIR, raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert presets.user_presets_dir() == tmp_path / ".config" / "finetune-gui" / "presets"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert presets.user_presets_dir() == tmp_path / "Library" / "Application Support" / "finetune-gui" / "presets"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert presets.user_presets_dir() == tmp_path / "Roaming" / "finetune-gui" / "presets"
    monkeypatch.setenv(presets.ENV_PRESETS_DIR, str(tmp_path / "mine"))
    assert presets.user_presets_dir() == tmp_path / "mine"


def test_list_presets_has_builtins_and_user_presets(user_dir):
    cfg = load_config(PRESETS_DIR / "demo-fashion.toml")
    cfg.name = "My demo"
    cfg.description = "the demo, my way"
    presets.save_user_preset(cfg, "my-demo")
    infos = presets.list_presets()
    by_name = {(i.name, i.builtin): i for i in infos}
    assert {n for n, builtin in by_name if builtin} == {p.stem for p in SHIPPED}
    mine = by_name[("my-demo", False)]
    assert mine.valid and mine.title == "My demo" and mine.description == "the demo, my way"
    assert mine.task == "image-classification" and mine.model == "resnet18"
    assert mine.path == user_dir / "my-demo.toml"
    demo = by_name[("demo-fashion", True)]
    assert demo.title == "demo-fashion" and demo.path == PRESETS_DIR / "demo-fashion.toml"


def test_invalid_user_preset_is_listed_as_invalid(user_dir):
    user_dir.mkdir(parents=True)
    (user_dir / "broken.toml").write_text("[train]\nlr = -1\nepoch = 3\n", encoding="utf-8")
    (user_dir / "not-toml.toml").write_text("this is [not toml", encoding="utf-8")
    infos = {i.name: i for i in presets.list_presets() if not i.builtin}
    assert set(infos) == {"broken", "not-toml"}
    assert not infos["broken"].valid
    assert infos["broken"].description.startswith("invalid: train.")
    assert infos["broken"].task == "" and infos["broken"].title == "broken"
    assert infos["not-toml"].description.startswith("invalid: not valid TOML")


def test_save_user_preset_refuses_to_overwrite(user_dir):
    cfg = load_config(PRESETS_DIR / "minilm-sentiment.toml")
    path = presets.save_user_preset(cfg, "mine")
    before = path.read_text(encoding="utf-8")
    cfg.train.lr = 1e-4
    with pytest.raises(FileExistsError):
        presets.save_user_preset(cfg, "mine")
    assert path.read_text(encoding="utf-8") == before
    presets.save_user_preset(cfg, "mine", overwrite=True)
    assert load_config(path).train.lr == 1e-4


def test_saved_user_preset_still_finds_its_data(user_dir):
    cfg = load_config(PRESETS_DIR / "demo-fashion.toml")
    path = presets.save_user_preset(cfg, "moved")
    again = load_config(path)
    assert again.resolve(again.data.path) == DEMO / "fashion"
    placeholder = load_config(PRESETS_DIR / "resnet18-quick-head.toml")
    again = load_config(presets.save_user_preset(placeholder, "placeholder"))
    assert again.data.path == placeholder.data.path  # '~/...' is left for the user to edit


@pytest.mark.parametrize("bad", ["", "has space", "../escape", "a/b", "dots.toml", "ümlaut"])
def test_save_user_preset_rejects_bad_names(user_dir, bad):
    with pytest.raises(ConfigError, match="letters, digits"):
        presets.save_user_preset(RunConfig(), bad)
    assert not user_dir.exists() or not any(user_dir.iterdir())


def test_find_preset_by_name_and_path(user_dir):
    assert presets.find_preset("demo-fashion") == PRESETS_DIR / "demo-fashion.toml"
    assert presets.find_preset("demo-fashion.toml") == PRESETS_DIR / "demo-fashion.toml"
    some_file = PRESETS_DIR / "gpt2-finetune.toml"
    assert presets.find_preset(str(some_file)) == some_file
    # A user preset of the same name shadows the shipped one.
    shadow = presets.save_user_preset(load_config(some_file), "demo-fashion")
    assert presets.find_preset("demo-fashion") == shadow


def test_find_preset_unknown_name_suggests_close_matches(user_dir):
    with pytest.raises(ConfigError) as err:
        presets.find_preset("demo-fashon")
    assert "unknown preset 'demo-fashon'" in str(err.value)
    assert "did you mean 'demo-fashion'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        presets.find_preset("qqqqqqqq")
    assert "known presets:" in str(err.value) and "smollm2-lora" in str(err.value)
    with pytest.raises(ConfigError, match="no such file"):
        presets.find_preset("some/folder/missing.toml")


def test_a_preset_name_like_an_unknown_users_home_is_an_unknown_preset(user_dir):
    with pytest.raises(ConfigError, match="unknown preset '~no-such-user-0'"):
        presets.find_preset("~no-such-user-0")
