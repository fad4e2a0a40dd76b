"""Run folders: layout, atomic writes, checkpoints with rotation, and the environment record.

Layout of a run folder::

    config.toml        the config the run was started with
    labels.json        class names in index order (and the task kind)
    environment.json   versions, device, command
    data_problems.json files skipped while reading the data, with reasons
    metrics.jsonl      one line per epoch (and the final test line)
    metrics.csv        the same epoch lines as a table
    log.txt            what the run reported, with times
    status.json        running / completed / stopped / failed, and the latest checkpoint
    checkpoints/       step-NNNNNNNN.safetensors + step-NNNNNNNN.state.pt, best.*
    model.safetensors  the final weights (best ones if early stopping restored them)
    evaluation.json    test metrics, per-class table, confusion matrix
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from finetune_gui.core.errors import RunStateError

TMP_PREFIX = ".tmp-"


# ---------------------------------------------------------------- atomic writes


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file so that `path` holds either the old content or the complete new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def clean_temp_files(folder: str | Path) -> list[Path]:
    """Remove temp files left by an interrupted atomic write; returns what was removed."""
    removed = []
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.rglob(TMP_PREFIX + "*"):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- run folder


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
        if not self.metrics_jsonl.exists():
            return []
        rows = []
        for line in self.metrics_jsonl.read_text(encoding="utf-8").splitlines():
            if line.strip():
                with contextlib.suppress(json.JSONDecodeError):  # a line cut by a crash
                    rows.append(json.loads(line))
        return rows

    def truncate_metrics(self, after_step: int) -> None:
        """Drop metric rows logged after `after_step` (their epochs are redone on resume)."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= after_step]
        atomic_write_text(self.metrics_jsonl, "".join(json.dumps(r) + "\n" for r in rows))


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


def open_run_dir(path: str | Path) -> RunDir:
    root = Path(path)
    rd = RunDir(root)
    if not root.is_dir() or not rd.config.exists():
        raise RunStateError(f"{root}: not a run folder (config.toml missing); pick the folder a run was saved to")
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


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class CheckpointInfo:
    weights: Path
    state: Path
    step: int


def checkpoint_paths(run: RunDir, tag: str) -> CheckpointInfo:
    return CheckpointInfo(run.checkpoints / f"{tag}.safetensors", run.checkpoints / f"{tag}.state.pt", -1)


def step_tag(step: int) -> str:
    return f"step-{step:08d}"


def save_checkpoint(run: RunDir, tag: str, weights: dict[str, Any], state: dict[str, Any]) -> CheckpointInfo:
    """Save weights (safetensors) and training state (tensors and plain data only) atomically.

    The weights are written first and the state second: a checkpoint counts only once its state file
    exists, and the state records the weights' hash, so a crash in between leaves nothing usable-looking.
    """
    import torch
    from safetensors.torch import save

    paths = checkpoint_paths(run, tag)
    contiguous = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    atomic_write_bytes(paths.weights, save(contiguous))
    state = dict(state, weights_sha256=sha256_file(paths.weights))
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(paths.state, buf.getvalue())
    return CheckpointInfo(paths.weights, paths.state, int(state.get("step", -1)))


def load_checkpoint(info: CheckpointInfo) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load and check one checkpoint: safetensors weights and a state file read with weights_only=True."""
    import torch
    from safetensors.torch import load_file

    if not info.state.exists() or not info.weights.exists():
        raise RunStateError(f"{info.weights}: checkpoint incomplete (weights or state file missing)")
    try:
        state = torch.load(info.state, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable state is the same problem to the user
        raise RunStateError(f"{info.state}: checkpoint state unreadable ({type(e).__name__}: {e})") from None
    expected = state.get("weights_sha256")
    if expected and sha256_file(info.weights) != expected:
        raise RunStateError(f"{info.weights}: checkpoint damaged (hash mismatch); use an earlier checkpoint")
    try:
        weights = load_file(str(info.weights))
    except Exception as e:  # noqa: BLE001
        raise RunStateError(f"{info.weights}: checkpoint weights unreadable ({e})") from None
    return weights, state


def list_checkpoints(run: RunDir) -> list[CheckpointInfo]:
    """Step checkpoints whose state file exists, oldest first."""
    found = []
    for state in run.checkpoints.glob("step-*.state.pt"):
        tag = state.name.removesuffix(".state.pt")
        try:
            step = int(tag.split("-")[1])
        except (IndexError, ValueError):
            continue
        weights = run.checkpoints / f"{tag}.safetensors"
        if weights.exists():
            found.append(CheckpointInfo(weights, state, step))
    return sorted(found, key=lambda c: c.step)


def latest_usable_checkpoint(run: RunDir) -> tuple[CheckpointInfo, dict[str, Any], dict[str, Any], list[str]]:
    """Newest checkpoint that loads and checks out; also returns why newer ones were passed over."""
    skipped: list[str] = []
    for info in reversed(list_checkpoints(run)):
        try:
            weights, state = load_checkpoint(info)
            return info, weights, state, skipped
        except RunStateError as e:
            skipped.append(str(e))
    detail = ("; ".join(skipped)) if skipped else "no checkpoint was saved before it stopped"
    raise RunStateError(f"{run.root}: nothing to resume from ({detail})")


def rotate_checkpoints(run: RunDir, keep_last: int) -> list[Path]:
    """Delete step checkpoints beyond the newest `keep_last`. The best checkpoint is kept separately."""
    removed = []
    for info in list_checkpoints(run)[:-keep_last] if keep_last > 0 else []:
        for p in (info.state, info.weights):  # state first: a half-deleted one no longer counts
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed
