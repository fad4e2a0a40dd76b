"""Checkpoints in a run folder: save, verify, load, list, pick the newest usable one, and rotate.

A checkpoint is three files: TAG.safetensors (weights), TAG.state.pt (training state, tensors and plain data
only) and TAG.sha256, a hash manifest in `sha256sum` format naming both. The manifest is written last and
removed first when a checkpoint is overwritten, so it marks a complete checkpoint: one without it was cut off
while saving and never counts. Every load checks both files against it, so a truncated or bit-flipped file is
detected before anything uses it (torch.load alone reads most bit flips in a state file silently).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import RunStateError
from finetune_gui.core.runs import RunDir
from finetune_gui.files import fsync_dir, sha256_file, write_temp

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
    fsync_dir(run.checkpoints)
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
