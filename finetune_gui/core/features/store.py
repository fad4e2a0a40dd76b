"""Feature cache files: named tensors behind a self-checking trailer, written atomically, read into memory or
memory-mapped.

Layout: the tensors' bytes one after another, then a JSON header (the cache key, each tensor's dtype, shape and
offset, the SHA-256 of the payload), then 8 bytes holding the header's length and the magic `FGFEAT01`. The
payload streams out batch by batch, so a cache larger than memory never has to sit in memory while written.
A file whose magic, length, key or hash does not match is reported as damaged and rebuilt by the caller.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from finetune_gui.files import atomic_write

MAGIC = b"FGFEAT01"
TRAILER = struct.Struct("<Q8s")  # header length, magic


class DamagedCache(Exception):
    """A cache file that cannot be trusted: its message says why."""


@dataclass(frozen=True)
class Stored:
    """The tensors of one cache file, in memory or memory-mapped, and how they are held."""

    tensors: dict[str, torch.Tensor]
    mapped: bool
    nbytes: int


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class TensorWriter:
    """Appends tensors' rows to named streams while the payload is written; see `write_cache`."""

    def __init__(self, f: io.BufferedWriter):
        self.f, self.digest, self.offset = f, hashlib.sha256(), 0
        self.entries: dict[str, dict] = {}
        self.current: str | None = None

    def add(self, name: str, rows: torch.Tensor) -> None:
        """Append `rows` (first dimension = samples) to the tensor `name`; one tensor is written at a time."""
        rows = rows.detach().contiguous().cpu()
        entry = self.entries.get(name)
        if entry is None:
            if self.current is not None and self.current != name:
                self.entries[self.current]["done"] = True
            pad = -self.offset % 64  # every tensor starts aligned, so any dtype can view its bytes
            self.f.write(b"\0" * pad)
            self.digest.update(b"\0" * pad)
            self.offset += pad
            entry = self.entries[name] = {"dtype": _dtype_name(rows.dtype), "shape": [0, *rows.shape[1:]],
                                          "offset": self.offset, "done": False}  # fmt: skip
            self.current = name
        if entry["done"] or self.current != name:
            raise ValueError(f"tensor '{name}' was already finished")
        if list(rows.shape[1:]) != entry["shape"][1:] or _dtype_name(rows.dtype) != entry["dtype"]:
            raise ValueError(f"tensor '{name}': rows of shape {tuple(rows.shape)} do not match the earlier ones")
        data = rows.view(torch.uint8).numpy().tobytes() if rows.numel() else b""
        self.f.write(data)
        self.digest.update(data)
        self.offset += len(data)
        entry["shape"][0] += rows.shape[0]


def write_cache(path: Path, key: str, fill: Callable[[TensorWriter], dict | None]) -> Path:
    """Write a cache file atomically: `fill(writer)` adds the tensors (and may return extra header info)."""

    def write(f: io.BufferedWriter) -> None:
        writer = TensorWriter(f)
        extra = fill(writer) or {}
        tensors = {n: {k: v for k, v in e.items() if k != "done"} for n, e in writer.entries.items()}
        header = json.dumps(
            {
                "key": key,
                "tensors": tensors,
                "payload_bytes": writer.offset,
                "sha256": writer.digest.hexdigest(),
                **extra,
            }  # fmt: skip
        ).encode("utf-8")
        f.write(header)
        f.write(TRAILER.pack(len(header), MAGIC))

    return atomic_write(path, write)


def read_header(path: Path) -> dict:
    """The header of a cache file; DamagedCache when the file is cut short or not a cache file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if size < TRAILER.size:
                raise DamagedCache(f"{path.name} is {size} bytes, too short to be a feature cache")
            f.seek(size - TRAILER.size)
            length, magic = TRAILER.unpack(f.read(TRAILER.size))
            if magic != MAGIC or length > size - TRAILER.size:
                raise DamagedCache(f"{path.name} does not end like a feature cache (cut short or overwritten)")
            f.seek(size - TRAILER.size - length)
            header = json.loads(f.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedCache(f"{path.name}: its header cannot be read ({e})") from None
    if header.get("payload_bytes") != size - TRAILER.size - length:
        raise DamagedCache(f"{path.name}: its size does not match its header (cut short or padded)")
    return header


def _payload_chunks(path: Path, nbytes: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        left = nbytes
        while left > 0:
            chunk = f.read(min(left, 1 << 22))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def open_cache(path: Path, key: str, ram_bytes: int) -> Stored:
    """The tensors of a cache file, after checking its key and the hash of its bytes; in memory when they fit
    `ram_bytes`, memory-mapped otherwise. DamagedCache when the file cannot be trusted; KeyError on another key."""
    header = read_header(path)
    if header.get("key") != key:
        raise KeyError(key)
    nbytes = int(header["payload_bytes"])
    digest = hashlib.sha256()
    for chunk in _payload_chunks(path, nbytes):
        digest.update(chunk)
    if digest.hexdigest() != header.get("sha256"):
        raise DamagedCache(f"{path.name}: its contents do not match their checksum")
    mapped = nbytes > ram_bytes
    if mapped:
        # copy-on-write: pages are read when touched and never written back; writable, so torch does not warn
        raw = np.memmap(path, dtype=np.uint8, mode="c", shape=(nbytes,)) if nbytes else np.zeros(0, np.uint8)
    else:
        raw = np.fromfile(path, dtype=np.uint8, count=nbytes)
    tensors = {}
    for name, e in header["tensors"].items():
        dtype = getattr(torch, e["dtype"])
        count = int(np.prod(e["shape"])) * torch.empty(0, dtype=dtype).element_size()
        part = torch.from_numpy(raw[e["offset"] : e["offset"] + count])
        tensors[name] = part.view(dtype).reshape(e["shape"]) if count else torch.empty(e["shape"], dtype=dtype)
    return Stored(tensors, mapped, nbytes)
