"""What an export reports: one FormatResult per format and the ExportReport around them. No torch here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FormatResult:
    """One exported artefact checked against the trained (eager) model.

    max_abs_diff: the largest |exported - eager| over every output of every checked batch (inf when the
    artefact could not be made or loaded). top1_agreement: share of samples whose highest-scoring class is
    the same (None for regression and language models, where it means nothing). batch_sizes: the batch sizes
    checked. passed: within the format's tolerance. message: what happened, in words.
    """

    format: str
    path: Path | None
    max_abs_diff: float
    top1_agreement: float | None
    batch_sizes: list[int]
    passed: bool
    message: str
    rtol: float = 0.0
    atol: float = 0.0
    seconds: float = 0.0
    details: str = ""  # a traceback when an exporter itself broke (a bug, not the user's doing)
    size_bytes: int | None = None  # the artefact on disk (a folder: all its files)
    ms: float | None = None  # ONNX formats: median time of one call at the largest verification batch
    eager_ms: float | None = None  # the trained PyTorch model on the same batch, timed alongside
    agreement: dict[str, Any] | None = None  # int8: top-1 agreement and accuracies (core/export/int8.py)

    @property
    def speedup(self) -> float | None:
        """Eager time / artefact time (above 1: the artefact is faster), when both were timed."""
        return self.eager_ms / self.ms if self.ms and self.eager_ms else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = self.path.name if self.path is not None else None
        d["max_abs_diff"] = self.max_abs_diff if math.isfinite(self.max_abs_diff) else None
        return d


@dataclass
class ExportReport:
    """The export folder and one result per format; `ok` when every format was made and verified."""

    folder: Path
    results: list[FormatResult] = field(default_factory=list)
    run_dir: Path | None = None
    task: str = ""
    samples: str = ""  # which samples were checked, in words
    merge: dict[str, Any] | None = None  # LoRA runs: the merged model against the trained one (see verify.py)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def table(self) -> str:
        """The verification table as plain text (the CLI prints it)."""
        rows = [("format", "max abs diff", "top-1 agree", "batches", "size", "vs eager", "result")]
        for r in self.results:
            diff = f"{r.max_abs_diff:.2e}" if math.isfinite(r.max_abs_diff) else "-"
            top1 = f"{r.top1_agreement:.1%}" if r.top1_agreement is not None else "n/a"
            rows.append(
                (
                    r.format,
                    diff,
                    top1,
                    ",".join(map(str, r.batch_sizes)) or "-",
                    human_size(r.size_bytes),
                    speed_text(r),
                    "pass" if r.passed else "FAIL",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [f"{r.format}: {r.message}" for r in self.results]
        if any(r.speedup is not None for r in self.results):
            notes.append(
                "vs eager: the trained PyTorch model's time / the file's time at the largest verification batch "
                "on this machine (above 1x: faster); a few calls, so a rough figure"
            )
        if self.merge is not None:
            notes.append(self.merge["message"])
        return "\n".join(lines + [""] + notes)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run": str(self.run_dir) if self.run_dir else None,
            "task": self.task,
            "samples": self.samples,
            "lora_merge": self.merge,
            "results": [r.to_json() for r in self.results],
        }


def human_size(size: int | None) -> str:
    """1.2 MB, 340 kB, "-" when unknown."""
    if size is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def speed_text(result: FormatResult) -> str:
    """ "2.9x" (eager time / artefact time) or "-" when the format was not timed."""
    return f"{result.speedup:.2g}x" if result.speedup is not None else "-"
