"""ModelBundle: a model ready for the engine, with what the data pipeline and the freezing code need to know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finetune_gui.core.plan import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    import torch


@dataclass
class ModelBundle:
    """A model ready for the engine, with what the data pipeline and the freezing code need to know."""

    model: torch.nn.Module
    kind: str  # "vision" | "hf-sequence" | "hf-causal"
    tokenizer: Any | None  # HF tokenizer for text kinds (pad token set), None for vision
    image_size: int  # input side for vision, 0 for text
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    head: list[str] = field(default_factory=list)  # module names of the new/task head
    blocks: list[str] = field(default_factory=list)  # ordered backbone blocks, earliest first
    warnings: list[str] = field(default_factory=list)
    description: str = ""
    random_init: bool = False  # no pretrained weights and no weights file: the backbone has nothing to transfer

    @property
    def is_text(self) -> bool:
        return self.kind.startswith("hf-")

    @property
    def uses_lora(self) -> bool:
        return hasattr(self.model, "peft_config")
