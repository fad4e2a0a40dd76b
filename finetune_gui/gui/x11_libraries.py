"""Can Qt open a window on this Linux desktop? Qt's X11 plugin needs system libraries that pip cannot install
(libxcb-cursor0 and friends); without one, Qt aborts the process with a terse message. This check names the
missing libraries and the packages that hold them, before any Qt application is made.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)
_SONAME = re.compile(r"^(?P<stem>.+)\.so\.(?P<version>\d+)")


def xcb_plugin() -> Path | None:
    """The installed binding's X11 platform plugin, or None where it has none (macOS, Windows, some bundles)."""
    import PySide6  # the package only: no Qt library is loaded

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def missing_libraries(library: Path, ldd: str = "ldd") -> list[str]:
    """The shared libraries `library` needs, directly or not, that the dynamic linker cannot find ([] if ldd fails)."""
    try:
        out = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(_NOT_FOUND.findall(out)))


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships `soname`, by Debian's naming rule: libxcb-cursor.so.0 → libxcb-cursor0,
    libxkbcommon-x11.so.0 → libxkbcommon-x11-0 (a dash where the name ends in a digit)."""
    m = _SONAME.match(soname)
    if m is None:
        return soname
    stem = m["stem"].lower()
    return f"{stem}{'-' if stem[-1].isdigit() else ''}{m['version']}"


def uses_x11(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether Qt will open its windows through X11 here."""
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not (env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland")


def x11_problem(
    env: Mapping[str, str] = os.environ, platform: str = sys.platform, plugin: Path | None = None, ldd: str = "ldd"
) -> str | None:
    """What stops Qt opening a window on this X11 desktop, with the command that fixes it; None if nothing does."""
    if not uses_x11(env, platform):
        return None
    plugin = plugin or xcb_plugin()
    missing = missing_libraries(plugin, ldd) if plugin is not None else []
    if not missing:
        return None
    packages = " ".join(debian_package(name) for name in missing)
    return (
        f"Qt cannot open a window: its X11 plugin needs {', '.join(missing)}, which this system lacks. "
        f"On Debian or Ubuntu: sudo apt-get install {packages} (elsewhere, the packages that provide those "
        "files). Training without a window works as it is: finetune-gui train <preset>."
    )
