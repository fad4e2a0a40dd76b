"""Asking the file system about data files without a traceback: whatever the OS refuses (a name longer than it
allows, no permission, a symbolic link that points at itself, a NUL byte in a name) becomes a plain reason —
a Problem for one file among many, a DataError for the data path itself."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from finetune_gui.core.errors import DataError

NOT_FOUND = "not found"


class UnreadableFile(DataError):
    """A data file the OS would not let us read (one of several files: the reader may skip it)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def os_reason(e: OSError) -> str:
    """'cannot be read (File name too long)' and the like: what the OS said, without errno or path."""
    return f"cannot be read ({e.strerror or type(e).__name__})"


def file_problem(path: str | os.PathLike) -> str | None:
    """None when path names a regular file that can be looked at; else why not, in plain words."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return NOT_FOUND
    except ValueError:  # a NUL byte: no OS accepts it in a name
        return "is not a valid file name (it holds a NUL character)"
    except OSError as e:
        return os_reason(e)
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):  # a pipe or a device: opening it could wait forever
        return "is not a regular file"
    return None


def data_path_is_dir(path: Path) -> bool:
    """Whether the data path is a folder (else a file); DataError when it is missing or cannot be looked at."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(
            f"{path}: data path not found; check data.path (relative paths start at the config file's folder)"
        ) from None
    except ValueError:
        raise DataError(f"{path}: data.path is not a valid file name (it holds a NUL character)") from None
    except OSError as e:
        raise DataError(f"{path}: data path {os_reason(e)}; check data.path and the file's permissions") from None


def list_dir(folder: Path, on_error: Callable[[str, str], None]) -> list[Path]:
    """The entries of folder; [] after on_error(folder, reason) when it cannot be listed."""
    try:
        return list(folder.iterdir())
    except OSError as e:
        on_error(str(folder), os_reason(e))
        return []


def is_dir(path: Path, on_error: Callable[[str, str], None]) -> bool:
    """Whether path is a folder; False after on_error(path, reason) when the OS will not say."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        on_error(str(path), os_reason(e))
        return False


def _dot(name: str) -> bool:
    return name.startswith(".")


def folder_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, the same whichever link leads to it; None when the OS will not say."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def walk_files(
    folder: Path,
    on_error: Callable[[str, str], None],
    hidden: Callable[[str], bool] = _dot,
    seen: set | None = None,
):
    """(folder, file names) of every folder under folder, links followed, sorted, hidden names left out;
    a folder that cannot be listed is passed to on_error and skipped, and so is a link to a folder listed
    already (a link to a parent would otherwise list the same images again and again). Walks that share
    `seen` (folders listed so far) list each folder once between them."""

    def failed(e: OSError) -> None:
        on_error(str(e.filename or folder), os_reason(e))

    def listed_already(path: str) -> bool:
        key = folder_identity(path)
        if key is not None and key in seen:
            on_error(path, f"a link to {os.path.realpath(path)}, a folder listed already; its files count once")
            return True
        seen.add(key)
        return False

    seen = set() if seen is None else seen
    if listed_already(str(folder)):
        return
    for dirpath, dirnames, filenames in os.walk(folder, onerror=failed, followlinks=True):
        dirnames[:] = [d for d in sorted(dirnames) if not hidden(d) and not listed_already(os.path.join(dirpath, d))]
        yield Path(dirpath), sorted(f for f in filenames if not hidden(f))
