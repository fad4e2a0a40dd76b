"""The LR finder run: one throwaway model trained for a short exponential learning-rate sweep."""

from __future__ import annotations

import gc
from collections.abc import Callable

from finetune_gui.config import RunConfig
from finetune_gui.core import devices
from finetune_gui.core.models.freezing import param_groups
from finetune_gui.core.training.batches import forward_batch
from finetune_gui.core.training.events import RunControl
from finetune_gui.core.training.optim import LRFinderResult, SweepProgress, build_optimizer, lr_sweep
from finetune_gui.core.training.prepare import prepare


def find_lr(
    config: RunConfig,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    control: RunControl | None = None,
    progress: Callable[[SweepProgress], None] | None = None,
) -> LRFinderResult:
    """Sweep the learning rate exponentially on the training data and suggest one (fastai style).

    The model is built fresh for the sweep and thrown away, so the sweep never touches a real run. `progress`
    hears "preparing" once, then every point of the sweep as it is recorded (in this thread: keep it quick).
    """
    if progress is not None:
        progress(SweepProgress("preparing", max(2, int(num_steps))))
    p = prepare(config)
    try:
        groups = param_groups(p.bundle, 1.0, config.model.backbone_lr_mult, config.train.weight_decay)
        ratios = [g["lr"] for g in groups]  # head 1.0, backbone backbone_lr_mult
        optimizer = build_optimizer(config.train, groups)
        p.model.train()
        batches = iter(p.train_loader)

        def train_step(lr: float) -> float:
            nonlocal batches
            for g, ratio in zip(optimizer.param_groups, ratios):
                g["lr"] = lr * ratio
            try:
                batch = next(batches)
            except StopIteration:
                p.sampler.set_epoch(p.sampler.epoch + 1)
                batches = iter(p.train_loader)
                batch = next(batches)
            loss, _, _, _ = forward_batch(p, batch, train=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        should_stop = (lambda: control.stop_requested) if control is not None else None
        return lr_sweep(
            train_step,
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=num_steps,
            should_stop=should_stop,
            progress=progress,
        )
    finally:
        p = None  # the model and data go before the memory is released; `train_step` is not called again
        gc.collect()
        devices.release_memory()
