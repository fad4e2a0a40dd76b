"""What an export table says besides correctness: each file's size, and how fast the ONNX files run against the
trained PyTorch model on this machine (a rough figure from a few calls; benchmarks/export_latency.py measures it
properly)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

#: Formats whose speed is reported (they run in another engine than PyTorch's).
TIMED = ("onnx", "onnx-int8")
REPEATS = 3


def size_on_disk(path: Path) -> int | None:
    """Bytes of a file (with its .data file of external weights), or of every file in a folder; None if absent."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if not path.is_file():
        return None
    extra = path.with_name(path.name + ".data")
    return path.stat().st_size + (extra.stat().st_size if extra.is_file() else 0)


def median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median milliseconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def against_eager(run: Callable[..., torch.Tensor], source) -> tuple[float, float]:
    """(artefact ms, eager ms) on the largest verification batch, timed alternately in this process."""
    batch = source.batches[-1]
    with torch.no_grad():
        eager = median_ms(lambda: source.deployable(*batch))
        artefact = median_ms(lambda: run(*batch))
    return round(artefact, 3), round(eager, 3)
