"""A size limit for the feature-cache folder (train.feature_cache_disk_mb): least recently used files go first.

A cache file's modification time is its last use: it is set when the file is written and again whenever a run
reads it (`mark_used`). After a run writes a cache file, `trim_folder` deletes the folder's other cache files
(`*.features`, nothing else), oldest use first, until their total fits the limit; the files the run uses are
never deleted, even when they alone are over it. A file another run still reads may go: that run keeps the
copy it holds (in memory, or mapped: the data stays until it lets go) and computes the features again when it
next opens the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".features"


@dataclass(frozen=True)
class Trimmed:
    """What `trim_folder` did: the files it deleted (name, bytes) and the folder's cache bytes after."""

    removed: list[tuple[str, int]]
    left_bytes: int

    def describe(self, folder: Path, limit_mb: int) -> str | None:
        """The log line ('feature cache: removed ...'), or None when nothing needed saying."""
        over = self.left_bytes > limit_mb * 2**20
        if not self.removed and not over:
            return None
        parts = []
        if self.removed:
            freed = sum(size for _, size in self.removed) / 2**20
            names = ", ".join(name for name, _ in self.removed)
            parts.append(f"removed {len(self.removed)} least recently used file(s) ({freed:.1f} MB): {names}")
        if over:
            parts.append(f"the files this run uses ({self.left_bytes / 2**20:.1f} MB) are above the limit themselves")
        limit = f"train.feature_cache_disk_mb is {limit_mb}"
        return f"feature cache: {'; '.join(parts)} ({folder}, {limit})"


def mark_used(path: Path) -> None:
    """Record a read of a cache file (its modification time becomes now)."""
    try:
        os.utime(path)
    except OSError:  # read-only folder: the file just looks older than it is
        pass


def trim_folder(folder: Path, limit_bytes: int, in_use: set[Path]) -> Trimmed:
    """Delete the least recently used cache files of `folder` until its cache files fit `limit_bytes`; never a
    file in `in_use`. A limit of 0 means no limit."""
    files = []
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            st = path.stat()
        except OSError:  # removed meanwhile (another run trimming)
            continue
        files.append((st.st_mtime_ns, path.name, path, st.st_size))
    total = sum(size for *_, size in files)
    removed: list[tuple[str, int]] = []
    if limit_bytes <= 0:
        return Trimmed(removed, total)
    keep = {p.resolve() for p in in_use}
    for _, name, path, size in sorted(files):
        if total <= limit_bytes:
            break
        if path.resolve() in keep:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError:  # in use elsewhere (Windows) or not ours to delete: leave it
            continue
        total -= size
        removed.append((name, size))
    return Trimmed(removed, total)
