"""Everything a run needs, built from a config: data, model, freezing, loaders and the loss.

Used by the training loop, the LR finder, the batch-size search and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core import devices, plan
from finetune_gui.core.data import DataBundle, build_data
from finetune_gui.core.data.augment import build_batch_mixer
from finetune_gui.core.data.loader_settings import LoaderSettings, choose_loader_settings
from finetune_gui.core.distributed.context import SINGLE, DistContext
from finetune_gui.core.errors import DataError
from finetune_gui.core.models import ModelBundle, build_model
from finetune_gui.core.models.freezing import apply_freeze
from finetune_gui.core.models.head_init import start_regression_head_at_mean
from finetune_gui.core.plan import IMAGENET_MEAN, IMAGENET_STD
from finetune_gui.core.training.events import Listener, LogMessage
from finetune_gui.core.training.forking import install_fork_repair
from finetune_gui.core.training.sampling import EpochSampler, SeededSamples
from finetune_gui.core.training.speed import SpeedPlan, is_cnn, make_ready, plan_speed


@dataclass
class Prepared:
    """Everything a run needs, built from a config. Also used by the LR finder and the benchmark."""

    config: RunConfig
    device: torch.device
    amp_dtype: torch.dtype | None
    data: DataBundle
    bundle: ModelBundle
    task: TaskKind
    train_loader: DataLoader
    val_loader: DataLoader | None
    test_loader: DataLoader | None
    sampler: EpochSampler
    loss_fn: nn.Module | None
    mixer: Any
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    warnings: list[str] = field(default_factory=list)
    speed: SpeedPlan | None = None
    runner: Callable[..., Any] | None = None  # what a batch goes through: the model, or it compiled
    tail: nn.Module | None = None  # set by the feature cache: what runs on its batches instead of the model
    ddp: nn.Module | None = None  # set under torchrun: the model in DistributedDataParallel, for training steps
    dist: DistContext = SINGLE  # which process of the job this is
    strategy: str = "single"  # "single", or under torchrun "ddp" or "fsdp"
    tied: tuple[str, ...] = ()  # under FSDP: the tied weights' names, noted before sharding hid the ties

    @property
    def model(self) -> nn.Module:
        return self.bundle.model


def num_outputs(task: TaskKind, data: DataBundle) -> int:
    """The head's outputs for this data (plan.num_outputs)."""
    return plan.num_outputs(task, len(data.labels))


def class_weights(data: DataBundle) -> torch.Tensor:
    """Per-class loss weights inversely proportional to the class's share of the training split."""
    counts = torch.tensor([float(data.class_counts.get(lbl, 0)) for lbl in data.labels])
    weights = counts.sum() / (len(counts) * counts.clamp(min=1.0))
    return weights


def make_loader(
    dataset, batch_size: int, data: DataBundle, cfg: RunConfig, sampler=None, train=False, settings=None,
    batch_sampler=None,
) -> DataLoader:  # fmt: skip
    """A DataLoader as the engine uses it: seeded, the data's collate function, and plan's drop-last rule.

    settings: a LoaderSettings (default: data.num_workers workers, nothing else); batch_sampler: one that
    yields whole batches (then batch_size and sampler are not used)."""
    n = len(dataset)
    s = settings or LoaderSettings(num_workers=cfg.data.num_workers or 0)
    if s.num_workers:
        install_fork_repair()  # the GUI iterates this loader on a QThread
    batching: dict[str, Any] = {"batch_sampler": batch_sampler}
    if batch_sampler is None:
        batching = {"batch_size": batch_size, "sampler": sampler, "drop_last": train and plan.drops_last_batch(n, batch_size)}  # fmt: skip
    return DataLoader(
        dataset,
        **batching,
        shuffle=False,
        num_workers=s.num_workers,
        collate_fn=data.collate_fn,
        generator=torch.Generator().manual_seed(cfg.train.seed),
        persistent_workers=s.persistent_workers,
        pin_memory=s.pin_memory,
        prefetch_factor=s.prefetch_factor,
    )


