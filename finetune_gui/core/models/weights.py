"""A model's weights as stored in checkpoints and exports: the state dict without tied duplicates, and back."""

from __future__ import annotations

import torch
from torch import nn

from finetune_gui.core.errors import RunStateError


def model_weights(model: nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict without duplicate (tied) tensors, which safetensors cannot store twice."""
    seen: dict[tuple[int, int, tuple], str] = {}
    weights, tied = {}, []
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if t.numel() and key in seen:
            tied.append(name)
            continue
        seen[key] = name
        weights[name] = t
    return weights, tied


def load_model_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    missing, unexpected = model.load_state_dict(weights, strict=False)
    tied = set(model_weights(model)[1])
    really_missing = [k for k in missing if k not in tied]
    if really_missing or unexpected:
        raise RunStateError(
            f"{source}: checkpoint does not fit this model (missing {really_missing[:3]}, unexpected "
            f"{list(unexpected)[:3]}); was the config changed after the run started?"
        )
