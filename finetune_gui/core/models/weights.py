"""A model's weights: as stored in checkpoints and exports (the state dict without tied duplicates, and back),
and a state dict file the user chose, loaded as far as it fits."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from finetune_gui.core.errors import ModelLoadError, RunStateError


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


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or .pth/.pt (tensors only: pickled code is refused)."""
    if not path.is_file():
        raise ModelLoadError(f"model.weights_path: file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path), device="cpu")
        elif suffix in (".pth", ".pt", ".bin", ".ckpt"):
            data = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            raise ModelLoadError(
                f"model.weights_path: {path.name} is neither .safetensors nor .pth/.pt; give a state dict file"
            )
    except ModelLoadError:
        raise
    except Exception as e:
        text = str(e).lower()
        if isinstance(e, pickle.UnpicklingError) or "weights_only" in text or "weights only" in text:
            raise ModelLoadError(
                f"model.weights_path: {path.name} holds Python objects besides tensors, which are refused for safety "
                "(only plain state dicts load). Save it with torch.save(model.state_dict(), ...) or as .safetensors."
            ) from e
        raise ModelLoadError(f"model.weights_path: cannot read {path}: {e}") from e
    if isinstance(data, dict):
        for key in ("state_dict", "model", "model_state_dict", "module"):
            inner = data.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                data = inner
                break
    if not isinstance(data, dict) or not any(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelLoadError(f"model.weights_path: {path.name} does not hold a state dict of tensors")
    state = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_weights_file(model: nn.Module, path: Path) -> list[str]:
    """Load a local state dict with strict=False; returns warnings; ModelLoadError if nothing matched."""
    state = read_state_dict(path)
    own = model.state_dict()
    shape_mismatch = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ModelLoadError(
            f"model.weights_path: none of the {len(state)} tensors in {path.name} match this model "
            f"({type(model).__name__}); is it a state dict for model.name?"
        )
    result = model.load_state_dict(usable, strict=False)
    unexpected = [k for k in state if k not in own]
    warnings: list[str] = []

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    if result.missing_keys:
        warnings.append(
            f"{len(result.missing_keys)} weights were not in {path.name} and start random: {few(result.missing_keys)}"
        )
    if unexpected:
        warnings.append(f"{len(unexpected)} tensors in {path.name} do not belong to this model: {few(unexpected)}")
    if shape_mismatch:
        warnings.append(
            f"{len(shape_mismatch)} tensors in {path.name} have other shapes than this model's and were skipped: "
            f"{few(shape_mismatch)}"
        )
    return warnings
