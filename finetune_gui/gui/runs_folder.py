"""Where the app keeps run folders: one per-user folder in the platform's data folder (changeable on the Start
page), not `runs/` under whatever folder the app happened to be started from."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

SETTING = "folders/runsRoot"
DEFAULT_OUTPUT_DIR = "runs"  # config.checkpoint.output_dir as presets write it


def default_runs_folder() -> Path:
    """<the platform's data folder>/finetune-gui/runs (~/.local/share/… on Linux, ~/Library/… on macOS)."""
    data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(data or Path.home()) / "finetune-gui" / "runs"


def runs_folder(settings: QSettings) -> Path:
    """The runs folder the user chose, else the default one."""
    chosen = settings.value(SETTING)
    return Path(str(chosen)) if chosen else default_runs_folder()


def output_dir_for(config, folder: Path) -> Path | None:
    """Where a run of `config` started from the app goes: a relative checkpoint.output_dir lives in the runs
    folder (the presets' "runs" is the folder itself); an absolute one is the user's own choice (None: as is)."""
    out = config.checkpoint.output_dir.strip() or DEFAULT_OUTPUT_DIR
    if Path(out).expanduser().is_absolute():
        return None
    return folder if out == DEFAULT_OUTPUT_DIR else folder / out
