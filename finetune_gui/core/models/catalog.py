"""A registry of curated backbones with their metadata (what the Model page lists).

Any other torchvision model name, Hugging Face id or local folder still works in config.model.name;
the catalog is the short list with tasks, sizes and licences, like timm's registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from finetune_gui.config import TaskKind
from finetune_gui.paths import expand_user

__all__ = ["CATALOG", "CatalogEntry", "availability", "entries", "get", "register"]

Availability = Literal["cached", "needs-download", "local"]


@dataclass(frozen=True)
class CatalogEntry:
    name: str  # what goes in config.model.name
    family: str  # "torchvision" | "huggingface"
    tasks: tuple[TaskKind, ...]
    params_m: float  # millions of parameters of the pretrained model
    input_size: int  # pixels (image models) or tokens (text models)
    licence: str
    source: str  # weights URL or hub id (or a local folder)
    description: str


CATALOG: dict[str, CatalogEntry] = {}


def register(entry: CatalogEntry) -> CatalogEntry:
    """Add an entry; a name already registered is an error."""
    if entry.name in CATALOG:
        raise ValueError(f"catalog: '{entry.name}' is already registered")
    if entry.family not in ("torchvision", "huggingface"):
        raise ValueError(f"catalog: family must be torchvision or huggingface, got {entry.family!r}")
    CATALOG[entry.name] = entry
    return entry


def entries(task: TaskKind | str | None = None) -> list[CatalogEntry]:
    """All entries, or those that can do `task`, in registration order."""
    if task is None:
        return list(CATALOG.values())
    task = TaskKind(task)
    return [e for e in CATALOG.values() if task in e.tasks]


def get(name: str) -> CatalogEntry | None:
    return CATALOG.get(name)


def availability(entry: CatalogEntry) -> Availability:
    """Whether the entry's weights are here without a network: cached | local | needs-download."""
    src = expand_user(entry.source)
    if not entry.source.startswith(("http://", "https://")) and src.is_absolute() and src.is_dir():
        return "local"
    if entry.family == "torchvision":
        from finetune_gui.core.models.vision import hub_checkpoint_path

        return "cached" if hub_checkpoint_path(entry.source).is_file() else "needs-download"
    from finetune_gui.core.models.hf import cached_file

    # The hub cache is keyed by the id that was asked for: the short legacy id (gpt2) or the canonical one.
    for repo_id in dict.fromkeys((entry.name, entry.source)):
        if cached_file(repo_id, "config.json") is not None:
            return "cached"
    return "needs-download"


# ---------------------------------------------------------------- curated entries

_IMAGE_TASKS = (TaskKind.IMAGE_CLASSIFICATION, TaskKind.IMAGE_MULTILABEL, TaskKind.IMAGE_REGRESSION)
_ENCODER_TASKS = (TaskKind.TEXT_CLASSIFICATION, TaskKind.TEXT_REGRESSION)
_DECODER_TASKS = (TaskKind.CAUSAL_LM, TaskKind.TEXT_CLASSIFICATION, TaskKind.TEXT_REGRESSION)
_TV_LICENCE = "BSD-3-Clause (torchvision; weights trained on ImageNet-1k, check its terms for commercial use)"

_TORCHVISION = [
    ("resnet18", "ResNet-18: small, fast, a good first choice."),
    ("resnet34", "ResNet-34: a little deeper than ResNet-18."),
    ("resnet50", "ResNet-50: the classic strong baseline."),
    ("resnet101", "ResNet-101: deeper and slower; for larger datasets."),
    ("resnet152", "ResNet-152: the deepest ResNet; needs a GPU."),
    ("efficientnet_b0", "EfficientNet-B0: accurate for its small size."),
    ("mobilenet_v3_small", "MobileNetV3-Small: tiny and fast, for CPUs and phones."),
    ("mobilenet_v3_large", "MobileNetV3-Large: fast with better accuracy."),
    ("convnext_tiny", "ConvNeXt-Tiny: a modern CNN, strong accuracy."),
    ("vit_b_16", "ViT-B/16: Vision Transformer; 224 px input only, needs a GPU."),
]

# Parameter counts of the pretrained Hugging Face models (the bare backbone as published).
_HUGGINGFACE = [
    (
        "bert-base-uncased",
        "google-bert/bert-base-uncased",
        _ENCODER_TASKS,
        109.48,
        512,
        "Apache-2.0",
        "BERT base (uncased): the classic English encoder.",
    ),
    (
        "distilbert-base-uncased",
        "distilbert/distilbert-base-uncased",
        _ENCODER_TASKS,
        66.36,
        512,
        "Apache-2.0",
        "DistilBERT: 40% smaller and 60% faster than BERT, nearly as accurate.",
    ),
    (
        "roberta-base",
        "FacebookAI/roberta-base",
        _ENCODER_TASKS,
        124.65,
        512,
        "MIT",
        "RoBERTa base: BERT trained longer on more data; strong for classification.",
    ),
    (
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        _ENCODER_TASKS,
        22.71,
        512,
        "Apache-2.0",
        "MiniLM-L6: a small, fast sentence encoder; good on CPUs.",
    ),
    (
        "gpt2",
        "openai-community/gpt2",
        _DECODER_TASKS,
        124.44,
        1024,
        "MIT",
        "GPT-2 small: the classic decoder for text generation.",
    ),
    (
        "distilgpt2",
        "distilbert/distilgpt2",
        _DECODER_TASKS,
        81.91,
        1024,
        "Apache-2.0",
        "DistilGPT-2: a smaller, faster GPT-2.",
    ),
    (
        "HuggingFaceTB/SmolLM2-135M",
        "HuggingFaceTB/SmolLM2-135M",
        _DECODER_TASKS,
        134.52,
        8192,
        "Apache-2.0",
        "SmolLM2-135M: a small modern Llama-style language model.",
    ),
    (
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        _DECODER_TASKS,
        134.52,
        8192,
        "Apache-2.0",
        "SmolLM2-135M-Instruct: SmolLM2 tuned to follow instructions.",
    ),
]


def _register_defaults() -> None:
    from torchvision.models import get_model_weights

    for name, text in _TORCHVISION:
        weights = get_model_weights(name).DEFAULT
        crop = weights.transforms().crop_size
        register(
            CatalogEntry(
                name=name,
                family="torchvision",
                tasks=_IMAGE_TASKS,
                params_m=round(weights.meta["num_params"] / 1e6, 2),
                input_size=int(crop[0] if isinstance(crop, (list, tuple)) else crop),
                licence=_TV_LICENCE,
                source=weights.url,
                description=f"{text} ({weights.name}, ImageNet top-1 "
                f"{weights.meta['_metrics']['ImageNet-1K']['acc@1']:.1f}%)",
            )
        )
    for name, hub_id, tasks, params_m, size, licence, text in _HUGGINGFACE:
        register(CatalogEntry(name, "huggingface", tasks, params_m, size, licence, hub_id, text))


_register_defaults()
