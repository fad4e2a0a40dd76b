"""Write tensors as a safetensors file piece by piece, so other threads keep running while it is written.

``safetensors.torch.save`` builds the whole file in memory while holding the GIL (~50 ms for a ResNet-18 on
2 cores): long enough to stall the GUI's event loop at every checkpoint. Here each tensor's bytes go to the
file (and the hash) straight from the tensor's memory, and both release the GIL. The output is a standard
safetensors file; ``safetensors.torch.load_file`` reads it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import struct
import sys
from typing import IO

import torch

_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _raw_bytes(t: torch.Tensor) -> memoryview:
    flat = t.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


def write_safetensors(f: IO[bytes], tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> str:
    """Write `tensors` (and string `metadata`) to the open binary file `f`; returns the SHA-256 of what was written.

    Tensors of other dtypes than the common float/int/bool ones go through safetensors' own writer.
    """
    if sys.byteorder != "little" or any(t.dtype not in _DTYPES for t in tensors.values()):
        from safetensors.torch import save

        data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
        f.write(data)
        return hashlib.sha256(data).hexdigest()
    # widest dtypes first keeps every tensor aligned to its element size, as safetensors' own writer does
    names = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name in names:
        t = tensors[name]
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    digest = hashlib.sha256()
    pieces = itertools.chain((struct.pack("<Q", len(encoded)), encoded), (_raw_bytes(tensors[n]) for n in names))
    for piece in pieces:  # one tensor at a time: a GPU model is not copied to the CPU all at once
        f.write(piece)
        digest.update(piece)
    return digest.hexdigest()
