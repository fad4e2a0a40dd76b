"""The one run configuration shared by the GUI, the presets and the CLI.

Every field has a default, a range and a one-line description; the GUI builds its forms and
tooltips from them. On disk a config is TOML. Unknown keys are errors.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from finetune_gui.paths import expand_user

SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """A config that cannot be used; `problems` holds one `field: message` line per fault."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "invalid config\n  " + "\n  ".join(problems))

    def by_field(self) -> dict[str, list[str]]:
        """Problems keyed by the dotted field they are about ("train.lr"), for showing them beside the fields;
        problems about no one field (a file that is not TOML) are under ""."""
        out: dict[str, list[str]] = {}
        for line in self.problems:
            key, sep, message = line.partition(": ")
            if not sep or not key or " " in key:
                key, message = "", line
            out.setdefault(key, []).append(message)
        return out


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


def _no_bool_for_numbers(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """true/false where a number belongs is a mistake, not 1/0 (pydantic would quietly convert it)."""
    if isinstance(value, bool) and info.field_name:
        annotation = cls.model_fields[info.field_name].annotation
        numeric = (int, float, int | None, float | None)
        if annotation in numeric:
            raise ValueError(f"must be a number, got {str(value).lower()}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False, allow_inf_nan=False)

    _numbers_not_bools = field_validator("*", mode="before")(classmethod(_no_bool_for_numbers))


class TaskConfig(_Section):
    kind: TaskKind = Field(TaskKind.IMAGE_CLASSIFICATION, description="What the model learns to do.")


class DataConfig(_Section):
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
    num_workers: int = Field(
        0, ge=0, le=64, description="Background processes that load data (0 = in the main process)."
    )

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 0.95:
            raise ValueError(
                f"val_fraction + test_fraction must be < 0.95, got {self.val_fraction + self.test_fraction:g}"
            )
        return self


class LoraConfig(_Section):
    enabled: bool = Field(
        False, description="Train small LoRA adapters instead of the model's own weights (HF models)."
    )
    r: int = Field(8, ge=1, le=256, description="LoRA rank.")
    alpha: int = Field(16, ge=1, le=1024, description="LoRA scaling numerator (alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: list[str] = Field(
        default_factory=list, description="Module names to adapt; empty picks the attention projections."
    )


class ModelConfig(_Section):
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


class AugmentConfig(_Section):
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


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1, le=10000, description="Passes over the training data.")
    batch_size: int = Field(32, ge=1, le=4096, description="Samples per step.")
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = Field("adamw", description="Optimisation algorithm.")
    lr: float = Field(1e-3, gt=0.0, le=10.0, description="Peak learning rate (of the head; see backbone_lr_mult).")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="Momentum (SGD, RMSprop).")
    nesterov: bool = Field(False, description="Nesterov momentum (SGD).")
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="L2 weight decay.")
    l1: float = Field(0.0, ge=0.0, le=1.0, description="L1 penalty on trainable weights, added to the loss.")
    grad_clip: float = Field(0.0, ge=0.0, description="Clip the gradient norm to this (0 = off).")
    grad_accum: int = Field(1, ge=1, le=1024, description="Add up gradients over this many batches per optimiser step.")
    schedule: Literal[
        "constant",
        "step",
        "multistep",
        "exponential",
        "cosine",
        "linear-warmup",
        "cosine-warmup",
        "one-cycle",
        "plateau",
    ] = Field("cosine", description="How the learning rate changes during training.")
    warmup_fraction: float = Field(
        0.05, ge=0.0, le=0.5, description="Share of steps spent warming up (warmup schedules)."
    )
    step_epochs: int = Field(10, ge=1, description="Epochs between LR drops (step schedule).")
    milestones: list[int] = Field(
        default_factory=lambda: [30, 60], description="Epochs at which the LR drops (multistep)."
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="LR multiplier at each drop, or per epoch (exponential).")
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Lowest LR as a share of the peak (cosine schedules).")
    plateau_patience: int = Field(
        2, ge=0, le=1000, description="Epochs without improvement before the LR drops (plateau)."
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="Label smoothing for cross-entropy.")
    class_weights: Literal["none", "balanced"] = Field("none", description="Weight classes by inverse frequency.")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto, cpu, cuda, cuda:N or mps.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Number format; auto uses bf16/fp16 on CUDA."
    )
    seed: int = Field(42, ge=0, description="Seed for weights, shuffling and augmentation.")
    deterministic: bool = Field(False, description="Use deterministic algorithms only (slower, repeatable).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimiser steps (quick trials).")
    log_every: int = Field(10, ge=1, description="Steps between step-level reports.")


