"""What `fit` and `resume` return."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | stopped | early-stopped | failed
    best_epoch: int = -1
    val_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    error: Exception | None = None
