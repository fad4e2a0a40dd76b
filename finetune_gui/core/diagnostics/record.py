"""What the checks read: the run's logged steps, the probes taken on them, its epochs and facts about its
data and model. Plain numbers only, so it is saved as diagnostics.json and read back as it was."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORD_VERSION = 1
FILE_NAME = "diagnostics.json"


@dataclass
class StepRow:
    step: int
    epoch: int  # 0-based
    loss: float
    lr: float
    grad_norm: float  # NaN where not measured


@dataclass
class ProbeRow:
    """Probes of one logged step: the size of the update against the weights, the gradient per block (RMS),
    and the share of zero outputs per ReLU-family layer (on the step's batch)."""

    step: int
    update_ratio: float = float("nan")  # ||Δw|| / ||w|| over the trainable weights
    block_grad: list[float] = field(default_factory=list)  # in `RunRecord.blocks` order; NaN = no gradient
    dead: dict[str, float] = field(default_factory=dict)


@dataclass
class RunRecord:
    task: str = ""
    labels: list[str] = field(default_factory=list)
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> label -> samples
    duplicates: dict[str, int] = field(default_factory=dict)  # "train/val" -> identical samples in both
    model_kind: str = ""  # vision | hf-sequence | hf-causal
    lora: bool = False
    random_init: bool = False
    freeze: str = ""
    trainable_params: int = 0
    total_params: int = 0
    early_stopping: bool = False
    patience: int = 0
    lr: float = 0.0
    suggested_lr: float | None = None
    blocks: list[str] = field(default_factory=list)  # the backbone's blocks, input side first, then the head's
    head_blocks: int = 0  # how many of `blocks` (at the end) are the head
    steps: list[StepRow] = field(default_factory=list)
    probes: list[ProbeRow] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)  # epoch (1-based), step, elapsed_s, metrics
    frozen_bn_drift: float = 0.0  # largest change of a frozen BatchNorm's running statistics
    stopped_early: bool = False
    class_weights: str = "none"
    support: dict[str, int] = field(default_factory=dict)  # test samples per class (final evaluation)
    predicted: dict[str, int] = field(default_factory=dict)  # test predictions per class

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (a NaN becomes null)."""
        return json_safe({"version": RECORD_VERSION, **asdict(self)})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        data["steps"] = [StepRow(**_nan_for_null(r)) for r in data.get("steps", [])]
        data["probes"] = [
            ProbeRow(**{**_nan_for_null(r), "block_grad": [_nan(v) for v in r.get("block_grad", [])]})
            for r in data.get("probes", [])
        ]
        return cls(**data)

    @property
    def majority_rate(self) -> float | None:
        """The accuracy of always answering the most common training class (None without class counts)."""
        counts = self.class_counts.get("train", {})
        total = sum(counts.values())
        return max(counts.values()) / total if total else None


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, as standard JSON needs."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _nan(value: Any) -> Any:
    return float("nan") if value is None else value


def _nan_for_null(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _nan(v) if k in ("loss", "lr", "grad_norm", "update_ratio") else v for k, v in row.items()}


def read_diagnostics(run_dir: str | Path) -> tuple[RunRecord, list[dict[str, Any]]]:
    """The record and the findings saved in a run folder's diagnostics.json."""
    data = json.loads((Path(run_dir) / FILE_NAME).read_text(encoding="utf-8"))
    return RunRecord.from_dict(data.get("record", {})), list(data.get("findings", []))


def read_record(run_dir: str | Path) -> RunRecord:
    """A run folder's saved record; RunStateError saying why when there is none or it cannot be read."""
    from finetune_gui.core.errors import RunStateError

    path = Path(run_dir)
    try:
        record, _ = read_diagnostics(path)
    except FileNotFoundError:
        raise RunStateError(_why_no_record(path)) from None
    except (OSError, ValueError, TypeError) as e:
        raise RunStateError(f"{path / FILE_NAME} cannot be read: {e}") from None
    return record


def _why_no_record(path: Path) -> str:
    """Why a run folder has no diagnostics.json: it failed before its first step, is older, or is no run."""
    try:
        status = json.loads((path / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = None
    if isinstance(status, dict) and status.get("state") in ("failed", "diverged") and not status.get("step"):
        said = f": {status['message']}" if status.get("message") else ""
        return f"{path}: the run failed before its first step, so there is nothing to diagnose{said}"
    if isinstance(status, dict):
        return (f"{path}: no {FILE_NAME} here; runs trained before diagnostics existed have none. "
                "`finetune-gui compare` and the Runs page still show its metrics.")  # fmt: skip
    return f"{path}: no {FILE_NAME} and no status.json here; check the folder is a run folder."