class EarlyStoppingConfig(_Section):
    enabled: bool = Field(
        True,
        description="Stop when the watched metric stops improving; off without a validation split (unless it is a train_ one).",
    )
    metric: str = Field("val_loss", description="Logged metric to watch, e.g. val_loss or val_accuracy.")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="Whether lower or higher is better; auto guesses from the name."
    )
    patience: int = Field(3, ge=1, le=1000, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as an improvement.")
    restore_best: bool = Field(True, description="End with the weights of the best epoch.")


class CheckpointConfig(_Section):
    output_dir: str = Field(
        "runs", description="Folder that run folders are made in (relative to the working directory)."
    )
    run_name: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", description="Run folder name; empty = preset name + time.")
    keep_last: int = Field(2, ge=1, le=100, description="Recent checkpoints kept besides the best.")
    every_n_epochs: int = Field(1, ge=1, le=1000, description="Save a checkpoint every N epochs.")
    monitor: str = Field("", description="Metric that picks the best checkpoint; empty = early_stopping.metric.")


class RunConfig(BaseModel):
    """A whole run: what to learn, from which data, with which model and how."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    _numbers_not_bools = field_validator("*", mode="before")(classmethod(_no_bool_for_numbers))

    schema_version: int = Field(SCHEMA_VERSION, ge=1, description="Version of this file's layout.")
    name: str = Field("run", description="Short name of this setup.")
    description: str = Field("", description="One line saying what this setup does.")
    task: TaskConfig = Field(default_factory=TaskConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        """Folder that relative data and weight paths are resolved against (the config file's folder)."""
        return self._base_dir

    def with_base_dir(self, base_dir: str | Path) -> RunConfig:
        self._base_dir = Path(base_dir).resolve()
        return self

    def resolve(self, path: str) -> Path:
        """An absolute path for a path written in this config."""
        p = expand_user(path)
        if p.is_absolute():
            return p
        try:
            return (self._base_dir / p).resolve()
        except (OSError, RuntimeError, ValueError):  # a link to itself, a name too long: the reader reports it
            return Path(os.path.abspath(self._base_dir / p))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def __eq__(self, other: object) -> bool:
        # two configs are the same setup when their values are; where they were read from does not count
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())


# ---------------------------------------------------------------- loading and messages


def explain_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    """One pydantic error as a sentence that names the field and what to do."""
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if kind == "extra_forbidden":
        parent: Any = model
        for part in err["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
            parent = field.annotation if field is not None else None
        names = list(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        close = difflib.get_close_matches(str(err["loc"][-1]), names, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else (f"; known keys: {', '.join(names)}" if names else "")
        return f"{loc}: unknown key{hint}"
    messages = {
        "greater_than": "must be > {gt}",
        "greater_than_equal": "must be >= {ge}",
        "less_than": "must be < {lt}",
        "less_than_equal": "must be <= {le}",
        "missing": "is required",
    }
    if kind in messages:
        msg = messages[kind].format(**ctx)
    elif kind in ("literal_error", "enum"):
        msg = f"must be one of {ctx.get('expected', '')}"
    else:
        msg = err["msg"][0].lower() + err["msg"][1:]
        msg = msg.removeprefix("value error, ")
    if kind in ("missing", "value_error"):
        return f"{loc}: {msg}"
    return f"{loc}: {msg}, got {got!r}"


def validate_dict(data: dict[str, Any], source: str | None = None) -> RunConfig:
    """Build a RunConfig from plain data, raising ConfigError with field-level messages."""
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): a config is a table of sections, got {type(data).__name__}"], source)
    data = migrate(dict(data), source)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError([explain_error(err, RunConfig) for err in e.errors()], source) from None


def migrate(data: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    """Bring an older config layout up to SCHEMA_VERSION; refuse a newer one."""
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, (str, float)) and not isinstance(version, bool):
        try:  # "2" or 2.0 would be read as 2 later: check them as the number they will be
            version = int(float(version)) if float(version) == int(float(version)) else version
        except (ValueError, OverflowError):
            pass
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise ConfigError(
            [
                f"schema_version: this file is version {version}, but this finetune-gui reads up to "
                f"{SCHEMA_VERSION}; update finetune-gui to open it"
            ],
            source,
        )
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML config file, apply `section.key=value` overrides, and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found: {path}"], str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"not UTF-8 text (byte {e.start}); save the file as UTF-8"], str(path)) from None
    except IsADirectoryError:
        raise ConfigError([f"{path} is a folder; give a config .toml file"], str(path)) from None
    except OSError as e:
        raise ConfigError([f"cannot be read ({e.strerror or e})"], str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"not valid TOML: {e}"], str(path)) from None
    if overrides:
        apply_overrides(data, overrides)
    return validate_dict(data, str(path)).with_base_dir(path.parent)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=3e-4` → (['train', 'lr'], 0.0003); values are read as TOML, else as a string."""
    if "=" not in text:
        raise ConfigError([f"--set {text}: expected section.key=value"])
    key, raw = text.split("=", 1)
    keys = [k.strip() for k in key.strip().split(".") if k.strip()]
    if not keys:
        raise ConfigError([f"--set {text}: missing key before '='"])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            nxt = node.setdefault(k, {})
            if not isinstance(nxt, dict):
                raise ConfigError([f"--set {item}: '{k}' is a value, not a section"])
            node = nxt
        node[keys[-1]] = value
    return data


def save_config(config: RunConfig, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a config as TOML atomically; refuses to replace an existing file unless told to."""
    from finetune_gui.files import atomic_write_text

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting")
    atomic_write_text(path, config.to_toml())
    return path


def field_info(section: str, key: str) -> tuple[str, Any]:
    """(description, default) of a field, for tooltips and forms."""
    sect = RunConfig.model_fields[section].annotation
    f = sect.model_fields[key]  # type: ignore[union-attr]
    return f.description or "", f.get_default(call_default_factory=True)
