"""FSDP2 (`fully_shard`) for causal LMs too large to copy to every process: each rank keeps a shard of every
weight, gathers a block's weights for its forward and backward, and reduce-scatters the gradients.

Checkpoints stay one safetensors file of full weights, gathered on rank 0, so export, resume and Try it read
them as before; the optimiser state is saved with parameter names, so any world size can load it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import fully_shard

from finetune_gui.core.errors import RunStateError
from finetune_gui.core.models.weights import model_weights
from finetune_gui.core.training.events import Listener, LogMessage
from finetune_gui.core.training.prepare import Prepared

NAMED_OPTIMIZER_STATE = "names"  # a checkpoint's optimizer state keyed by parameter name, not position
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The transformer's blocks: the largest list of modules of one class (GPT-2's `h`, Llama's `layers`)."""
    best: list[nn.Module] = []
    best_size = 0
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1 and len({type(m) for m in module}) == 1:
            size = sum(q.numel() for q in module.parameters())
            if size > best_size:
                best, best_size = list(module), size
    return best


def shard(p: Prepared, say: Listener) -> Prepared:
    """`p` with its model sharded block by block, then as a whole; tied weights are noted before sharding."""
    tied = model_weights(p.model)[1]
    blocks = repeated_blocks(p.model)
    for block in blocks:
        fully_shard(block)
    fully_shard(p.model)
    say(LogMessage("info", f"FSDP: {len(blocks)} blocks sharded over {p.dist.world_size} processes"))
    return replace(p, ddp=p.model, strategy="fsdp", tied=tuple(tied))


def full_weights(p: Prepared) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The full weights, gathered on rank 0 (an empty dict on the other ranks). Every rank must call it."""
    gathered = get_model_state_dict(p.model, options=FULL)
    return {k: v for k, v in gathered.items() if k not in p.tied}, list(p.tied)


def load_full_weights(p: Prepared, weights: dict[str, torch.Tensor], source: str) -> None:
    """Full weights (every rank read the same file) into the sharded model."""
    expected = set(p.model.state_dict()) - set(p.tied)
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise RunStateError(
            f"{source}: checkpoint does not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]}); "
            "was the config changed after the run started?"
        )
    set_model_state_dict(p.model, weights, options=StateDictOptions(full_state_dict=True, strict=False))


def optimizer_state(p: Prepared, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The full optimiser state keyed by parameter name (every rank must call it)."""
    return get_optimizer_state_dict(p.model, optimizer, options=FULL)


def load_named_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """A name-keyed optimiser state into any model, sharded or not."""
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def named_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> dict[str, Any]:
    """A position-keyed optimiser state (from a run in one process or under DDP) keyed by parameter name."""
    names = {id(q): n for n, q in model.named_parameters()}
    order = [names[id(q)] for g in optimizer.param_groups for q in g["params"]]
    groups = []
    for saved in state["param_groups"]:
        groups.append({**saved, "params": [order[i] for i in saved["params"]]})
    return {"state": {order[i]: v for i, v in state["state"].items()}, "param_groups": groups}


def say_when_alone(strategy: str, say: Listener) -> None:
    if strategy == "fsdp":
        say(LogMessage("info", "train.strategy 'fsdp' shards the model over torchrun's processes; this run is one process, so nothing is sharded"))  # fmt: skip
