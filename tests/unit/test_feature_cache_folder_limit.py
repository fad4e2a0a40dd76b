"""The feature-cache folder's size limit: the least recently used cache files go first until the folder fits,
never a file in use and never a file that is not a cache file; a read marks a file as used."""

from __future__ import annotations

import os
from pathlib import Path

from finetune_gui.core.features.folder_limit import Trimmed, mark_used, trim_folder


def _file(folder: Path, name: str, size: int, used: int) -> Path:
    path = folder / name
    path.write_bytes(b"x" * size)
    os.utime(path, (used, used))
    return path


def test_the_least_recently_used_files_go_first_until_the_folder_fits(tmp_path):
    old = _file(tmp_path, "train-old.features", 400, used=1_000)
    middle = _file(tmp_path, "val-middle.features", 400, used=2_000)
    new = _file(tmp_path, "train-new.features", 400, used=3_000)
    trimmed = trim_folder(tmp_path, 800, in_use={new})
    assert trimmed == Trimmed([("train-old.features", 400)], 800)
    assert not old.exists() and middle.exists() and new.exists()


def test_a_file_in_use_stays_even_when_it_is_the_oldest_or_alone_over_the_limit(tmp_path):
    in_use = _file(tmp_path, "train-a.features", 500, used=1_000)
    other = _file(tmp_path, "val-b.features", 500, used=2_000)
    trimmed = trim_folder(tmp_path, 100, in_use={in_use})
    assert in_use.exists() and not other.exists()
    assert trimmed.left_bytes == 500
    line = trimmed.describe(tmp_path, 0)
    assert "removed 1 least recently used file(s)" in line and "val-b.features" in line
    assert "the files this run uses (0.0 MB) are above the limit themselves" in line


def test_files_that_are_not_cache_files_are_neither_counted_nor_deleted(tmp_path):
    notes = _file(tmp_path, "notes.txt", 10_000, used=1)
    partial = _file(tmp_path, ".tmp-train-x.features.abc123", 10_000, used=1)  # a write in progress
    cache = _file(tmp_path, "train-x.features", 300, used=5)
    assert trim_folder(tmp_path, 300, in_use=set()) == Trimmed([], 300)
    assert notes.exists() and partial.exists() and cache.exists()


def test_a_limit_of_zero_deletes_nothing(tmp_path):
    files = [_file(tmp_path, f"train-{i}.features", 1000, used=i + 1) for i in range(3)]
    assert trim_folder(tmp_path, 0, in_use=set()).removed == []
    assert all(f.exists() for f in files)
    assert Trimmed([], 3000).describe(tmp_path, 1) is None  # 3000 bytes fit 1 MB: nothing to say


def test_a_read_marks_a_file_as_the_most_recently_used(tmp_path):
    read = _file(tmp_path, "train-read.features", 400, used=1_000)
    unread = _file(tmp_path, "train-unread.features", 400, used=2_000)
    mark_used(read)
    trim_folder(tmp_path, 400, in_use=set())
    assert read.exists() and not unread.exists()
