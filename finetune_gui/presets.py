"""Presets: ready-made run configs, shipped in the repository's presets/ folder or saved by the user.

A preset is an ordinary config TOML file; its name is the file's stem. The user's own presets live in
`user_presets_dir()` (overridable with the FINETUNE_GUI_PRESETS_DIR environment variable) and shadow shipped
presets of the same name in `find_preset`. No Qt and no torch here: the GUI and the CLI both use this module.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from finetune_gui.config import ConfigError, RunConfig, load_config, save_config
from finetune_gui.paths import expand_user

ENV_PRESETS_DIR = "FINETUNE_GUI_PRESETS_DIR"
APP_DIR_NAME = "finetune-gui"
PRESET_SUFFIX = ".toml"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class PresetInfo:
    """What a preset list shows: one row per preset file."""

    name: str  # file stem; what `find_preset` and the CLI take
    path: Path
    title: str  # config.name
    description: str  # config.description, or "invalid: <first problem>"
    task: str  # task kind value, e.g. "image-classification"; "" when the file is invalid
    model: str  # model.name; "" when the file is invalid
    builtin: bool

    @property
    def valid(self) -> bool:
        """False for a file that does not load (its description then says why)."""
        return bool(self.task)


def builtin_presets_dir() -> Path:
    """The presets/ folder shipped next to the finetune_gui package."""
    return Path(__file__).resolve().parent.parent / "presets"


def user_presets_dir() -> Path:
    """Where the user's own presets are kept (the folder may not exist yet)."""
    env = os.environ.get(ENV_PRESETS_DIR, "").strip()
    if env:
        return expand_user(env)
    home = Path.home()
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config"
    return base / APP_DIR_NAME / "presets"


def _preset_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if p.suffix == PRESET_SUFFIX and p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.stem.lower(),
    )


def _info(path: Path, builtin: bool) -> PresetInfo:
    try:
        cfg = load_config(path)
    except ConfigError as e:
        first = e.problems[0] if e.problems else str(e)
        return PresetInfo(path.stem, path, path.stem, f"invalid: {first}", "", "", builtin)
    except OSError as e:
        return PresetInfo(
            path.stem, path, path.stem, f"invalid: cannot read the file ({e.strerror or e})", "", "", builtin
        )
    return PresetInfo(path.stem, path, cfg.name, cfg.description, cfg.task.kind.value, cfg.model.name, builtin)


def list_presets() -> list[PresetInfo]:
    """Shipped presets, then the user's own, each sorted by name. Invalid files are listed, not raised."""
    return [_info(p, True) for p in _preset_files(builtin_presets_dir())] + [
        _info(p, False) for p in _preset_files(user_presets_dir())
    ]


def preset_names() -> list[str]:
    """Every known preset name, user presets first where a name is in both places."""
    names: dict[str, None] = {}
    for folder in (user_presets_dir(), builtin_presets_dir()):
        for p in _preset_files(folder):
            names.setdefault(p.stem, None)
    return sorted(names, key=str.lower)


def find_preset(name_or_path: str | Path) -> Path:
    """A config file's path: `name_or_path` itself if it is an existing file, else the preset of that name.

    The user's folder wins over the shipped one. An unknown name raises ConfigError naming close matches
    (or all known presets).
    """
    text = str(name_or_path).strip()
    as_path = expand_user(text)
    if text and as_path.is_file():
        return as_path
    stem = as_path.name[: -len(PRESET_SUFFIX)] if as_path.name.endswith(PRESET_SUFFIX) else as_path.name
    # A bare name (no folder part) is looked up among the presets.
    if text and len(as_path.parts) == 1:
        for folder in (user_presets_dir(), builtin_presets_dir()):
            candidate = folder / f"{stem}{PRESET_SUFFIX}"
            if candidate.is_file():
                return candidate
    known = preset_names()
    if len(as_path.parts) > 1:
        problem = f"no such file: {as_path}"
    else:
        problem = f"unknown preset '{text}'"
    close = difflib.get_close_matches(stem, known, n=3, cutoff=0.5)
    if close:
        hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    elif known:
        hint = "known presets: " + ", ".join(known)
    else:
        hint = f"no presets found in {builtin_presets_dir()} or {user_presets_dir()}"
    raise ConfigError([f"{problem}; {hint}"], None)


def validate_preset_name(name: str) -> str:
    """A preset name must be a plain file stem: letters, digits, '-' and '_'."""
    if not _NAME_RE.fullmatch(name or ""):
        raise ConfigError([f"preset name {name!r}: use only letters, digits, '-' and '_' (it becomes the file name)"])
    return name


def save_user_preset(config: RunConfig, name: str, *, overwrite: bool = False) -> Path:
    """Save `config` as the user preset `name`; refuses to replace an existing one unless `overwrite`.

    Raises ConfigError for a bad name and FileExistsError when the preset exists. Relative data and weight
    paths are rewritten so they still point at the same places from the user's preset folder.
    """
    validate_preset_name(name)
    folder = user_presets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}{PRESET_SUFFIX}"
    return save_config(_rebased(config, folder), path, overwrite=overwrite)


def _rebased(config: RunConfig, folder: Path) -> RunConfig:
    """A copy of `config` whose relative paths are absolute, since the file moves to another folder."""
    if config.base_dir.resolve() == folder.resolve():
        return config
    copy = config.model_copy(deep=True)
    data_path = config.data.path
    if data_path and not data_path.startswith("~") and not Path(data_path).is_absolute():
        copy.data.path = str(config.resolve(data_path))
    weights_path = config.model.weights_path
    if weights_path and not weights_path.startswith("~") and not Path(weights_path).is_absolute():
        copy.model.weights_path = str(config.resolve(weights_path))
    return copy.with_base_dir(folder)
