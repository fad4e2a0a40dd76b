"""The sections of a run config that say how a run trains: optimisation, early stopping, checkpoints, logging."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from finetune_gui.config_sections import ConfigSection


class TrainConfig(ConfigSection):
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
        "auto",
        description="Number format; auto uses bf16 autocast on GPUs with native bf16, fp16 with loss scaling on older ones, fp32 on the CPU.",
    )
    memory_format: Literal["auto", "channels_last", "contiguous"] = Field(
        "auto",
        description="Layout of CNN weights and images; auto uses channels_last for CNNs on CUDA (faster with bf16/fp16).",
    )
    compile: bool | Literal["auto"] = Field(
        False,
        description="Compile the model with torch.compile (slow first steps, faster after; falls back to eager if it fails); auto compiles CNNs on CUDA where torch.compile can run.",
    )
    seed: int = Field(42, ge=0, description="Seed for weights, shuffling and augmentation.")
    deterministic: bool = Field(False, description="Use deterministic algorithms only (slower, repeatable).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimiser steps (quick trials).")
    log_every: int = Field(10, ge=1, description="Steps between step-level reports.")
    feature_cache: Literal["auto", "off"] = Field(
        "auto",
        description="Compute the frozen layers' output once and train the layers above them from it (auto: when nothing random acts before the cut, or with feature_cache_aug_copies).",
    )
    feature_cache_ram_mb: int = Field(
        2048,
        ge=0,
        le=1_048_576,
        description="Cached features up to this size stay in memory; larger are memory-mapped.",
    )
    feature_cache_dir: str = Field(
        "", description="Folder of feature cache files (empty: .feature-cache in the runs folder)."
    )
    feature_cache_disk_mb: int = Field(
        4096,
        ge=0,
        le=1_048_576,
        description="Largest size of the feature cache folder: after writing a file, the least recently used others are deleted until it fits (0 = no limit).",
    )
    feature_cache_aug_copies: int = Field(
        0,
        ge=0,
        le=32,
        description="With random per-sample image augmentation: extract this many augmented copies of each training image once and train epoch e on copy e mod N (0 = off: live passes).",
    )
    recipe: Literal["standard", "lp-ft"] = Field(
        "standard",
        description="lp-ft: first train only the head (a linear probe, from cached features), then fine-tune the chosen layers from it at a lower LR.",
    )
    lp_epochs: int = Field(1, ge=1, le=1000, description="Epochs of the linear-probe stage of the lp-ft recipe.")
    ft_lr_mult: float = Field(
        0.1, gt=0.0, le=1.0, description="LR of the fine-tuning stage of lp-ft, as a share of train.lr."
    )
    strategy: Literal["auto", "ddp", "fsdp"] = Field(
        "auto",
        description="Under torchrun: ddp copies the model to every process; fsdp shards causal LMs too large to copy (auto: ddp).",
    )
    sync_batchnorm: bool = Field(
        False, description="Under torchrun on CUDA: BatchNorm statistics over the global batch, not each process's."
    )

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_is_a_switch_or_auto(cls, value: object) -> object:
        if isinstance(value, bool) or value == "auto":
            return value
        raise ValueError(f'must be true, false or "auto", got {value!r}')

    @model_validator(mode="after")
    def _lp_ft_leaves_epochs_to_fine_tune(self) -> TrainConfig:
        if self.recipe == "lp-ft" and self.lp_epochs >= self.epochs:
            raise ValueError(
                f"lp_epochs ({self.lp_epochs}) must be fewer than epochs ({self.epochs}): "
                "the lp-ft recipe fine-tunes in the epochs after the probe"
            )
        return self


class EarlyStoppingConfig(ConfigSection):
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


class CheckpointConfig(ConfigSection):
    output_dir: str = Field(
        "runs", description="Folder that run folders are made in (relative to the working directory)."
    )
    run_name: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", description="Run folder name; empty = preset name + time.")
    keep_last: int = Field(2, ge=1, le=100, description="Recent checkpoints kept besides the best.")
    every_n_epochs: int = Field(1, ge=1, le=1000, description="Save a checkpoint every N epochs.")
    monitor: str = Field("", description="Metric that picks the best checkpoint; empty = early_stopping.metric.")


class LoggingConfig(ConfigSection):
    tensorboard: bool = Field(
        False,
        description="Also write TensorBoard logs (scalars and hparams) into the run folder, for `tensorboard --logdir runs`.",
    )
