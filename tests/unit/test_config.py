"""The config model: defaults, ranges, field-level messages, TOML round trip, overrides and versions."""

from pathlib import Path

import pytest

from finetune_gui.config import (
    SCHEMA_VERSION,
    ConfigError,
    RunConfig,
    load_config,
    parse_override,
    save_config,
    validate_dict,
)


def test_defaults_form_a_valid_config_and_every_field_is_documented():
    config = RunConfig()
    for section_name, section in RunConfig.model_fields.items():
        sub = section.annotation
        if hasattr(sub, "model_fields"):
            for key, field in sub.model_fields.items():
                assert field.description, f"{section_name}.{key} has no description"
    assert validate_dict(config.to_dict()) == config


def test_errors_name_the_field_the_limit_and_the_value():
    with pytest.raises(ConfigError) as e:
        validate_dict({"train": {"lr": -1, "batch_size": 0}, "data": {"image_size": 5}})
    assert "train.lr: must be > 0.0, got -1" in e.value.problems
    assert "train.batch_size: must be >= 1, got 0" in e.value.problems
    assert "data.image_size: must be >= 16, got 5" in e.value.problems


def test_unknown_keys_are_errors_with_a_did_you_mean():
    with pytest.raises(ConfigError) as e:
        validate_dict({"train": {"learning_rate": 0.1}, "modle": {}})
    text = "\n".join(e.value.problems)
    assert "modle: unknown key; did you mean 'model'?" in text
    assert "train.learning_rate: unknown key" in text


def test_choices_list_the_allowed_values():
    with pytest.raises(ConfigError) as e:
        validate_dict({"train": {"optimizer": "adamax"}})
    assert "train.optimizer: must be one of" in e.value.problems[0] and "'adamw'" in e.value.problems[0]


def test_toml_round_trip_keeps_every_value(tmp_path):
    config = validate_dict({"name": "x", "train": {"lr": 3e-4, "milestones": [2, 4]}, "model": {"lora": {"r": 4}}})
    path = save_config(config, tmp_path / "x.toml")
    assert load_config(path) == config


def test_saving_never_overwrites_without_being_told(tmp_path):
    path = save_config(RunConfig(), tmp_path / "a.toml")
    with pytest.raises(FileExistsError):
        save_config(RunConfig(name="other"), path)
    assert load_config(path).name == "run"
    save_config(RunConfig(name="other"), path, overwrite=True)
    assert load_config(path).name == "other"


def test_overrides_are_read_as_toml_values(tmp_path):
    assert parse_override("train.lr=3e-4") == (["train", "lr"], 3e-4)
    assert parse_override("model.name=bert-base-uncased") == (["model", "name"], "bert-base-uncased")
    assert parse_override("train.milestones=[1, 2]") == (["train", "milestones"], [1, 2])
    path = save_config(RunConfig(), tmp_path / "c.toml")
    config = load_config(path, ["train.epochs=2", "augment.hflip=0"])
    assert config.train.epochs == 2 and config.augment.hflip == 0


def test_a_newer_schema_version_is_refused_with_a_message():
    with pytest.raises(ConfigError) as e:
        validate_dict({"schema_version": SCHEMA_VERSION + 1})
    assert "update finetune-gui" in str(e.value)


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = save_config(validate_dict({"data": {"path": "../data"}}), tmp_path / "sub" / "c.toml")
    assert load_config(path).resolve("../data") == (tmp_path / "data").resolve()


def test_a_path_under_an_unknown_users_home_is_kept_as_written(tmp_path):
    cfg = validate_dict({"data": {"path": "~no-such-user-0/data"}}).with_base_dir(tmp_path)
    assert cfg.resolve("~no-such-user-0/data") == tmp_path / "~no-such-user-0" / "data"
    assert cfg.resolve("~/data") == Path.home() / "data"


def test_bad_toml_and_missing_files_are_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
