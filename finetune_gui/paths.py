"""Paths as people type them."""

from __future__ import annotations

from pathlib import Path


def expand_user(path: str | Path) -> Path:
    """`path` with a leading ~ or ~user expanded to that home folder.

    When there is no such user (or no home), the path is kept as written: it then names a file or folder called
    '~…' and a missing one is reported as missing, instead of the lookup raising RuntimeError.
    """
    p = Path(path)
    try:
        return p.expanduser()
    except (RuntimeError, ValueError):  # ValueError: a NUL byte in the user name
        return p
