"""safetensors: the trained weights alone (LoRA merged), to load into the same architecture.

The file's metadata names the task, the architecture and the labels. Verification rebuilds the run's
architecture from its config (no LoRA: the adapters are merged in), loads this file into it and runs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from finetune_gui.files import atomic_write


def save(source, path: Path) -> None:
    from finetune_gui.core.models.weights import model_weights
    from finetune_gui.core.tensor_files import write_safetensors

    weights, tied = model_weights(source.model)
    metadata = {
        "format": "pt",
        "task": source.task.value,
        "architecture": type(source.model).__name__,
        "model": source.config.model.name,
        "labels": json.dumps(source.labels),
        "tied_weights": json.dumps(tied),  # stored once; load with strict=False or tie them again
    }
    atomic_write(path, lambda f: write_safetensors(f, weights, metadata))


def load(path: Path, source) -> Callable[..., torch.Tensor]:
    from safetensors.torch import load_file

    from finetune_gui.core.export.source import ImageLogits, TextLogits
    from finetune_gui.core.models.weights import load_model_weights
    from finetune_gui.core.run_model import build_architecture

    config = source.config.model_copy(deep=True).with_base_dir(source.config.base_dir)
    config.model.lora.enabled = False  # the file holds the merged weights
    model = build_architecture(config, source.task, source.labels).model
    load_model_weights(model, load_file(str(path)), str(path))
    model.float().eval()
    wrapped = ImageLogits(model) if source.kind == "vision" else TextLogits(model, source.kind == "hf-causal")

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return wrapped(*inputs)

    return run
