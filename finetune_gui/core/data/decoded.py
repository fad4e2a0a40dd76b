"""Decode once: each image is decoded and resized the first time it is read, kept as uint8 pixels in one
N×3×S×S block (in memory, or in a file in the cache folder when it is too big for memory), and read from there
in later epochs; only the random augmentation runs again.

What is kept per split (see augment.build_store_transform): validation and test keep exactly the resized,
centre-cropped picture they are evaluated on, so their tensors equal the decode-every-epoch path's. Training
keeps the same when random crops are off; with random crops it keeps the centre square at 1.14 × the image
size, and the crops are cut from that square (a little less variety at the edges of non-square pictures,
a little less detail in small crops of large pictures; in return the file is decoded once instead of every
epoch).

The block is filled by whichever process reads an image first: in memory it is an anonymous shared mapping
that forked DataLoader workers write into and read from alike; on disk it is a file opened by each process.
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from finetune_gui.config import RunConfig
from finetune_gui.core.data.augment import (
    build_image_transforms,
    build_store_transform,
    build_stored_image_transforms,
    stored_image_size,
)
from finetune_gui.core.data.image_dataset import ImageDataset
from finetune_gui.core.data.image_files import load_rgb

MB = 1_000_000
#: Free space left on the cache folder's disk after the decoded images are written there.
DISK_MARGIN = 2_000 * MB
#: Share of the machine's memory the decoded images may take when data.decode_memory_mb is empty.
MEMORY_SHARE = 0.25


def physical_memory() -> int:
    """Bytes of memory in this machine (8 GB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        try:
            import psutil

            return int(psutil.virtual_memory().total)
        except Exception:  # noqa: BLE001 - no way to ask: assume a modest machine
            return 8_000 * MB


def cache_folder() -> Path:
    """Where decoded images go when they do not fit in memory ($XDG_CACHE_HOME or ~/.cache, finetune-gui)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "finetune-gui" / "decoded"


def _free_bytes(folder: Path) -> int:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return 0


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:  # already gone, or still mapped on Windows: the cache folder can be emptied by hand
        pass


class DecodeStore:
    """n square uint8 RGB images of side `side`, and which of them are filled; in shared memory or in a file
    in `folder` (deleted when the store goes)."""

    def __init__(self, n: int, side: int, folder: Path | None = None):
        self.n, self.side, self.path = n, side, None
        size = max(1, n * 3 * side * side + n)
        if folder is None:
            self._buffer = mmap.mmap(-1, size)  # anonymous and shared: forked workers see each other's writes
        else:
            folder.mkdir(parents=True, exist_ok=True)
            fd, self.path = tempfile.mkstemp(prefix="decoded-", suffix=".u8", dir=folder)
            weakref.finalize(self, _remove, self.path)
            try:
                if hasattr(os, "posix_fallocate"):  # reserve the blocks: a full disk would kill a write to the map
                    os.posix_fallocate(fd, 0, size)
                else:
                    os.ftruncate(fd, size)
                self._buffer = mmap.mmap(fd, size)
            finally:
                os.close(fd)
        self._views()

    def _views(self) -> None:
        flat = np.frombuffer(self._buffer, dtype=np.uint8)
        cut = self.n * 3 * self.side * self.side
        self.pixels = torch.from_numpy(flat[:cut].reshape(self.n, 3, self.side, self.side))
        self.filled = torch.from_numpy(flat[cut : cut + self.n])

    @property
    def nbytes(self) -> int:
        return self.n * 3 * self.side * self.side

    def __getstate__(self) -> dict[str, Any]:
        # only for workers that are spawned rather than forked: a file is reopened, memory is copied
        if self.path is not None:
            return {"n": self.n, "side": self.side, "path": self.path}
        return {"n": self.n, "side": self.side, "pixels": self.pixels.numpy().copy(), "filled": self.filled.numpy()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.n, self.side, self.path = state["n"], state["side"], state.get("path")
        size = max(1, self.n * 3 * self.side * self.side + self.n)
        if self.path is not None:
            with open(self.path, "r+b") as f:
                self._buffer = mmap.mmap(f.fileno(), size)
            self._views()
        else:
            self._buffer = mmap.mmap(-1, size)
            self._views()
            self.pixels.copy_(torch.from_numpy(state["pixels"]))
            self.filled.copy_(torch.from_numpy(state["filled"]))


class DecodedImageDataset(ImageDataset):
    """An ImageDataset whose images are decoded and resized once, on first read, into a DecodeStore.

    `store_transform` makes the kept uint8 tensor from the decoded picture; `transform` (augmentation,
    float conversion, normalisation) runs on it at every read. A file that fails to decode is reported and
    stood in for as in ImageDataset, and tried again at its next read.
    """

    def __init__(
        self,
        paths: list[str],
        targets: list[Any],
        transform: Any,
        target_kind: str,
        num_labels: int,
        *,
        store_transform: Any,
        store: DecodeStore,
    ):
        super().__init__(paths, targets, transform, target_kind, num_labels)
        self.store_transform, self.store = store_transform, store

    def load_image(self, j: int) -> Any:
        if not self.store.filled[j]:
            self.store.pixels[j].copy_(self.store_transform(load_rgb(self.paths[j])))
            self.store.filled[j] = 1
        return tv_tensors.Image(self.store.pixels[j])


@dataclass
class ImagePipeline:
    """How a run reads its images: decoded once into memory or onto disk, or decoded at every read (and why)."""

    config: RunConfig
    image_size: int
    shapes: dict[str, tuple[int, int, int, int]]  # split -> (n, 3, side, side) kept
    where: str  # "memory", "disk" or "off"
    why_off: str = ""
    folder: Path | None = None
    stores: dict[str, DecodeStore] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(int(np.prod(s)) for s in self.shapes.values())

    def dataset(
        self, split: str, paths: list[str], targets: list[Any], target_kind: str, num_labels: int, mean: Any, std: Any
    ) -> ImageDataset:
        """The dataset of one split, reading its images the way this pipeline does."""
        aug, size, train = self.config.augment, self.image_size, split == "train"
        store = None
        if self.where != "off":
            try:
                store = DecodeStore(len(paths), self.shapes[split][2], self.folder if self.where == "disk" else None)
            except OSError as e:  # the disk filled up since the plan, or the folder refuses
                self.where, self.why_off = "off", f"the cache file in {self.folder} could not be made: {e}"
        if store is None:
            transform = build_image_transforms(aug, size, mean, std, train=train)
            return ImageDataset(paths, targets, transform, target_kind, num_labels)
        self.stores[split] = store
        return DecodedImageDataset(
            paths,
            targets,
            build_stored_image_transforms(aug, size, mean, std, train=train),
            target_kind,
            num_labels,
            store_transform=build_store_transform(aug, size, train=train),
            store=store,
        )

    def describe(self) -> str:
        """One line for the run's log."""
        if self.where == "off":
            kept = f"{', '.join(self.stores)} images decoded once into {self.folder}; the others" if self.stores else ""
            return f"{kept or 'images'} decoded at every read ({self.why_off})"
        parts = [f"{name} {' x '.join(map(str, s))}" for name, s in self.shapes.items() if s[0]]
        place = "into memory" if self.where == "memory" else f"into {self.folder}"
        return f"images decoded once {place} ({', '.join(parts)}; {self.nbytes / MB:.0f} MB)"


def plan_image_pipeline(
    config: RunConfig, image_size: int, counts: dict[str, int], *, memory: int | None = None
) -> ImagePipeline:
    """Decide where the decoded images of splits with `counts` images go, within data.decode_memory_mb (or
    a quarter of `memory`, the machine's by default) and data.decode_disk_mb."""
    d, aug = config.data, config.augment
    shapes = {}
    for split, n in counts.items():
        side = stored_image_size(aug, image_size, train=split == "train")
        shapes[split] = (n, 3, side, side)
    plan = ImagePipeline(config, image_size, shapes, "off")
    if d.decode_cache == "off":
        plan.why_off = "data.decode_cache is off"
        return plan
    need = plan.nbytes
    ram = (
        d.decode_memory_mb * MB if d.decode_memory_mb is not None else int(MEMORY_SHARE * (memory or physical_memory()))
    )
    if need <= ram:
        plan.where = "memory"
        return plan
    over = f"decoded they would take {need / MB:.0f} MB, over the memory budget of {ram / MB:.0f} MB"
    disk = d.decode_disk_mb * MB
    folder = cache_folder()
    if need > disk:
        plan.why_off = f"{over} and the disk budget of {disk / MB:.0f} MB (data.decode_memory_mb, data.decode_disk_mb)"
        return plan
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        plan.why_off = f"{over}, and the cache folder {folder} cannot be made ({e.strerror or e})"
        return plan
    free = _free_bytes(folder)
    if need + DISK_MARGIN > free:
        plan.why_off = f"{over}, and {folder} has only {free / MB:.0f} MB free"
        return plan
    plan.where, plan.folder = "disk", folder
    return plan
