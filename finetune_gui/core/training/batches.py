"""One batch through the model, and the metrics of a whole split."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch.utils.data import DataLoader

from finetune_gui.core.distributed.context import gather_all
from finetune_gui.core.training.events import RunControl
from finetune_gui.core.training.metrics import TaskMetrics
from finetune_gui.core.training.prepare import Prepared


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def forward_batch(
    p: Prepared, batch: Any, *, train: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, int]:
    """Run one batch; returns (loss, outputs, targets, batch size)."""
    batch = _to_device(batch, p.device)
    autocast = torch.autocast(p.device.type, dtype=p.amp_dtype) if p.amp_dtype else nullcontext()
    model = p.tail if p.tail is not None else p.runner if p.runner is not None else p.model  # tail: cached features
    if train and p.ddp is not None:
        model = p.ddp
    with autocast:
        if p.bundle.kind == "vision":
            images, targets = batch
            if train and p.mixer is not None:
                images, targets = p.mixer(images, targets)
            if p.speed is not None and p.speed.channels_last and images.dim() == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            outputs = model(images)
            if p.task.is_regression:
                targets = targets.float().view_as(outputs)
            loss = p.loss_fn(outputs.float(), targets)
            return loss, outputs.detach().float(), targets.detach(), images.shape[0]
        if p.bundle.kind == "hf-sequence":
            targets = batch.pop("labels")
            outputs = model(**batch).logits
            if p.task.is_regression:
                targets = targets.float().view_as(outputs)
            loss = p.loss_fn(outputs.float(), targets)
            return loss, outputs.detach().float(), targets.detach(), outputs.shape[0]
        out = model(**batch)
        return out.loss.float(), None, batch["labels"].detach(), batch["input_ids"].shape[0]


@torch.no_grad()
def evaluate(p: Prepared, loader: DataLoader | None, control: RunControl | None = None) -> TaskMetrics | None:
    """Metrics of the model on one split (None when the split is empty)."""
    if loader is None:
        return None
    metrics = TaskMetrics(p.task, p.data.labels)
    was_training = p.model.training
    p.model.eval()
    mine = []  # under torchrun: this rank's share, gathered below so every rank computes the same metrics
    try:
        for batch in loader:
            if control is not None:
                control.checkpoint()
            loss, outputs, targets, n = forward_batch(p, batch, train=False)
            result = (outputs.cpu() if outputs is not None else None, targets.cpu(), float(loss), n)
            if p.strategy == "ddp":  # under FSDP every rank evaluates the whole split
                mine.append(result)
            else:
                metrics.update(*result)
    finally:
        p.model.train(was_training)
    for share in gather_all(p.dist, mine) if p.strategy == "ddp" else ():
        for result in share:
            metrics.update(*result)
    return metrics
