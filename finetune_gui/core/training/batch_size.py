"""The batch-size finder: the largest batch that fits in the device's memory, found by trying real steps.

Each trial runs one full training step (forward, backward, optimiser step, so the optimiser's state counts
too) on a batch of real training samples. From the starting size it doubles while steps fit, halves while they
run out of memory, then bisects between the largest size that fitted and the smallest that did not (the way
accelerate's `find_executable_batch_size` backs off, plus the search upwards). The model is thrown away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from finetune_gui.config import RunConfig
from finetune_gui.core import devices
from finetune_gui.core.errors import OutOfMemory
from finetune_gui.core.training.events import RunControl

MAX_BATCH_SIZE = 4096  # train.batch_size's own limit


@dataclass
class BatchSizeResult:
    batch_size: int  # the largest size that fitted
    tried: list[tuple[int, bool]] = field(default_factory=list)  # (size, fitted) in the order tried
    limit: str = ""  # why the search stopped going up: "memory", "data" or "cap"

    @property
    def reason(self) -> str:
        why = {
            "memory": "the next size up ran out of memory",
            "data": "the training split has no more samples for a bigger batch",
            "cap": "the largest size searched",
        }.get(self.limit, "")
        return f"batch size {self.batch_size} fits; {why}" if why else f"batch size {self.batch_size} fits"


def search_batch_size(
    fits: Callable[[int], bool], start: int, upper: int, max_trials: int = 16, control: RunControl | None = None
) -> BatchSizeResult:
    """The largest size in [1, upper] for which `fits(size)` holds, assuming that smaller sizes fit whenever a
    larger one does. Raises OutOfMemory when not even 1 fits."""
    upper = max(1, upper)
    size = min(max(1, start), upper)
    tried: list[tuple[int, bool]] = []
    good, bad = 0, upper + 1  # largest known to fit, smallest known not to

    def trial(n: int) -> bool:
        if control is not None and control.stop_requested:
            raise OutOfMemory("the batch-size search was stopped before it found a size")
        ok = fits(n)
        tried.append((n, ok))
        return ok

    while len(tried) < max_trials:
        if trial(size):
            good = size
            if size >= upper:
                break
            size = min(size * 2, upper) if bad > upper else (good + bad) // 2
        else:
            bad = size
            if size == 1:
                raise OutOfMemory(
                    "even a batch of 1 sample does not fit in memory; use a smaller data.image_size "
                    "or data.max_length, a smaller model, or freeze more of it (model.freeze)"
                )
            size = max(1, size // 2) if good == 0 else (good + bad) // 2
        if good and bad - good <= 1:
            break
    if good == 0:
        raise OutOfMemory(f"no batch size fitted in {len(tried)} tries ({', '.join(str(n) for n, _ in tried)})")
    limit = "memory" if bad <= upper else "cap"
    return BatchSizeResult(good, tried, limit)


def find_batch_size(
    config: RunConfig,
    *,
    start: int | None = None,
    max_batch_size: int | None = None,
    max_trials: int = 16,
    control: RunControl | None = None,
) -> BatchSizeResult:
    """Try real training steps with the config's model, data and optimiser; return the largest batch size
    that fits (at most max_batch_size, the training split's size and 4096)."""
    from finetune_gui.core.training.prepare import prepare

    p = prepare(config)
    try:
        return search_with(p, start=start, max_batch_size=max_batch_size, max_trials=max_trials, control=control)
    finally:
        del p
        devices.release_memory()


def search_with(
    p: Any,
    *,
    start: int | None = None,
    max_batch_size: int | None = None,
    max_trials: int = 16,
    control: RunControl | None = None,
) -> BatchSizeResult:
    """find_batch_size on an already prepared model and data (`prepare.Prepared`); its weights change."""
    from torch.utils.data import default_collate

    from finetune_gui.core.models.freezing import param_groups
    from finetune_gui.core.training.batches import forward_batch
    from finetune_gui.core.training.optim import build_optimizer

    config = p.config
    tc = config.train
    optimizer = build_optimizer(tc, param_groups(p.bundle, tc.lr, config.model.backbone_lr_mult, tc.weight_decay))
    collate = p.data.collate_fn or default_collate
    n_train = len(p.data.train)
    cap = min(max_batch_size or MAX_BATCH_SIZE, MAX_BATCH_SIZE)
    upper = min(cap, n_train)
    was_training = p.model.training
    p.model.train()

    def fits(size: int) -> bool:
        batch: Any = None
        try:
            batch = collate([p.data.train[i % n_train] for i in range(size)])
            loss, _, _, _ = forward_batch(p, batch, train=True)
            loss.backward()
            optimizer.step()
            return True
        except Exception as e:
            if not devices.is_oom(e):
                raise
            return False
        finally:
            del batch
            optimizer.zero_grad(set_to_none=True)
            devices.release_memory()

    try:
        result = search_batch_size(fits, start or tc.batch_size, upper, max_trials, control)
    finally:
        optimizer = None  # drop its state now; `fits` is not called again
        p.model.train(was_training)
    if result.limit == "cap" and upper < cap:
        result.limit = "data"
    return result
