"""Hugging Face folder: save_pretrained of the model (LoRA adapters merged first) and its tokenizer.

Loads back with AutoModelForSequenceClassification / AutoModelForCausalLM and AutoTokenizer, no custom code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch


def save(source, path: Path) -> None:
    model = source.model
    if source.task.is_classification:
        model.config.id2label = dict(enumerate(source.labels))
        model.config.label2id = {label: i for i, label in enumerate(source.labels)}
    model.save_pretrained(str(path))
    source.tokenizer.save_pretrained(str(path))


def load(path: Path, source) -> Callable[..., torch.Tensor]:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from finetune_gui.core.export.source import TextLogits

    causal = source.kind == "hf-causal"
    auto = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    model = auto.from_pretrained(str(path), local_files_only=True).float().eval()
    wrapped = TextLogits(model, causal)

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return wrapped(*inputs)

    return run
