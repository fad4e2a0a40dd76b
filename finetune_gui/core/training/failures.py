"""What a failed run tells the user: a full disk, running out of memory, and which checkpoint is left."""

from __future__ import annotations

import errno
from collections.abc import Callable

from finetune_gui.config import RunConfig
from finetune_gui.core.checkpoints import list_checkpoints
from finetune_gui.core.errors import OutOfMemory, StorageError
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training.events import LogMessage
from finetune_gui.core.training.prepare import Prepared

STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def last_checkpoint_note(run: RunDir, diverged: bool = False) -> str:
    """One sentence on the newest complete checkpoint a failed run left, and how to go on from it."""
    try:
        complete = list_checkpoints(run)
    except OSError:
        complete = []
    if diverged:
        if not complete:
            return "No checkpoint was saved before it diverged."
        return f"The last finite checkpoint is checkpoints/{complete[-1].weights.name}."
    if not complete:
        return "No checkpoint was complete yet, so the run cannot be resumed; start it again."
    return (
        f"The last complete checkpoint, checkpoints/{complete[-1].weights.name}, is intact: "
        f"`finetune-gui resume {run.root}` continues from it."
    )


def storage_error(e: OSError, run: RunDir) -> StorageError:
    """The StorageError for a write that failed for lack of space or a read-only disk."""
    what = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "the file is larger than this file system or process allows",
        errno.EROFS: "the disk is read-only",
    }.get(e.errno or 0, e.strerror or str(e))
    where = f" ({e.filename})" if e.filename else ""
    return StorageError(
        f"cannot write to the run folder {run.root}: {what}{where}. Free some space (checkpoints of this model "
        f"need about {_checkpoint_size_note(run)}) or set checkpoint.output_dir to another disk. "
        + last_checkpoint_note(run)
    )


def _checkpoint_size_note(run: RunDir) -> str:
    sizes = []
    for info in list_checkpoints(run)[-1:]:
        for f in (info.weights, info.state):
            try:
                sizes.append(f.stat().st_size)
            except OSError:
                pass
    return f"{sum(sizes) / 2**20:.0f} MB each" if sizes else "as much as the model's weights, twice over"


def out_of_memory(config: RunConfig, p: Prepared | None, say: Callable[[LogMessage], None]) -> OutOfMemory:
    """The OOM message, with a batch size that fits found by trying smaller steps on the run's own model."""
    bs = config.train.batch_size
    what = f"the device ran out of memory at batch size {bs}"
    shrink = "a smaller data.image_size or data.max_length, or freezing more of the model (model.freeze)"
    if p is None or bs <= 1:
        return OutOfMemory(
            f"{what}; try {'train.batch_size = ' + str(max(1, bs // 2)) + ' or ' if bs > 1 else ''}{shrink}"
        )
    from finetune_gui.core.training.batch_size import search_with

    say(LogMessage("info", f"{what}; trying smaller batches to find one that fits"))
    try:
        found = search_with(p, start=max(1, bs // 2), max_batch_size=bs - 1, max_trials=6)
    except OutOfMemory as e:
        return OutOfMemory(f"{what}; {e}")
    except Exception:  # noqa: BLE001 - the suggestion is a bonus; the plain one below still helps
        return OutOfMemory(f"{what}; try train.batch_size = {bs // 2} or {shrink}")
    tried = ", ".join(f"{n} {'fits' if ok else 'does not'}" for n, ok in found.tried)
    return OutOfMemory(
        f"{what}; batch size {found.batch_size} fits ({tried}): set train.batch_size = "
        f"{found.batch_size} and start again (or `finetune-gui find-batch-size` to search upwards too)"
    )
