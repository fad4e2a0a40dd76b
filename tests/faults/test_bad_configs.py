"""Case 13: unknown keys, wrong types, out-of-range values, missing required fields and presets from a newer
version give field-level messages, never a crash (no traceback, no other exception type)."""

from __future__ import annotations

import math

import pytest
import tomli_w

from finetune_gui.cli import main
from finetune_gui.config import ConfigError, apply_overrides, load_config, validate_dict

CASES = [
    # (config, field the message is about, words it says)
    ({"train": {"lrr": 0.1}}, "train.lrr", "did you mean 'lr'"),
    ({"tran": {"lr": 0.1}}, "tran", "did you mean 'train'"),
    ({"model": {"lora": {"rank": 4}}}, "model.lora.rank", "unknown key"),
    ({"train": {"epochs": "ten"}}, "train.epochs", "valid integer"),
    ({"train": {"epochs": 2.5}}, "train.epochs", "fractional"),
    ({"train": {"epochs": True}}, "train.epochs", "must be a number, got true"),
    ({"data": {"max_samples": False}}, "data.max_samples", "must be a number"),
    ({"data": {"label_columns": "label"}}, "data.label_columns", "valid list"),
    ({"train": {"milestones": [5, "ten"]}}, "train.milestones.1", "valid integer"),
    ({"train": 5}, "train", "valid dictionary"),
    ({"task": {"kind": "image"}}, "task.kind", "must be one of"),
    ({"train": {"lr": -1.0}}, "train.lr", "must be > 0"),
    ({"train": {"lr": math.inf}}, "train.lr", "finite number"),
    ({"train": {"grad_clip": math.nan}}, "train.grad_clip", "finite number"),
    ({"early_stopping": {"min_delta": math.inf}}, "early_stopping.min_delta", "finite number"),
    ({"train": {"batch_size": 10**30}}, "train.batch_size", "must be <= 4096"),
    ({"data": {"image_size": 8}}, "data.image_size", "must be >= 16"),
    ({"data": {"val_fraction": 0.5, "test_fraction": 0.5}}, "data", "must be < 0.95"),
    ({"checkpoint": {"run_name": "../../etc"}}, "checkpoint.run_name", "pattern"),
    ({"schema_version": 99}, "schema_version", "update finetune-gui"),
    ({"schema_version": "2"}, "schema_version", "update finetune-gui"),  # read as 2 later, so refused now
    ({"schema_version": 2.0}, "schema_version", "update finetune-gui"),
    ({"schema_version": 0}, "schema_version", "must be >= 1"),
]


@pytest.mark.parametrize("data,key,words", CASES, ids=[c[1] + "-" + str(i) for i, c in enumerate(CASES)])
def test_a_bad_value_gives_a_message_about_its_field(data, key, words):
    with pytest.raises(ConfigError) as err:
        validate_dict(data)
    fields = err.value.by_field()
    assert key in fields, fields
    assert any(words in m for m in fields[key]), fields


def test_several_faults_are_all_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate_dict({"train": {"lr": -1, "epochs": "x", "lrr": 1}, "data": {"image_size": 4}})
    assert set(err.value.by_field()) == {"train.lr", "train.epochs", "train.lrr", "data.image_size"}


def test_assigning_a_bad_value_in_the_app_is_refused_with_the_field():
    from pydantic import ValidationError

    config = validate_dict({})
    with pytest.raises(ValidationError, match="must be a number"):
        config.train.epochs = True
    assert config.train.epochs == 10


@pytest.mark.parametrize("data", [[1, 2], "train", 5, None])
def test_a_config_that_is_not_a_table_is_a_config_error(data):
    with pytest.raises(ConfigError, match="table of sections"):
        validate_dict(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content,words",
    [
        (b"[train\n", "not valid TOML"),
        (b"train.lr = 1\ntrain.lr = 2\n", "not valid TOML"),
        (b"\xff\xfe\x00t", "not UTF-8"),
        (b"\x00\x01\x02", "not valid TOML"),
        (b"train.lr = nan\n", "finite number"),
    ],
)
def test_a_broken_file_is_a_config_error(tmp_path, content, words):
    f = tmp_path / "c.toml"
    f.write_bytes(content)
    with pytest.raises(ConfigError, match=words):
        load_config(f)


def test_a_folder_or_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "override,words",
    [
        ("train.lr", "expected section.key=value"),
        ("=3", "missing key"),
        ("train.lr=", "valid number"),
        ("train.lr.x=1", "is a value, not a section"),
        ("train.milestones=[1,", "valid list"),
        ("nosuch.key=1", "unknown key"),
    ],
)
def test_bad_overrides_are_config_errors(override, words):
    with pytest.raises(ConfigError, match=words):
        validate_dict(apply_overrides({"train": {"lr": 0.1}}, [override]))


def _write(path, data):
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def test_cli_validate_lists_field_errors_and_exits_2_without_a_traceback(tmp_path, capsys):
    cfg = _write(tmp_path / "bad.toml", {"train": {"lr": -1, "epochs": "ten", "lrr": 1}})
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    for line in ("train.lr: must be > 0", "train.epochs: input should be a valid integer", "train.lrr: unknown key"):
        assert line in err
    assert "Traceback" not in err


def test_cli_train_refuses_a_bad_config_before_making_a_run_folder(tmp_path, capsys):
    cfg = _write(tmp_path / "bad.toml", {"train": {"batch_size": 0}})
    assert main(["train", str(cfg), "--output", str(tmp_path / "runs")]) == 2
    assert "train.batch_size: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_preset_from_a_newer_version_is_refused_by_name(tmp_path, monkeypatch, capsys):
    presets = tmp_path / "user-presets"
    presets.mkdir(exist_ok=True)
    monkeypatch.setenv("FINETUNE_GUI_PRESETS_DIR", str(presets))
    _write(presets / "future.toml", {"schema_version": 3, "train": {"new_thing": 1}, "brand_new_section": {}})
    assert main(["train", "future", "--output", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "version 3" in err and "update finetune-gui" in err
    assert "new_thing" not in err  # the version is the one message, not a list of unknown keys
    from finetune_gui.presets import list_presets

    listed = {p.name: p for p in list_presets()}
    assert "future" in listed and not listed["future"].valid


def test_missing_data_path_is_refused_naming_the_field_before_a_model_is_built(tmp_path, monkeypatch):
    from finetune_gui.core.training import engine, prepare
    from finetune_gui.core.training.events import EventLog, RunFailed

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built for a config without data")

    monkeypatch.setattr(prepare, "build_model", no_model)
    log = EventLog()
    result = engine.fit(validate_dict({"data": {"path": ""}}), log, output_dir=tmp_path / "runs")
    assert result.status == "failed"
    (failed,) = log.of(RunFailed)
    assert failed.error_type == "DataError" and "data.path" in failed.message
