"""Run folders: their layout, status, log and metrics files, and the environment record.

Layout of a run folder::

    config.toml        the config the run was started with
    labels.json        class names in index order (and the task kind)
    environment.json   versions, device, command
    data_problems.json files skipped while reading the data, with reasons
    metrics.jsonl      one line per epoch (and the final test line)
    metrics.csv        the same epoch lines as a table
    steps.jsonl        one line per reported step: train loss, lr, grad norm (so a reopened run plots them)
    log.txt            what the run reported, with times
    status.json        running / completed / stopped / failed, and the latest checkpoint
    checkpoints/       step-NNNNNNNN.safetensors + .state.pt + .sha256 (hash manifest), best.* the same
                       (written and read by core/checkpoints.py)
    model.safetensors  the final weights (best ones if early stopping restored them)
    evaluation.json    test metrics, per-class table, confusion matrix
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_gui.config import RunConfig
from finetune_gui.core.errors import RunStateError
from finetune_gui.files import atomic_write_json, atomic_write_text, clean_temp_files


@dataclass
class RunDir:
    """Paths inside one run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def labels(self) -> Path:
        return self.root / "labels.json"

    @property
    def environment(self) -> Path:
        return self.root / "environment.json"

    @property
    def problems(self) -> Path:
        return self.root / "data_problems.json"

    @property
    def metrics_jsonl(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def steps_jsonl(self) -> Path:
        return self.root / "steps.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def final_weights(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation.json"

    # -- small writers

    def write_status(self, **fields: Any) -> None:
        current = self.read_status()
        current.update(fields, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
        atomic_write_json(self.status, current)

    def read_status(self) -> dict[str, Any]:
        if not self.status.exists():
            return {}
        try:
            return json.loads(self.status.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise RunStateError(f"{self.status}: unreadable run status ({e})") from None

    def log_line(self, text: str) -> None:
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one epoch row to metrics.jsonl and rewrite metrics.csv from it."""
        with open(self.metrics_jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        rows = self.read_metrics()
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.metrics_csv, buf.getvalue())

    def read_metrics(self) -> list[dict[str, Any]]:
        return _read_jsonl(self.metrics_jsonl)

    def append_step(self, step: int, epoch: int, loss: float, lr: float, grad_norm: float) -> None:
        """Append one reported step to steps.jsonl (a value not measured, NaN, is written as null)."""
        row = {"step": step, "epoch": epoch, "loss": loss, "lr": lr, "grad_norm": grad_norm}
        row = {k: (v if math.isfinite(v) else None) for k, v in row.items()}
        with open(self.steps_jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def read_steps(self) -> list[dict[str, Any]]:
        """The step rows, in order; a line cut short by a crash is skipped."""
        return _read_jsonl(self.steps_jsonl)

    def truncate_metrics(self, after_step: int) -> None:
        """Drop epoch and step rows logged after `after_step` (a resumed run redoes them)."""
        for path, rows in ((self.metrics_jsonl, self.read_metrics()), (self.steps_jsonl, self.read_steps())):
            if path.exists():
                kept = [r for r in rows if r.get("step", 0) <= after_step]
                atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):  # a line cut by a crash
                rows.append(json.loads(line))
    return rows


def snapshot_config(config: RunConfig) -> RunConfig:
    """The config as a run folder keeps it: a copy whose file paths are absolute, so it works from anywhere."""
    snap = config.model_copy(deep=True)
    if snap.data.path:
        snap.data.path = str(config.resolve(config.data.path))
    if snap.model.weights_path:
        snap.model.weights_path = str(config.resolve(config.model.weights_path))
    local_model = config.resolve(config.model.name)
    if local_model.exists():
        snap.model.name = str(local_model)
    return snap


def new_run_dir(output_dir: str | Path, name: str) -> RunDir:
    """Make a fresh run folder; never reuses an existing one."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = name if name else "run"
    candidate = output_dir / f"{base}-{stamp}"
    n = 1
    while True:
        try:
            candidate.mkdir(parents=False, exist_ok=False)
            break
        except FileExistsError:
            n += 1
            candidate = output_dir / f"{base}-{stamp}-{n}"
    (candidate / "checkpoints").mkdir()
    return RunDir(candidate)


def open_run_dir(path: str | Path, *, clean: bool = True) -> RunDir:
    """A run folder; `clean` removes temp files left by writes a crash cut off. Only the run's writer cleans:
    a reader (Evaluate, Try it) may open the folder while a run writes into it."""
    root = Path(path)
    rd = RunDir(root)
    if not root.is_dir() or not rd.config.exists():
        raise RunStateError(f"{root}: not a run folder (config.toml missing); pick the folder a run was saved to")
    if clean:
        clean_temp_files(root)
    return rd


def environment_record(device: str) -> dict[str, Any]:
    import torch
    import torchvision
    import transformers

    from finetune_gui import __version__

    return {
        "finetune_gui": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
