"""Models: build a ready-to-train model (with its new head, tokenizer and metadata) from a RunConfig.

`build_model(config, num_outputs)` dispatches on the task: image tasks → torchvision (or timm),
text tasks → transformers sequence classification, causal-lm → transformers causal LM. LoRA is applied
here when `config.model.lora.enabled`. Freezing is separate (`freezing.apply_freeze`), called by the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_gui.core.models.bundle import ModelBundle

if TYPE_CHECKING:
    from finetune_gui.config import RunConfig

__all__ = ["ModelBundle", "build_model", "resolve_source"]


def resolve_source(config: RunConfig) -> str:
    """ "torchvision", "timm" or "huggingface": where config.model.name is taken from."""
    from finetune_gui.core.errors import ModelLoadError

    mc, task = config.model, config.task.kind
    if task.is_image:
        if mc.source == "huggingface":
            raise ModelLoadError(
                f"model.source: '{mc.name}' from Hugging Face cannot do {task.value}; image tasks use torchvision "
                "or timm models (set model.source to auto or torchvision)"
            )
        if mc.source == "timm" or mc.name.startswith(("timm/", "hf-hub:")):
            return "timm"
        return "torchvision"
    if mc.source in ("torchvision", "timm"):
        raise ModelLoadError(
            f"model.source: {task.value} needs a Hugging Face model (an id such as bert-base-uncased or a local "
            f"folder), not a {mc.source} model; set model.source to auto or huggingface"
        )
    return "huggingface"


def build_model(config: RunConfig, num_outputs: int) -> ModelBundle:
    """Build the model for `config.task` with `num_outputs` outputs (ignored for causal-lm)."""
    from finetune_gui.core.errors import ModelLoadError

    source = resolve_source(config)
    if source in ("torchvision", "timm"):
        if config.model.lora.enabled:
            raise ModelLoadError(
                "model.lora.enabled: LoRA adapters are for Hugging Face text models here; turn LoRA off for image "
                "models and use a freeze strategy (head-only, last-n) instead"
            )
        from finetune_gui.core.models.vision import build_vision

        bundle = build_vision(config, num_outputs)
    else:
        from finetune_gui.core.models.hf import build_hf

        bundle = build_hf(config, num_outputs)
        if config.model.lora.enabled:
            from finetune_gui.core.models.freezing import apply_lora

            apply_lora(bundle, config.model.lora)
    return bundle
