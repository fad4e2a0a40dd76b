"""The one run configuration shared by the GUI, the presets and the CLI.

Every field has a default, a range and a one-line description; the GUI builds its forms and
tooltips from them. On disk a config is TOML. Unknown keys are errors.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from finetune_gui.config_sections import (
    AugmentConfig,
    DataConfig,
    LoraConfig,
    ModelConfig,
    TaskConfig,
    TaskKind,
    no_bool_for_numbers,
)
from finetune_gui.config_training import CheckpointConfig, EarlyStoppingConfig, LoggingConfig, TrainConfig
from finetune_gui.paths import expand_user

__all__ = [
    "AugmentConfig",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "EarlyStoppingConfig",
    "LoggingConfig",
    "LoraConfig",
    "ModelConfig",
    "RunConfig",
    "TaskConfig",
    "TaskKind",
    "TrainConfig",
    "apply_overrides",
    "explain_error",
    "field_info",
    "load_config",
    "migrate",
    "save_config",
    "validate_dict",
]

SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """A config that cannot be used; `problems` holds one `field: message` line per fault."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "invalid config\n  " + "\n  ".join(problems))

    def by_field(self) -> dict[str, list[str]]:
        """Problems keyed by the dotted field they are about ("train.lr"), for showing them beside the fields;
        problems about no one field (a file that is not TOML) are under ""."""
        out: dict[str, list[str]] = {}
        for line in self.problems:
            key, sep, message = line.partition(": ")
            if not sep or not key or " " in key:
                key, message = "", line
            out.setdefault(key, []).append(message)
        return out


class RunConfig(BaseModel):
    """A whole run: what to learn, from which data, with which model and how."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    _numbers_not_bools = field_validator("*", mode="before")(classmethod(no_bool_for_numbers))

    schema_version: int = Field(SCHEMA_VERSION, ge=1, description="Version of this file's layout.")
    name: str = Field("run", description="Short name of this setup.")
    description: str = Field("", description="One line saying what this setup does.")
    task: TaskConfig = Field(default_factory=TaskConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        """Folder that relative data and weight paths are resolved against (the config file's folder)."""
        return self._base_dir

    def with_base_dir(self, base_dir: str | Path) -> RunConfig:
        self._base_dir = Path(base_dir).resolve()
        return self

    def resolve(self, path: str) -> Path:
        """An absolute path for a path written in this config."""
        p = expand_user(path)
        if p.is_absolute():
            return p
        try:
            return (self._base_dir / p).resolve()
        except (OSError, RuntimeError, ValueError):  # a link to itself, a name too long: the reader reports it
            return Path(os.path.abspath(self._base_dir / p))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def __eq__(self, other: object) -> bool:
        # two configs are the same setup when their values are; where they were read from does not count
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())


# ---------------------------------------------------------------- loading and messages


def explain_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    """One pydantic error as a sentence that names the field and what to do."""
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if kind == "extra_forbidden":
        parent: Any = model
        for part in err["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
            parent = field.annotation if field is not None else None
        names = list(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        close = difflib.get_close_matches(str(err["loc"][-1]), names, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else (f"; known keys: {', '.join(names)}" if names else "")
        return f"{loc}: unknown key{hint}"
    messages = {
        "greater_than": "must be > {gt}",
        "greater_than_equal": "must be >= {ge}",
        "less_than": "must be < {lt}",
        "less_than_equal": "must be <= {le}",
        "missing": "is required",
    }
    if kind in messages:
        msg = messages[kind].format(**ctx)
    elif kind in ("literal_error", "enum"):
        msg = f"must be one of {ctx.get('expected', '')}"
    else:
        msg = err["msg"][0].lower() + err["msg"][1:]
        msg = msg.removeprefix("value error, ")
    if kind in ("missing", "value_error"):
        return f"{loc}: {msg}"
    return f"{loc}: {msg}, got {got!r}"


def validate_dict(data: dict[str, Any], source: str | None = None) -> RunConfig:
    """Build a RunConfig from plain data, raising ConfigError with field-level messages."""
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): a config is a table of sections, got {type(data).__name__}"], source)
    data = migrate(dict(data), source)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError([explain_error(err, RunConfig) for err in e.errors()], source) from None


def migrate(data: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    """Bring an older config layout up to SCHEMA_VERSION; refuse a newer one."""
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, (str, float)) and not isinstance(version, bool):
        try:  # "2" or 2.0 would be read as 2 later: check them as the number they will be
            version = int(float(version)) if float(version) == int(float(version)) else version
        except (ValueError, OverflowError):
            pass
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ConfigError(
            [
                f"schema_version: this file is version {version}, but this finetune-gui reads up to "
                f"{SCHEMA_VERSION}; update finetune-gui to open it"
            ],
            source,
        )
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML config file, apply `section.key=value` overrides, and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found: {path}"], str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"not UTF-8 text (byte {e.start}); save the file as UTF-8"], str(path)) from None
    except IsADirectoryError:
        raise ConfigError([f"{path} is a folder; give a config .toml file"], str(path)) from None
    except OSError as e:
        raise ConfigError([f"cannot be read ({e.strerror or e})"], str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"not valid TOML: {e}"], str(path)) from None
    if overrides:
        apply_overrides(data, overrides)
    return validate_dict(data, str(path)).with_base_dir(path.parent)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=3e-4` → (['train', 'lr'], 0.0003); values are read as TOML, else as a string."""
    if "=" not in text:
        raise ConfigError([f"--set {text}: expected section.key=value"])
    key, raw = text.split("=", 1)
    keys = [k.strip() for k in key.strip().split(".") if k.strip()]
    if not keys:
        raise ConfigError([f"--set {text}: missing key before '='"])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            nxt = node.setdefault(k, {})
            if not isinstance(nxt, dict):
                raise ConfigError([f"--set {item}: '{k}' is a value, not a section"])
            node = nxt
        node[keys[-1]] = value
    return data


def save_config(config: RunConfig, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a config as TOML atomically; refuses to replace an existing file unless told to."""
    from finetune_gui.files import atomic_write_text

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting")
    atomic_write_text(path, config.to_toml())
    return path


def field_info(section: str, key: str) -> tuple[str, Any]:
    """(description, default) of a field, for tooltips and forms."""
    sect = RunConfig.model_fields[section].annotation
    f = sect.model_fields[key]  # type: ignore[union-attr]
    return f.description or "", f.get_default(call_default_factory=True)
