"""Cheap measurements of a model in training, taken on logged steps only: gradient size per block, the size
of an update against the weights, the share of dead ReLU units, and drift of frozen BatchNorm statistics."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

import torch
from torch import nn

RELU_FAMILY = (nn.ReLU, nn.ReLU6)  # outputs exactly zero when "off"; GELU/SiLU/LeakyReLU never die this way
MAX_HASHED_SAMPLES = 50_000


def block_gradients(model: nn.Module, blocks: list[str]) -> list[float]:
    """Root-mean-square gradient of each block's trainable parameters (NaN for a block without any)."""
    modules = dict(model.named_modules())
    out = []
    for name in blocks:
        module = modules.get(name)
        grads = [p.grad for p in _dense_parameters(module) if p.requires_grad and p.grad is not None] if module else []
        if not grads:
            out.append(float("nan"))
            continue
        total = sum(float(g.detach().float().pow(2).sum()) for g in grads)
        count = sum(g.numel() for g in grads)
        out.append(math.sqrt(total / max(count, 1)))
    return out


def _dense_parameters(module: nn.Module):
    """The parameters of `module` but its embedding tables, whose gradient touches only the rows of the tokens
    seen (its RMS over the whole table says nothing about how well the gradient flows)."""
    skip = {id(q) for m in module.modules() if isinstance(m, nn.Embedding) for q in m.parameters(recurse=False)}
    return [q for q in module.parameters() if id(q) not in skip]


def snapshot(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


def update_ratio(before: list[torch.Tensor], params: list[torch.Tensor]) -> float:
    """||w_after - w_before|| / ||w_before|| over all the parameters (NaN when the weights are all zero)."""
    moved = sum(float((p.detach() - b).float().pow(2).sum()) for b, p in zip(before, params))
    size = sum(float(b.float().pow(2).sum()) for b in before)
    return math.sqrt(moved / size) if size > 0 else float("nan")


class DeadUnitProbe:
    """Forward hooks on the ReLU-family modules; while `active`, each output adds whether each unit (a channel
    or feature) was zero for the whole batch."""

    def __init__(self, model: nn.Module):
        self.active = False
        self._sums: dict[str, list[float]] = {}
        self._handles = [
            module.register_forward_hook(self._hook(name))
            for name, module in model.named_modules()
            if isinstance(module, RELU_FAMILY)
        ]

    def _hook(self, name: str):
        def record(module, _inputs, output) -> None:
            if not self.active or not module.training or not torch.is_tensor(output) or output.dim() < 2:
                return
            dim = 1 if output.dim() in (2, 4) else output.dim() - 1  # [N, features], [N, C, H, W], else the last
            with torch.no_grad():
                units = output.detach().movedim(dim, 0).reshape(output.shape[dim], -1)
                dead = float((units.amax(dim=1) <= 0).float().mean())
            self._sums.setdefault(name, []).append(dead)

        return record

    def take(self) -> dict[str, float]:
        """The share of dead units per layer since the last take, and start afresh."""
        out = {name: sum(v) / len(v) for name, v in self._sums.items() if v}
        self._sums = {}
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def frozen_batchnorm(model: nn.Module) -> dict[str, torch.Tensor]:
    """The running mean and variance of each BatchNorm whose parameters are all frozen."""
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            if all(not p.requires_grad for p in module.parameters(recurse=False)):
                out[name] = torch.cat([module.running_mean.detach(), module.running_var.detach()]).clone()
    return out


def batchnorm_drift(model: nn.Module, before: dict[str, torch.Tensor]) -> float:
    """The largest change since `before` of a BatchNorm that is still frozen."""
    now = frozen_batchnorm(model)
    return max((float((now[n] - b).abs().max()) for n, b in before.items() if n in now), default=0.0)


def class_counts(dataset: Any, labels: list[str]) -> dict[str, int]:
    """Samples per class of a classification split (empty for other tasks)."""
    targets = getattr(dataset, "targets", None)
    if not labels or targets is None or not all(isinstance(t, int) for t in targets):
        return {}
    counts = Counter(targets)
    return {labels[i]: counts.get(i, 0) for i in range(len(labels))}


def _sample_keys(dataset: Any) -> list[str]:
    """A content hash per sample: the file's bytes for images, the token ids for text."""
    keys = []
    if hasattr(dataset, "paths"):
        for path in list(dataset.paths)[:MAX_HASHED_SAMPLES]:
            try:
                with open(path, "rb") as f:
                    keys.append(hashlib.sha1(f.read()).hexdigest())
            except OSError:
                continue
    elif hasattr(dataset, "input_ids"):
        keys = [hashlib.sha1(repr(ids).encode()).hexdigest() for ids in dataset.input_ids[:MAX_HASHED_SAMPLES]]
    return keys


def duplicates_across_splits(train: Any, others: dict[str, Any]) -> dict[str, int]:
    """How many samples of each other split are identical to a training sample ("train/val": n)."""
    seen = set(_sample_keys(train))
    if not seen:
        return {}
    return {f"train/{name}": sum(k in seen for k in _sample_keys(ds)) for name, ds in others.items()}
