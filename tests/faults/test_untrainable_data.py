"""Case 14: data that cannot train (empty after filtering, one class only, val labels unseen in train) is
refused with the reason before any compute is spent: no model is built, nothing is trained."""

from __future__ import annotations

import pytest

from finetune_gui.config import validate_dict
from finetune_gui.core.training import engine, prepare
from finetune_gui.core.training.events import EventLog, RunFailed, RunStarted
from tests.conftest import make_image_folder
from tests.factories import tiny_gpt2_dir


@pytest.fixture
def no_model(monkeypatch):
    """Fail loudly if the engine gets as far as building a model."""
    built = []

    def refuse(*args, **kwargs):
        built.append(args)
        raise AssertionError("a model was built for data that cannot train")

    monkeypatch.setattr(prepare, "build_model", refuse)
    return built


def _refused(config, tmp_path, *words):
    log = EventLog()
    result = engine.fit(config, log, output_dir=tmp_path / "runs")
    assert result.status == "failed"
    (failed,) = log.of(RunFailed)
    assert failed.error_type == "DataError", failed
    for w in words:
        assert w in failed.message, (w, failed.message)
    assert not log.of(RunStarted)
    assert not list(result.run_dir.glob("checkpoints/*"))
    return failed.message


def _image_config(path, kind="image-classification", **data):
    return validate_dict(
        {
            "task": {"kind": kind},
            "data": {"path": str(path), "image_size": 32, **data},
            "model": {"name": "resnet18", "allow_random_init": True},
            "train": {"epochs": 1},
        }
    )


def _text_config(path, kind="text-classification", model="unused-model", **data):
    return validate_dict(
        {
            "task": {"kind": kind},
            "data": {"path": str(path), **data},
            "model": {"name": model},
            "train": {"epochs": 1},
        }
    )


def test_images_that_are_all_unreadable_leave_nothing_and_say_so(tmp_path, no_model):
    root = tmp_path / "images"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            (root / cls / f"{i}.jpg").write_bytes(b"" if i % 2 else b"not really a jpeg")
    _refused(_image_config(root), tmp_path, "no usable images", "problems")


def test_one_image_class_is_refused(tmp_path, no_model):
    make_image_folder(tmp_path / "images", classes=("only",), per_class=6)
    _refused(_image_config(tmp_path / "images"), tmp_path, "at least two classes", "'only'")


def test_one_class_left_after_unreadable_images_are_skipped_is_refused(tmp_path, no_model):
    make_image_folder(tmp_path / "images", classes=("good", "broken"), per_class=4)
    for f in (tmp_path / "images" / "broken").iterdir():
        f.write_bytes(b"")
    _refused(_image_config(tmp_path / "images"), tmp_path, "at least two classes", "'good'")


@pytest.mark.parametrize("split_folder", ["val", "test"])
def test_labels_in_val_or_test_that_train_lacks_are_refused_with_their_names(tmp_path, no_model, split_folder):
    root = tmp_path / "data"
    make_image_folder(root / "train", classes=("cat", "dog"), per_class=4)
    make_image_folder(root / split_folder, classes=("cat", "dog", "zebra"), per_class=2)
    message = _refused(_image_config(root), tmp_path, "'zebra'", split_folder)
    assert "not in train" in message


def test_a_manifest_split_column_with_unseen_val_labels_is_refused(tmp_path, no_model):
    make_image_folder(tmp_path / "images", classes=("cat", "dog", "zebra"), per_class=3)
    rows = ["path,label,split"]
    for p in sorted((tmp_path / "images").rglob("*.png")):
        split = "val" if p.parent.name == "zebra" else "train"
        rows.append(f"{p.relative_to(tmp_path).as_posix()},{p.parent.name},{split}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    _refused(_image_config(tmp_path / "m.csv"), tmp_path, "'zebra'", "val")


def test_multilabel_rows_without_any_label_are_refused(tmp_path, no_model):
    make_image_folder(tmp_path / "images", per_class=2)
    rows = ["path,label"] + [
        f"{p.relative_to(tmp_path).as_posix()}," for p in sorted((tmp_path / "images").rglob("*.png"))
    ]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    _refused(_image_config(tmp_path / "m.csv", kind="image-multilabel"), tmp_path, "no usable images")


def test_regression_with_a_label_that_is_not_a_number_names_the_line(tmp_path, no_model):
    make_image_folder(tmp_path / "images", per_class=2)
    pics = sorted((tmp_path / "images").rglob("*.png"))
    rows = ["path,value"] + [f"{p.relative_to(tmp_path).as_posix()},{i * 0.5}" for i, p in enumerate(pics)]
    rows[4] = rows[4].rsplit(",", 1)[0] + ",heavy"
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    _refused(
        _image_config(tmp_path / "m.csv", kind="image-regression", label_columns=["value"]),
        tmp_path,
        "line 5",
        "'heavy'",
        "not a number",
    )


@pytest.fixture
def tokenizer_only(monkeypatch):
    """Text data is read with the model's tokenizer; a stand-in keeps these tests free of model files."""

    class Tok:
        pad_token_id = eos_token_id = 0

        def __call__(self, texts, **kwargs):
            return {"input_ids": [[1 + (ord(c) % 50) for c in t[:16]] for t in texts]}

    monkeypatch.setattr(prepare, "_tokenizer_only", lambda config: Tok())


def test_text_rows_all_without_text_or_label_are_refused(tmp_path, no_model, tokenizer_only):
    f = tmp_path / "t.csv"
    f.write_text("text,label\n,positive\n   ,negative\nsome words,\n")
    _refused(_text_config(f), tmp_path, "no usable rows")


def test_one_text_class_is_refused(tmp_path, no_model, tokenizer_only):
    f = tmp_path / "t.csv"
    f.write_text("text,label\n" + "".join(f"text number {i},positive\n" for i in range(10)))
    _refused(_text_config(f), tmp_path, "at least two classes", "'positive'")


def test_a_text_label_column_that_is_missing_names_the_columns(tmp_path, no_model, tokenizer_only):
    f = tmp_path / "t.csv"
    f.write_text("text,sentiment\nhello,positive\nbye,negative\n")
    _refused(_text_config(f), tmp_path, "'label'", "'sentiment'", "data.label_columns")


def test_language_model_text_too_short_to_make_one_block_is_refused(tmp_path, no_model):
    f = tmp_path / "t.txt"
    f.write_text("hi\n")
    config = _text_config(f, kind="causal-lm", model=str(tiny_gpt2_dir(tmp_path)))
    _refused(config, tmp_path, "tokens of text", "add more text")
