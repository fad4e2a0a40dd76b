"""The sections of a run config that say what is learnt and from what: task, data, model, augmentation.

Each field has a default, a range and a one-line description; the GUI builds its forms from them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class TaskKind(str, Enum):  # noqa: UP042 - StrEnum would change what str() and format() give
    IMAGE_CLASSIFICATION = "image-classification"
    IMAGE_MULTILABEL = "image-multilabel"
    IMAGE_REGRESSION = "image-regression"
    TEXT_CLASSIFICATION = "text-classification"
    TEXT_REGRESSION = "text-regression"
    CAUSAL_LM = "causal-lm"

    @property
    def is_image(self) -> bool:
        return self.value.startswith("image-")

    @property
    def is_text(self) -> bool:
        return self.value.startswith("text-")

    @property
    def is_regression(self) -> bool:
        return self.value.endswith("-regression")

    @property
    def is_classification(self) -> bool:
        return self in (TaskKind.IMAGE_CLASSIFICATION, TaskKind.TEXT_CLASSIFICATION)


def no_bool_for_numbers(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """true/false where a number belongs is a mistake, not 1/0 (pydantic would quietly convert it)."""
    if isinstance(value, bool) and info.field_name:
        annotation = cls.model_fields[info.field_name].annotation
        numeric = (int, float, int | None, float | None)
        if annotation in numeric:
            raise ValueError(f"must be a number, got {str(value).lower()}")
    return value


class ConfigSection(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False, allow_inf_nan=False)

    _numbers_not_bools = field_validator("*", mode="before")(classmethod(no_bool_for_numbers))


class TaskConfig(ConfigSection):
    kind: TaskKind = Field(TaskKind.IMAGE_CLASSIFICATION, description="What the model learns to do.")


class DataConfig(ConfigSection):
    path: str = Field("", description="Folder of images, or a CSV/TSV/JSONL/TXT file (relative to the config file).")
    format: Literal["auto", "folder", "csv", "tsv", "jsonl", "txt"] = Field(
        "auto", description="How to read `path`; auto guesses from the folder or file extension."
    )
    path_column: str = Field("path", description="Manifest column holding image paths (CSV image manifests).")
    text_column: str = Field("text", description="Column holding the text (CSV/TSV/JSONL text data).")
    label_columns: list[str] = Field(
        default_factory=lambda: ["label"],
        description="Column(s) holding the label; several columns or `label_separator` give multi-label.",
    )
    label_separator: str = Field(
        "", description="Split one label cell into several labels on this string (multi-label)."
    )
    val_fraction: float = Field(0.15, ge=0.0, lt=0.9, description="Share of the data held out for validation.")
    test_fraction: float = Field(0.15, ge=0.0, lt=0.9, description="Share of the data held out for the final test.")
    split_seed: int = Field(42, ge=0, description="Seed of the train/val/test split (stratified for classification).")
    image_size: int = Field(224, ge=16, le=1024, description="Side length in pixels that images are resized to.")
    max_length: int = Field(128, ge=8, le=8192, description="Tokens per text sample; longer texts are truncated.")
    max_samples: int | None = Field(None, ge=1, description="Use at most this many samples in all (quick trials).")
    num_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Background processes that load data (0 = in the main process); empty = chosen for the machine.",
    )
    decode_cache: Literal["auto", "off"] = Field(
        "auto",
        description="auto: decode and resize each image once and keep it (in memory, or on disk when too big); off: "
        "decode every image every epoch.",
    )
    decode_memory_mb: int | None = Field(
        None, ge=16, le=4_000_000, description="Memory the decoded images may take (MB); empty = a quarter of the RAM."
    )
    decode_disk_mb: int = Field(
        20_000,
        ge=0,
        le=100_000_000,
        description="Disk the decoded images may take (MB) when they do not fit in memory; 0 = never on disk.",
    )

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 0.95:
            raise ValueError(
                f"val_fraction + test_fraction must be < 0.95, got {self.val_fraction + self.test_fraction:g}"
            )
        return self


class LoraConfig(ConfigSection):
    enabled: bool = Field(
        False, description="Train small LoRA adapters instead of the model's own weights (HF models)."
    )
    r: int = Field(8, ge=1, le=256, description="LoRA rank.")
    alpha: int = Field(16, ge=1, le=1024, description="LoRA scaling numerator (alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: list[str] = Field(
        default_factory=list, description="Module names to adapt; empty picks the attention projections."
    )


class ModelConfig(ConfigSection):
    name: str = Field("resnet18", description="torchvision model name, Hugging Face id, or a local model folder.")
    source: Literal["auto", "torchvision", "huggingface", "timm"] = Field(
        "auto", description="Where `name` comes from; auto decides from the name and the task."
    )
    pretrained: bool = Field(True, description="Start from pretrained weights (downloaded or cached).")
    weights: str = Field("DEFAULT", description="torchvision weights enum name, e.g. DEFAULT or IMAGENET1K_V2.")
    weights_path: str = Field("", description="Local .safetensors or .pth state dict to start from instead.")
    allow_random_init: bool = Field(
        False, description="If pretrained weights cannot be had, go on from random weights (with a warning)."
    )
    trust_remote_code: bool = Field(
        False, description="Let a Hugging Face model run its own Python code. Only for sources you trust."
    )
    freeze: Literal["none", "head-only", "last-n", "modules"] = Field(
        "head-only",
        description="Which weights stay fixed: none, all but the head, all but the last N blocks, or a module list.",
    )
    unfreeze_last_n: int = Field(1, ge=0, le=1000, description="Blocks left trainable by the last-n strategy.")
    frozen_modules: list[str] = Field(default_factory=list, description="Module names frozen by the modules strategy.")
    gradual_unfreeze_every: int = Field(
        0, ge=0, le=1000, description="Unfreeze one more block every K epochs (0 = off)."
    )
    backbone_lr_mult: float = Field(
        1.0, gt=0.0, le=1.0, description="Backbone LR = head LR times this (discriminative LRs)."
    )
    head_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout before the new head.")
    backbone_dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="Override the backbone's own dropout rates (empty = keep the model's)."
    )
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapters (peft).")


class AugmentConfig(ConfigSection):
    random_resized_crop: bool = Field(True, description="Crop a random part of the image and resize it.")
    crop_scale_min: float = Field(0.5, gt=0.0, le=1.0, description="Smallest crop, as a share of the image area.")
    hflip: float = Field(0.5, ge=0.0, le=1.0, description="Probability of a horizontal flip.")
    vflip: float = Field(0.0, ge=0.0, le=1.0, description="Probability of a vertical flip (wrong for most photos).")
    rotation: float = Field(0.0, ge=0.0, le=180.0, description="Largest random rotation in degrees.")
    color_jitter: float = Field(
        0.0, ge=0.0, le=1.0, description="Strength of random brightness/contrast/saturation changes."
    )
    auto_augment: Literal["none", "randaugment", "trivialaugment"] = Field(
        "none", description="Automatic augmentation policy."
    )
    random_erasing: float = Field(0.0, ge=0.0, le=1.0, description="Probability of erasing a random rectangle.")
    mixup_alpha: float = Field(0.0, ge=0.0, le=10.0, description="MixUp strength (0 = off); classification only.")
    cutmix_alpha: float = Field(0.0, ge=0.0, le=10.0, description="CutMix strength (0 = off); classification only.")