def prepare(config: RunConfig, log: Listener | None = None, *, compile_model: bool = False) -> Prepared:
    """Build data, model, freezing, loaders and loss for a config (no optimiser, no run folder).

    `compile_model` honours train.compile (the training loop asks for it; the LR finder and the batch-size
    search do not, to spare them the compile time)."""
    say = log or (lambda e: None)
    task = config.task.kind
    device = devices.pick_device(config.train.device)
    amp_dtype = devices.autocast_dtype(device, config.train.precision)
    devices.seed_everything(config.train.seed, config.train.deterministic)

    warnings: list[str] = []
    if task.is_image:
        data = build_data(config, image_size=config.data.image_size)
        bundle = build_model(config, num_outputs(task, data))
        if (tuple(bundle.mean), tuple(bundle.std)) != (IMAGENET_MEAN, IMAGENET_STD):
            data = build_data(config, image_size=bundle.image_size, mean=bundle.mean, std=bundle.std)
    elif task == TaskKind.CAUSAL_LM:
        # read the data with the tokenizer alone first, so data that cannot train is refused before the model
        # loads; read it again only if the model's tokenizer pads differently (a [PAD] token was added)
        from finetune_gui.core.data.common import pad_id_of

        tokenizer = _tokenizer_only(config)
        data = build_data(config, tokenizer=tokenizer)
        bundle = build_model(config, 0)
        if pad_id_of(bundle.tokenizer) != pad_id_of(tokenizer) or len(bundle.tokenizer) != len(tokenizer):
            data = build_data(config, tokenizer=bundle.tokenizer)
    else:
        # the tokenizer comes with the model, the label count with the data: read the data with the tokenizer first
        data = build_data(config, tokenizer=_tokenizer_only(config))
        bundle = build_model(config, num_outputs(task, data))
    warnings += bundle.warnings
    if plan.freezing_for_weights(config.model, bundle.random_init) is not None:  # the config said head-only
        warnings.append(plan.FROZEN_RANDOM_BACKBONE)
    for w in warnings:
        say(LogMessage("warning", w))
    if data.problems:
        say(
            LogMessage(
                "warning", f"{len(data.problems)} data problem(s); skipped items are listed in data_problems.json"
            )
        )
    if len(data.train) == 0:
        raise DataError(f"{data.source}: no training samples after the split; add data or lower val/test fractions")

    if task.is_regression and start_regression_head_at_mean(bundle, getattr(data.train, "targets", [])):
        say(LogMessage("info", "the regression head starts at the mean of the training targets"))
    apply_freeze(bundle, config.model)
    bundle.model.to(device)
    speed = plan_speed(config.train, device.type, amp_dtype, task.is_image and is_cnn(bundle.model))
    runner = make_ready(bundle.model, speed if compile_model else replace(speed, compile=False), say)

    bs = config.train.batch_size
    sampler = EpochSampler(len(data.train), config.train.seed)
    loading = loader_settings_for(config, data, device)
    train_loader = make_loader(
        SeededSamples(data.train, config.train.seed), bs, data, config, sampler=sampler, train=True, settings=loading
    )
    short = replace(loading, persistent_workers=False)  # evaluation's workers go when its pass ends
    val_loader = make_loader(data.val, bs, data, config, settings=short) if len(data.val) else None
    test_loader = make_loader(data.test, bs, data, config, settings=short) if len(data.test) else None
    reading = [data.input_pipeline.describe()] if data.input_pipeline is not None else []
    say(LogMessage("info", "input pipeline: " + "; ".join([*reading, loading.describe()])))

    loss_fn: nn.Module | None
    if task.is_classification:
        weight = class_weights(data).to(device) if config.train.class_weights == "balanced" else None
        loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.train.label_smoothing)
    elif task == TaskKind.IMAGE_MULTILABEL:
        loss_fn = nn.BCEWithLogitsLoss()
    elif task.is_regression:
        loss_fn = nn.MSELoss()
    else:
        loss_fn = None

    mixer = build_batch_mixer(config.augment, len(data.labels)) if task == TaskKind.IMAGE_CLASSIFICATION else None

    steps = plan.plan_steps(config.train, len(train_loader))
    return Prepared(
        config,
        device,
        amp_dtype,
        data,
        bundle,
        task,
        train_loader,
        val_loader,
        test_loader,
        sampler,
        loss_fn,
        mixer,
        steps.batches_per_epoch,
        steps.steps_per_epoch,
        steps.total_steps,
        warnings,
        speed,
        runner,
    )


def loader_settings_for(config: RunConfig, data: DataBundle, device: torch.device) -> LoaderSettings:
    """The loaders' settings for this machine and data (data.num_workers, if set, fixes the worker count)."""
    pipeline = data.input_pipeline
    return choose_loader_settings(
        config.data.num_workers,
        device_type=device.type,
        decoded=pipeline.where if pipeline is not None else "tokens",
        samples=len(data.train) + len(data.val),
    )


def _tokenizer_only(config: RunConfig):
    from finetune_gui.core.models.hf import load_tokenizer

    return load_tokenizer(config)
