"""A prepared run made ready for several processes: sharded loaders, the model in DistributedDataParallel,
and a run folder that only rank 0 writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Subset

from finetune_gui.config import TaskKind
from finetune_gui.core import plan
from finetune_gui.core.distributed import fsdp
from finetune_gui.core.distributed.context import DistContext, from_main, sum_all
from finetune_gui.core.distributed.sharding import ShardedBatches, slice_bounds
from finetune_gui.core.errors import ConfigError
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training.events import Listener, LogMessage
from finetune_gui.core.training.metrics import IGNORE_INDEX
from finetune_gui.core.training.prepare import Prepared, loader_settings_for, make_loader
from finetune_gui.core.training.sampling import SeededSamples


class SilentRunDir(RunDir):
    """The run folder as ranks other than 0 see it: they read checkpoints from it and write nothing."""

    def write_status(self, **fields: Any) -> None:
        pass

    def log_line(self, text: str) -> None:
        pass

    def append_metrics(self, row: dict[str, Any]) -> None:
        pass

    def append_step(self, step: int, epoch: int, loss: float, lr: float, grad_norm: float) -> None:
        pass

    def truncate_metrics(self, after_step: int) -> None:
        pass


def run_dir_on_rank(ctx: DistContext, make: Callable[[], RunDir]) -> RunDir:
    """Rank 0 makes the run folder with `make()`; every rank gets its path, and only rank 0's copy writes."""
    root = from_main(ctx, str(make().root) if ctx.is_main else None)
    return existing_run_dir(ctx, Path(root))


def existing_run_dir(ctx: DistContext, root: Path) -> RunDir:
    return RunDir(root) if ctx.is_main else SilentRunDir(root)


def distribute(p: Prepared, ctx: DistContext, say: Listener) -> Prepared:
    """`p` for this rank: its slice of every global batch, its share of validation and test, and the model
    in DistributedDataParallel (with SyncBatchNorm when train.sync_batchnorm asks)."""
    if not ctx.enabled:
        return p
    cfg, data = p.config, p.data
    bs = cfg.train.batch_size
    if bs < ctx.world_size:
        raise ConfigError([f"train.batch_size: {bs} is smaller than the {ctx.world_size} processes; each needs "
                           f"at least one sample per step, so use a batch of {ctx.world_size} or more"])  # fmt: skip
    batches = ShardedBatches(p.sampler, bs, ctx)
    if batches.dropped_tail:
        say(LogMessage("info", f"the epoch's last {batches.dropped_tail} sample(s) are left out: fewer than the "
                               f"{ctx.world_size} processes, so some would get none"))  # fmt: skip
    settings = loader_settings_for(cfg, data, p.device)
    seeded = SeededSamples(data.train, cfg.train.seed)
    train_loader = make_loader(seeded, bs, data, cfg, batch_sampler=batches, train=True, settings=settings)
    short = replace(settings, persistent_workers=False)

    def share(split):
        lo, hi = slice_bounds(len(split), ctx)
        return make_loader(Subset(split, range(lo, hi)), bs, data, cfg, settings=short) if len(split) else None

    steps = plan.plan_steps(cfg.train, len(train_loader))
    p = replace(p, train_loader=train_loader, dist=ctx, batches_per_epoch=steps.batches_per_epoch,
                steps_per_epoch=steps.steps_per_epoch, total_steps=steps.total_steps)  # fmt: skip
    share_of = f"{bs // ctx.world_size}" + ("" if bs % ctx.world_size == 0 else f"-{bs // ctx.world_size + 1}")
    if cfg.train.strategy == "fsdp":
        if p.task != TaskKind.CAUSAL_LM:
            raise ConfigError([f"train.strategy: fsdp shards causal language models; a {p.task.value} model is "
                               "copied to every process, so use ddp (or auto)"])  # fmt: skip
        how = "FSDP (fully_shard)"
        p = fsdp.shard(p, say)  # every rank evaluates the whole split: a sharded forward needs every rank
    else:
        how = "DistributedDataParallel"
        if cfg.train.sync_batchnorm:
            if p.device.type != "cuda":
                say(LogMessage("warning", "train.sync_batchnorm is on, but SyncBatchNorm needs CUDA: each process keeps its own BatchNorm statistics"))  # fmt: skip
            else:
                nn.SyncBatchNorm.convert_sync_batchnorm(p.model)
        p = replace(p, ddp=wrap(p.model, p.device), strategy="ddp", val_loader=share(data.val),
                    test_loader=share(data.test))  # fmt: skip
    say(LogMessage("info", f"distributed: {ctx.world_size} processes ({torch.distributed.get_backend()}), "
                           f"{how}; global batch {bs} = {share_of} per process"))  # fmt: skip
    return p


def wrap(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """The model in DDP; its trainable parameters as they are now are the ones it keeps in step."""
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    ddp = DistributedDataParallel(model, device_ids=ids)
    ddp.trained_params = trainable_ids(model)  # type: ignore[attr-defined]
    return ddp


def trainable_ids(model: nn.Module) -> frozenset[int]:
    return frozenset(id(q) for q in model.parameters() if q.requires_grad)


def rewrapped(p: Prepared) -> Prepared:
    """`p` with a fresh DDP wrapper when its trainable parameters changed (gradual unfreezing, lp-ft's second
    stage): DDP only all-reduces the parameters that trained when it was built."""
    if p.strategy != "ddp" or p.ddp.trained_params == trainable_ids(p.model):
        return p
    return replace(p, ddp=wrap(p.model, p.device))


def loss_units(p: Prepared, targets: torch.Tensor, n: int) -> int:
    """What this batch's mean loss is a mean over: samples, or for a causal LM the tokens it predicts."""
    if p.task == TaskKind.CAUSAL_LM and targets.dim() >= 2:
        return int((targets[:, 1:] != IGNORE_INDEX).sum())
    return n


def share_weight(p: Prepared, batch_index: int, units: int) -> float:
    """What this rank's mean loss is multiplied by, so that DDP's average over ranks is the mean over the global
    batch: world × (this rank's samples or tokens) / (the global batch's)."""
    if not p.dist.enabled:
        return 1.0
    if p.task == TaskKind.CAUSAL_LM:  # token counts differ from batch to batch: add them up
        total = sum_all(p.dist, [float(units)])[0]
    else:
        total = p.train_loader.batch_sampler.global_batch_size(batch_index)
    return p.dist.world_size * units / max(total, 1.0)


def global_mean(ctx: DistContext, loss: float, units: int, n: int) -> tuple[float, int]:
    """The global batch's mean loss and its number of samples, from this rank's (the same on every rank)."""
    if not ctx.enabled:
        return loss, n
    total, count, samples = sum_all(ctx, [loss * units, float(units), float(n)])
    return total / max(count, 1.0), int(samples)


@contextmanager
def accumulating(p: Prepared, sync: bool) -> Iterator[None]:
    """Forward and backward of a batch whose gradients are only added up here (`sync` False) or, at a step's
    last batch, averaged over the processes."""
    if sync or p.ddp is None:
        yield
    elif p.strategy == "fsdp":
        p.model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            p.model.set_requires_gradient_sync(True)
    else:
        with p.ddp.no_sync():
            yield
