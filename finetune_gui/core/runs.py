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
    checkpoints/       step-NNNNNNNN.safetensors + .state.pt + .sha256 (hash manifest), best.* the same
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def write_temp(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write and fsync a temp file next to `path` (removed again if writing fails); returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file so that `path` holds either the old content or the complete new one, never a part."""
    path = Path(path)
    tmp = write_temp(path, write)
    try:
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
#
# A checkpoint is three files: TAG.safetensors (weights), TAG.state.pt (training state, tensors and plain data
# only) and TAG.sha256, a hash manifest in `sha256sum` format naming both. The manifest is written last and
# removed first when a checkpoint is overwritten, so it marks a complete checkpoint: one without it was cut
# off while saving and never counts. Every load checks both files against it, so a truncated or bit-flipped
# file is detected before anything uses it (torch.load alone reads most bit flips in a state file silently).

MANIFEST_SUFFIX = ".sha256"


@dataclass(frozen=True)
class CheckpointInfo:
    weights: Path
    state: Path
    step: int

    @property
    def tag(self) -> str:
        return self.weights.name.removesuffix(".safetensors")

    @property
    def manifest(self) -> Path:
        return self.weights.with_name(self.tag + MANIFEST_SUFFIX)

    @property
    def files(self) -> tuple[Path, Path, Path]:
        return (self.weights, self.state, self.manifest)


def checkpoint_paths(run: RunDir, tag: str) -> CheckpointInfo:
    return CheckpointInfo(run.checkpoints / f"{tag}.safetensors", run.checkpoints / f"{tag}.state.pt", -1)


def step_tag(step: int) -> str:
    return f"step-{step:08d}"


def _step_of(tag: str) -> int | None:
    try:
        return int(tag.split("-", 1)[1]) if tag.startswith("step-") else None
    except (IndexError, ValueError):
        return None


def save_checkpoint(run: RunDir, tag: str, weights: dict[str, Any], state: dict[str, Any]) -> CheckpointInfo:
    """Save weights (safetensors), training state (tensors and plain data only) and their hash manifest.

    All three files are first written in full to temp files, so a full disk or any other write failure
    leaves the previous files of this tag (the best checkpoint is overwritten) untouched. Only then are
    they renamed into place, manifest last; an overwritten tag loses its old manifest first, so a crash
    during the renames leaves no checkpoint that looks complete.
    """
    import torch

    from finetune_gui.core.tensor_files import write_safetensors

    paths = checkpoint_paths(run, tag)
    temps: list[tuple[Path, Path]] = []
    try:
        hashes: list[str] = []
        temps.append((write_temp(paths.weights, lambda f: hashes.append(write_safetensors(f, weights))), paths.weights))
        weights_hash = hashes[-1]
        buf = io.BytesIO()
        torch.save(dict(state, weights_sha256=weights_hash), buf)
        state_bytes = buf.getvalue()
        del buf
        state_hash = hashlib.sha256(state_bytes).hexdigest()
        temps.append((write_temp(paths.state, lambda f: f.write(state_bytes)), paths.state))
        manifest = f"{weights_hash}  {paths.weights.name}\n{state_hash}  {paths.state.name}\n".encode()
        temps.append((write_temp(paths.manifest, lambda f: f.write(manifest)), paths.manifest))
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    with contextlib.suppress(FileNotFoundError):
        paths.manifest.unlink()
    for tmp, final in temps:
        os.replace(tmp, final)
    _fsync_dir(run.checkpoints)
    return CheckpointInfo(paths.weights, paths.state, int(state.get("step", -1)))


def read_manifest(path: Path) -> dict[str, str]:
    """File name -> SHA-256 from a `sha256sum`-format manifest."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.strip().partition("  ")
        if len(digest) == 64 and name:
            out[name.lstrip("*")] = digest.lower()
    return out


def verify_checkpoint(info: CheckpointInfo) -> None:
    """Raise RunStateError unless both files of a checkpoint exist and match its hash manifest."""
    if not info.manifest.exists():
        raise RunStateError(
            f"{info.weights}: checkpoint incomplete (no hash manifest {info.manifest.name}; it was cut off while "
            "saving); an earlier checkpoint is used instead"
        )
    try:
        expected = read_manifest(info.manifest)
    except (OSError, UnicodeDecodeError) as e:
        raise RunStateError(
            f"{info.manifest}: hash manifest unreadable ({e}); the checkpoint cannot be trusted"
        ) from None
    for f in (info.weights, info.state):
        if f.name not in expected:
            raise RunStateError(
                f"{info.manifest}: hash manifest does not list {f.name}; the checkpoint cannot be trusted"
            )
        if not f.exists():
            raise RunStateError(f"{f}: checkpoint incomplete (file missing)")
        if sha256_file(f) != expected[f.name]:
            raise RunStateError(
                f"{f}: checkpoint damaged (SHA-256 differs from {info.manifest.name}: the file was truncated or "
                "changed on disk); use an earlier checkpoint"
            )


def load_checkpoint(info: CheckpointInfo) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check one checkpoint against its hash manifest, then load it: safetensors weights, and a state file
    read with weights_only=True (never unpickled code)."""
    import torch
    from safetensors.torch import load_file

    if not info.state.exists() or not info.weights.exists():
        raise RunStateError(f"{info.weights}: checkpoint incomplete (weights or state file missing)")
    verify_checkpoint(info)
    try:
        state = torch.load(info.state, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable state is the same problem to the user
        raise RunStateError(f"{info.state}: checkpoint state unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise RunStateError(f"{info.state}: checkpoint state is not a dictionary; the file is not a checkpoint")
    expected = state.get("weights_sha256")
    if expected and sha256_file(info.weights) != expected:
        raise RunStateError(f"{info.weights}: checkpoint damaged (hash mismatch); use an earlier checkpoint")
    try:
        weights = load_file(str(info.weights))
    except Exception as e:  # noqa: BLE001
        raise RunStateError(f"{info.weights}: checkpoint weights unreadable ({e})") from None
    return weights, state


def list_checkpoints(run: RunDir) -> list[CheckpointInfo]:
    """Complete step checkpoints (hash manifest written), oldest first. Whether they check out is for
    load_checkpoint to say."""
    found = []
    for manifest in run.checkpoints.glob("step-*" + MANIFEST_SUFFIX):
        tag = manifest.name.removesuffix(MANIFEST_SUFFIX)
        step = _step_of(tag)
        if step is None:
            continue
        info = checkpoint_paths(run, tag)
        found.append(CheckpointInfo(info.weights, info.state, step))
    return sorted(found, key=lambda c: c.step)


def latest_usable_checkpoint(run: RunDir) -> tuple[CheckpointInfo, dict[str, Any], dict[str, Any], list[str]]:
    """Newest checkpoint that loads and checks out; also returns why newer ones were passed over."""
    skipped: list[str] = []
    newest_complete = max((c.step for c in list_checkpoints(run)), default=-1)
    for f in sorted(run.checkpoints.glob("step-*.safetensors")):
        step = _step_of(f.name.removesuffix(".safetensors"))
        if step is not None and step > newest_complete:
            skipped.append(f"{f}: checkpoint incomplete (cut off while saving)")
    for info in reversed(list_checkpoints(run)):
        try:
            weights, state = load_checkpoint(info)
            return info, weights, state, skipped
        except RunStateError as e:
            skipped.append(str(e))
    detail = ("; ".join(skipped)) if skipped else "no checkpoint was saved before it stopped"
    raise RunStateError(f"{run.root}: nothing to resume from ({detail})")


def rotate_checkpoints(run: RunDir, keep_last: int) -> list[Path]:
    """Keep the newest `keep_last` complete step checkpoints; delete older ones and the leftovers of saves
    that were cut off before the newest complete one. The best checkpoint (tag "best") is never touched.

    Call it only after a save has completed: the kept checkpoints then include the new one.
    """
    complete = list_checkpoints(run)
    if keep_last <= 0 or not complete:
        return []
    kept = {c.tag for c in complete[-keep_last:]}
    newest = complete[-1].step
    doomed: dict[str, CheckpointInfo] = {}
    for c in complete[:-keep_last]:
        doomed[c.tag] = c
    for f in run.checkpoints.glob("step-*"):
        tag = f.name.split(".", 1)[0]
        step = _step_of(tag)
        if step is not None and step < newest and tag not in kept and tag not in doomed:
            doomed[tag] = checkpoint_paths(run, tag)  # a save that was cut off
    removed = []
    for info in sorted(doomed.values(), key=lambda c: c.tag):
        for p in (info.manifest, info.state, info.weights):  # manifest first: a half-deleted one no longer counts
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed
