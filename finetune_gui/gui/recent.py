"""Lists of recent paths kept in QSettings (setups, runs, model folders), newest first."""

from __future__ import annotations

from PySide6.QtCore import QSettings

RECENT_KEPT = 10


def recent_paths(settings: QSettings, key: str) -> list[str]:
    """The list under `key`; QSettings' INI format gives back a one-item list as a lone string."""
    values = settings.value(key) or []
    if isinstance(values, str):
        values = [values]
    # one-letter items are what an older version wrote when it split such a string up: never a real path
    return [str(v) for v in values if len(str(v)) > 1]


def remember_path(settings: QSettings, key: str, path: str) -> None:
    """Put `path` first in the list under `key` (once), keeping the newest RECENT_KEPT."""
    settings.setValue(key, [path, *(p for p in recent_paths(settings, key) if p != path)][:RECENT_KEPT])
