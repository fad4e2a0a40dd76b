"""The training loop. Reads top to bottom: data → model → freeze → optimiser → loop → evaluate → save.

`fit(config, listener, control)` starts a run; `resume(run_dir, listener, control)` continues one from its
newest usable checkpoint. Both can be called from a script, the CLI, a test or the Qt worker.
"""

from __future__ import annotations

import errno
import math
import time
import traceback
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from finetune_gui.config import RunConfig, TaskKind, load_config
from finetune_gui.core import devices
from finetune_gui.core.data import DataBundle, build_data
from finetune_gui.core.data.augment import build_batch_mixer
from finetune_gui.core.errors import ConfigError, Diverged, FinetuneError, OutOfMemory, RunStateError, StorageError
from finetune_gui.core.models import ModelBundle, build_model
from finetune_gui.core.models.freezing import (
    apply_freeze,
    count_params,
    param_groups,
    set_frozen_batchnorm_eval,
    unfreeze_next_block,
)
from finetune_gui.core.runs import (
    CheckpointInfo,
    RunDir,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    environment_record,
    latest_usable_checkpoint,
    list_checkpoints,
    load_checkpoint,
    new_run_dir,
    open_run_dir,
    rotate_checkpoints,
    save_checkpoint,
    step_tag,
)
from finetune_gui.core.tensor_files import write_safetensors
from finetune_gui.core.training.callbacks import BestTracker, check_finite
from finetune_gui.core.training.events import (
    CheckpointSaved,
    EarlyStopped,
    EpochMetrics,
    Listener,
    LogMessage,
    RunControl,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
    StopRequested,
)
from finetune_gui.core.training.forking import install_fork_repair
from finetune_gui.core.training.metrics import TaskMetrics, metric_mode
from finetune_gui.core.training.optim import build_optimizer, build_scheduler

STEP_REPORT_INTERVAL_S = 0.5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | stopped | early-stopped | failed
    best_epoch: int = -1
    val_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    error: Exception | None = None


# ---------------------------------------------------------------- sampling


class EpochSampler(Sampler[tuple[int, int]]):
    """A seeded shuffle per epoch that can start part-way through, so a resumed run sees the same order.

    It yields (index, epoch) keys; `SeededSamples` turns them into samples with their own random streams.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return iter([(i, epoch) for i in self.order()[self.start :]])

    def __len__(self) -> int:
        return max(0, self.n - self.start)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's augmentation in one epoch."""
    return ((seed * 1_000_003 + epoch) * 1_000_000_007 + index) % (2**63 - 1)


class SeededSamples(Dataset):
    """Training samples, each drawn with its own random stream seeded from (seed, epoch, index).

    Augmentation then draws the same numbers whichever DataLoader worker loads a sample and wherever a
    resumed run starts within an epoch, so num_workers and interruptions do not change the result. The
    global torch RNG (dropout, MixUp) is left as it was.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, epoch = key
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed would also seed CUDA, outside what fork_rng restores
            torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
            return self.dataset[index]


# ---------------------------------------------------------------- setup


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

    @property
    def model(self) -> nn.Module:
        return self.bundle.model


def num_outputs(task: TaskKind, data: DataBundle) -> int:
    if task.is_regression:
        return 1
    if task == TaskKind.CAUSAL_LM:
        return 0
    return len(data.labels)


def _class_weights(data: DataBundle) -> torch.Tensor:
    counts = torch.tensor([float(data.class_counts.get(lbl, 0)) for lbl in data.labels])
    weights = counts.sum() / (len(counts) * counts.clamp(min=1.0))
    return weights


def _loader(dataset, batch_size: int, data: DataBundle, cfg: RunConfig, sampler=None, train=False) -> DataLoader:
    n = len(dataset)
    workers = cfg.data.num_workers
    if workers:
        install_fork_repair()  # the GUI iterates this loader on a QThread
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        collate_fn=data.collate_fn,
        # a last batch of one sample breaks BatchNorm in training mode; drop only that one
        drop_last=train and n > batch_size and n % batch_size == 1,
        generator=torch.Generator().manual_seed(cfg.train.seed),
        persistent_workers=False,
        pin_memory=False,
    )


def prepare(config: RunConfig, log: Listener | None = None) -> Prepared:
    """Build data, model, freezing, loaders and loss for a config (no optimiser, no run folder)."""
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
    for w in warnings:
        say(LogMessage("warning", w))
    if data.problems:
        say(
            LogMessage(
                "warning", f"{len(data.problems)} data problem(s); skipped items are listed in data_problems.json"
            )
        )
    if len(data.train) == 0:
        from finetune_gui.core.errors import DataError

        raise DataError(f"{data.source}: no training samples after the split; add data or lower val/test fractions")

    apply_freeze(bundle, config.model)
    bundle.model.to(device)

    bs = config.train.batch_size
    sampler = EpochSampler(len(data.train), config.train.seed)
    train_loader = _loader(SeededSamples(data.train, config.train.seed), bs, data, config, sampler=sampler, train=True)
    val_loader = _loader(data.val, bs, data, config) if len(data.val) else None
    test_loader = _loader(data.test, bs, data, config) if len(data.test) else None

    loss_fn: nn.Module | None
    if task.is_classification:
        weight = _class_weights(data).to(device) if config.train.class_weights == "balanced" else None
        loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.train.label_smoothing)
    elif task == TaskKind.IMAGE_MULTILABEL:
        loss_fn = nn.BCEWithLogitsLoss()
    elif task.is_regression:
        loss_fn = nn.MSELoss()
    else:
        loss_fn = None

    mixer = build_batch_mixer(config.augment, len(data.labels)) if task == TaskKind.IMAGE_CLASSIFICATION else None

    batches = len(train_loader)
    steps_per_epoch = math.ceil(batches / config.train.grad_accum)
    total = steps_per_epoch * config.train.epochs
    if config.train.max_steps:
        total = min(total, config.train.max_steps)
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
        batches,
        steps_per_epoch,
        total,
        warnings,
    )


def _tokenizer_only(config: RunConfig):
    from finetune_gui.core.models.hf import load_tokenizer

    return load_tokenizer(config)


# ---------------------------------------------------------------- one batch


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def forward_batch(
    p: Prepared, batch: Any, *, train: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, int]:
    """Run one batch; returns (loss, outputs, targets, batch size)."""
    batch = _to_device(batch, p.device)
    autocast = torch.autocast(p.device.type, dtype=p.amp_dtype) if p.amp_dtype else nullcontext()
    model = p.model
    with autocast:
        if p.bundle.kind == "vision":
            images, targets = batch
            if train and p.mixer is not None:
                images, targets = p.mixer(images, targets)
            outputs = model(images)
            if p.task.is_regression:
                targets = targets.float().view_as(outputs)
            loss = p.loss_fn(outputs.float(), targets)
            return loss, outputs.detach().float(), targets.detach(), images.shape[0]
        if p.bundle.kind == "hf-sequence":
            targets = batch.pop("labels")
            outputs = model(**batch).logits
            if p.task.is_regression:
                targets = targets.float().view_as(outputs)
            loss = p.loss_fn(outputs.float(), targets)
            return loss, outputs.detach().float(), targets.detach(), outputs.shape[0]
        out = model(**batch)
        return out.loss.float(), None, batch["labels"].detach(), batch["input_ids"].shape[0]


@torch.no_grad()
def evaluate(p: Prepared, loader: DataLoader | None, control: RunControl | None = None) -> TaskMetrics | None:
    """Metrics of the model on one split (None when the split is empty)."""
    if loader is None:
        return None
    metrics = TaskMetrics(p.task, p.data.labels)
    was_training = p.model.training
    p.model.eval()
    try:
        for batch in loader:
            if control is not None:
                control.checkpoint()
            loss, outputs, targets, n = forward_batch(p, batch, train=False)
            metrics.update(outputs.cpu() if outputs is not None else None, targets.cpu(), float(loss), n)
    finally:
        p.model.train(was_training)
    return metrics


# ---------------------------------------------------------------- weights with tied tensors


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


# ---------------------------------------------------------------- the loop


class _Trainer:
    def __init__(self, config: RunConfig, run: RunDir, listener: Listener | None, control: RunControl | None):
        self.config, self.run = config, run
        self.listener = listener or (lambda e: None)
        self.control = control or RunControl()

    def emit(self, event) -> None:
        if isinstance(event, LogMessage):
            self.run.log_line(f"[{event.level}] {event.text}")
        self.listener(event)

    # -- the whole run
    def run_fit(self, resume_from: tuple[dict, dict] | None = None) -> RunResult:
        cfg, run = self.config, self.run
        p = self.p = prepare(cfg, self.emit)
        bundle, task = p.bundle, p.task
        tc = cfg.train

        # run folder records
        atomic_write_json(run.labels, {"task": task.value, "labels": p.data.labels})
        atomic_write_json(
            run.problems,
            [{"path": pr.path, "line": pr.line, "reason": pr.reason} for pr in p.data.problems],
        )
        for pr in p.data.problems[:20]:
            self.emit(LogMessage("warning", f"skipped {pr.path}{f':{pr.line}' if pr.line else ''}: {pr.reason}"))
        if not run.environment.exists():
            atomic_write_json(run.environment, environment_record(str(p.device)))

        # optimiser and schedule over every parameter that may train (gradual unfreezing adds some later)
        if cfg.model.gradual_unfreeze_every > 0:
            for q in bundle.model.parameters():
                q.requires_grad_(True)
            groups = param_groups(bundle, tc.lr, cfg.model.backbone_lr_mult, tc.weight_decay)
            apply_freeze(bundle, cfg.model)
        else:
            groups = param_groups(bundle, tc.lr, cfg.model.backbone_lr_mult, tc.weight_decay)
        optimizer = build_optimizer(tc, groups)
        schedule = build_scheduler(optimizer, tc, p.total_steps, p.steps_per_epoch)
        scaler = torch.amp.GradScaler(p.device.type) if devices.needs_grad_scaler(p.amp_dtype) else None

        es = cfg.early_stopping
        monitor = cfg.checkpoint.monitor or es.metric
        if p.val_loader is None and monitor.startswith("val_"):
            fallback = "train_" + monitor.removeprefix("val_")
            self.emit(LogMessage("warning", f"no validation split, so '{monitor}' is watched as '{fallback}'"))
            monitor = fallback
        mode = es.mode if es.mode != "auto" else metric_mode(monitor)
        best = BestTracker(monitor, mode, es.min_delta)

        epoch, batch_in_epoch, step, unfrozen = 0, 0, 0, 0
        epoch_trained = False  # True between the epoch's last step and the end of its evaluation
        train_sum, train_count = 0.0, 0
        if resume_from is not None:
            weights, state = resume_from
            load_model_weights(bundle.model, weights, str(run.root))
            epoch, batch_in_epoch, step = int(state["epoch"]), int(state["batch_in_epoch"]), int(state["step"])
            epoch_trained = bool(state.get("epoch_trained", False))
            for _ in range(int(state.get("unfrozen", 0))):
                unfreeze_next_block(bundle)
            unfrozen = int(state.get("unfrozen", 0))
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            best.load_state_dict(state["best"])
            train_sum, train_count = float(state["train_sum"]), int(state["train_count"])
            run.truncate_metrics(step)
            devices.set_rng_state(state["rng"])
            self.emit(LogMessage("info", f"resumed at epoch {epoch + 1}, step {step}"))

        trainable, total = count_params(bundle.model)
        self.emit(
            RunStarted(
                str(run.root),
                task.value,
                str(p.device),
                str(p.amp_dtype or "fp32").replace("torch.", ""),
                tc.epochs,
                p.steps_per_epoch,
                p.total_steps,
                len(p.data.train),
                len(p.data.val),
                len(p.data.test),
                tuple(p.data.labels),
                trainable,
                total,
                step,
            )
        )
        run.write_status(state="running", step=step, total_steps=p.total_steps)

        def state_now() -> dict[str, Any]:
            return {
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "epoch_trained": epoch_trained,
                "step": step,
                "unfrozen": unfrozen,
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else {},
                "best": best.state_dict(),
                "train_sum": train_sum,
                "train_count": train_count,
                "rng": devices.rng_state(),
            }

        def save() -> None:
            weights, tied = model_weights(bundle.model)
            _check_finite_weights(weights, step, schedule.current_lrs()[0])  # never save a diverged model
            info = save_checkpoint(run, step_tag(step), weights, dict(state_now(), tied=tied))
            rotate_checkpoints(run, cfg.checkpoint.keep_last)
            run.write_status(latest_checkpoint=info.weights.name, step=step)
            self.emit(CheckpointSaved(str(info.weights), epoch, step, False))

        status = "completed"
        val_metrics: dict[str, float] = {}
        model = bundle.model
        params = [q for g in optimizer.param_groups for q in g["params"]]
        started = time.monotonic()
        samples_seen, last_report, first_step = 0, 0.0, step
        try:
            while epoch < tc.epochs and (step < p.total_steps or epoch_trained):
                every = cfg.model.gradual_unfreeze_every
                if every and epoch > 0 and batch_in_epoch == 0 and epoch % every == 0 and unfrozen < epoch // every:
                    name = unfreeze_next_block(bundle)
                    unfrozen += 1
                    if name:
                        self.emit(LogMessage("info", f"epoch {epoch + 1}: unfroze {name}"))
                model.train()
                set_frozen_batchnorm_eval(model)
                p.sampler.set_epoch(epoch, batch_in_epoch * tc.batch_size)
                optimizer.zero_grad(set_to_none=True)
                epoch_start = time.monotonic()
                pending = 0
                n_batches = p.batches_per_epoch
                for batch in [] if epoch_trained else p.train_loader:  # trained already: stopped in its evaluation
                    loss, _, _, n = forward_batch(p, batch, train=True)
                    if tc.l1 > 0:
                        loss = loss + tc.l1 * sum(q.abs().sum() for q in params if q.requires_grad and q.dim() > 1)
                    scaled = loss / tc.grad_accum
                    (scaler.scale(scaled) if scaler else scaled).backward()
                    pending += 1
                    batch_in_epoch += 1
                    samples_seen += n
                    loss_value = float(loss.detach())
                    check_finite(loss_value, step + 1, schedule.current_lrs()[0])  # before it can reach the weights
                    train_sum += loss_value * n
                    train_count += n
                    if pending < tc.grad_accum and batch_in_epoch < n_batches:
                        continue
                    pending = 0
                    now = time.monotonic()
                    logged = (step + 1) % tc.log_every == 0 or step + 1 == p.total_steps
                    report = logged or now - last_report > STEP_REPORT_INTERVAL_S
                    # the gradient norm costs ~2% of a step: measured on the logged steps only, not on the
                    # extra reports that keep a slow run's display fresh
                    grad_norm = self._optimizer_step(optimizer, scaler, params, tc.grad_clip, measure=logged)
                    schedule.step()
                    step += 1
                    lr = schedule.current_lrs()[0]
                    if report:
                        last_report = now
                        rate = samples_seen / max(now - started, 1e-9)
                        eta = (p.total_steps - step) * (now - started) / max(step - first_step, 1)
                        self.emit(StepMetrics(epoch, step, p.total_steps, loss_value, lr, grad_norm, rate, eta))
                    if step >= p.total_steps:
                        break
                    self.control.checkpoint(on_pause=lambda: self.emit(LogMessage("info", "paused")))
                # ---- end of epoch (a stop during the evaluation saves "trained, not yet evaluated")
                epoch_trained = True
                # a finite loss can still hide NaN weights (a NaN gradient): stop here, before evaluating them
                _check_finite_weights(model_weights(model)[0], step, schedule.current_lrs()[0])
                train_loss = train_sum / max(train_count, 1)
                metrics = {"train_loss": train_loss}
                val = evaluate(p, p.val_loader, self.control)
                batch_in_epoch, epoch_trained = 0, False
                train_sum, train_count = 0.0, 0
                if val is not None:
                    val_metrics = {f"val_{k}": v for k, v in val.compute().items()}
                    metrics.update(val_metrics)
                schedule.epoch_end(metrics.get("val_loss", train_loss))
                lr = schedule.current_lrs()[0]
                epoch_done = epoch
                epoch += 1
                row = {
                    "epoch": epoch,
                    "step": step,
                    "lr": lr,
                    **metrics,
                    "time_s": round(time.monotonic() - epoch_start, 3),
                }
                run.append_metrics(row)
                self.emit(EpochMetrics(epoch_done, step, metrics, lr, time.monotonic() - epoch_start))
                if monitor not in metrics:
                    raise ConfigError(
                        [
                            f"early_stopping.metric: '{monitor}' is not logged for this task; "
                            f"logged metrics: {', '.join(sorted(metrics))}"
                        ]
                    )
                if best.update(metrics[monitor], epoch_done):
                    weights, tied = model_weights(model)
                    _check_finite_weights(weights, step, lr)
                    info = save_checkpoint(
                        run,
                        "best",
                        weights,
                        {"epoch": epoch_done, "step": step, "metric": monitor, "value": metrics[monitor], "tied": tied},
                    )
                    self.emit(CheckpointSaved(str(info.weights), epoch_done, step, True))
                if epoch % cfg.checkpoint.every_n_epochs == 0 or epoch == tc.epochs or step >= p.total_steps:
                    save()
                if es.enabled and best.epochs_since_best >= es.patience:
                    status = "early-stopped"
                    self.emit(EarlyStopped(epoch_done, monitor, float(best.best_value), best.best_epoch))
                    break
        except StopRequested:
            status = "stopped"
            save()
            run.write_status(state="stopped", step=step)
            self.emit(LogMessage("info", f"stopped at step {step}; `finetune-gui resume {run.root}` continues"))
            return RunResult(run.root, status, best.best_epoch, val_metrics, {})

        # ---- final evaluation with the best weights
        restore = es.restore_best if es.enabled else True
        best_ckpt = run.checkpoints / "best.safetensors"
        if restore and best_ckpt.exists() and best.best_epoch >= 0:
            try:
                weights, _ = load_checkpoint(CheckpointInfo(best_ckpt, run.checkpoints / "best.state.pt", step))
            except RunStateError as e:
                self.emit(
                    LogMessage(
                        "warning", f"the best checkpoint cannot be used ({e}); the final weights are the last epoch's"
                    )
                )
            else:
                load_model_weights(model, weights, str(best_ckpt))
                self.emit(LogMessage("info", f"restored the best weights (epoch {best.best_epoch + 1}, {monitor})"))
                best_val = evaluate(p, p.val_loader)
                if best_val is not None:
                    val_metrics = {f"val_{k}": v for k, v in best_val.compute().items()}
        split, loader = ("test", p.test_loader) if p.test_loader is not None else ("val", p.val_loader)
        test_metrics: dict[str, float] = {}
        ev = evaluate(p, loader)
        report: dict[str, Any] = {"split": split, "best_epoch": best.best_epoch, "monitor": monitor}
        if ev is not None:
            test_metrics = {f"test_{k}": v for k, v in ev.compute().items()}
            report.update(ev.report())
        atomic_write_json(run.evaluation, report)
        row = {"epoch": epoch, "step": step, "split": split, **test_metrics}
        run.append_metrics(row)
        weights, tied = model_weights(model)
        atomic_write(run.final_weights, lambda f: write_safetensors(f, weights))
        run.write_status(state=status, step=step, best_epoch=best.best_epoch)
        self.emit(RunFinished(str(run.root), status, best.best_epoch, val_metrics, test_metrics))
        return RunResult(run.root, status, best.best_epoch, val_metrics, test_metrics)

    @staticmethod
    def _optimizer_step(optimizer, scaler, params, clip: float, measure: bool) -> float:
        """One optimiser step; returns the gradient norm (NaN when not measured this step)."""
        if scaler is not None:
            scaler.unscale_(optimizer)
        grads = [q.grad for q in params if q.grad is not None]
        norm = torch.full((), float("nan"))
        if clip > 0:
            norm = torch.nn.utils.clip_grad_norm_([q for q in params if q.grad is not None], clip)
        elif grads and measure:
            norm = torch.nn.utils.get_total_norm(grads)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(norm)


def _snapshot_config(config: RunConfig) -> RunConfig:
    """A copy whose file paths are absolute, so the run folder's config works from anywhere."""
    snap = config.model_copy(deep=True)
    if snap.data.path:
        snap.data.path = str(config.resolve(config.data.path))
    if snap.model.weights_path:
        snap.model.weights_path = str(config.resolve(config.model.weights_path))
    local_model = config.resolve(config.model.name)
    if local_model.exists():
        snap.model.name = str(local_model)
    return snap


def _check_finite_weights(weights: dict[str, torch.Tensor], step: int, lr: float) -> None:
    """Raise Diverged when any weight is NaN or infinite (a finite loss can hide that for a step)."""
    floats = [t for t in weights.values() if t.is_floating_point()]
    if not floats or math.isfinite(float(torch.nn.utils.get_total_norm(floats))):  # one fused pass over all weights
        return
    bad = [k for k, t in weights.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise Diverged(
            f"the weights became NaN or infinite by step {step} (learning rate {lr:.3g}; {bad[0]}"
            f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}); training was stopped and the last finite "
            "checkpoint kept. Try a learning rate 3-10x lower, gradient clipping (train.grad_clip = 1.0), or fp32 "
            "precision."
        )


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _last_checkpoint_note(run: RunDir, diverged: bool = False) -> str:
    try:
        complete = list_checkpoints(run)
    except OSError:
        complete = []
    if diverged:
        if not complete:
            return "No checkpoint was saved before it diverged."
        return f"The last finite checkpoint is checkpoints/{complete[-1].weights.name}."
    if not complete:
        return "No checkpoint was complete yet, so the run cannot be resumed; start it again."
    return (
        f"The last complete checkpoint, checkpoints/{complete[-1].weights.name}, is intact: "
        f"`finetune-gui resume {run.root}` continues from it."
    )


def storage_error(e: OSError, run: RunDir) -> StorageError:
    what = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "the file is larger than this file system or process allows",
        errno.EROFS: "the disk is read-only",
    }.get(e.errno or 0, e.strerror or str(e))
    where = f" ({e.filename})" if e.filename else ""
    return StorageError(
        f"cannot write to the run folder {run.root}: {what}{where}. Free some space (checkpoints of this model "
        f"need about {_checkpoint_size_note(run)}) or set checkpoint.output_dir to another disk. "
        + _last_checkpoint_note(run)
    )


def _checkpoint_size_note(run: RunDir) -> str:
    sizes = []
    for info in list_checkpoints(run)[-1:]:
        for f in (info.weights, info.state):
            try:
                sizes.append(f.stat().st_size)
            except OSError:
                pass
    return f"{sum(sizes) / 2**20:.0f} MB each" if sizes else "as much as the model's weights, twice over"


def _guarded(trainer: _Trainer, resume_from=None) -> RunResult:
    try:
        try:
            return trainer.run_fit(resume_from)
        except Diverged as e:
            return _failed(trainer, Diverged(f"{e} {_last_checkpoint_note(trainer.run, diverged=True)}"), "")
        except (FinetuneError, ConfigError) as e:
            return _failed(trainer, e, "")
        except OSError as e:
            if e.errno in _STORAGE_ERRNOS:
                return _failed(trainer, storage_error(e, trainer.run), "")
            _failed(trainer, e, traceback.format_exc())
            raise
        except Exception as e:
            if not devices.is_oom(e):
                _failed(trainer, e, traceback.format_exc())
                raise
        # out of memory: the failed step's tensors went with the exception; find a size that fits
        devices.release_memory()
        return _failed(trainer, _out_of_memory(trainer), "")
    finally:
        trainer.p = None  # type: ignore[assignment]
        devices.release_memory()


def _out_of_memory(trainer: _Trainer) -> OutOfMemory:
    """The OOM message, with a batch size that fits found by trying smaller steps on the run's own model."""
    bs = trainer.config.train.batch_size
    what = f"the device ran out of memory at batch size {bs}"
    shrink = "a smaller data.image_size or data.max_length, or freezing more of the model (model.freeze)"
    p = getattr(trainer, "p", None)
    if p is None or bs <= 1:
        return OutOfMemory(
            f"{what}; try {'train.batch_size = ' + str(max(1, bs // 2)) + ' or ' if bs > 1 else ''}{shrink}"
        )
    from finetune_gui.core.training.batch_size import search_with

    trainer.emit(LogMessage("info", f"{what}; trying smaller batches to find one that fits"))
    try:
        found = search_with(p, start=max(1, bs // 2), max_batch_size=bs - 1, max_trials=6)
    except OutOfMemory as e:
        return OutOfMemory(f"{what}; {e}")
    except Exception:  # noqa: BLE001 - the suggestion is a bonus; the plain one below still helps
        return OutOfMemory(f"{what}; try train.batch_size = {bs // 2} or {shrink}")
    tried = ", ".join(f"{n} {'fits' if ok else 'does not'}" for n, ok in found.tried)
    return OutOfMemory(
        f"{what}; batch size {found.batch_size} fits ({tried}): set train.batch_size = "
        f"{found.batch_size} and start again (or `finetune-gui find-batch-size` to search upwards too)"
    )


def _failed(trainer: _Trainer, e: BaseException, details: str) -> RunResult:
    run = trainer.run
    message = str(e)
    try:
        state = "diverged" if isinstance(e, Diverged) else "failed"
        run.write_status(state=state, error=type(e).__name__, message=message)
        run.log_line(f"[error] {type(e).__name__}: {message}\n{details}")
    except OSError:
        pass
    trainer.listener(RunFailed(str(run.root), type(e).__name__, message, details))
    return RunResult(run.root, "failed", error=e if isinstance(e, (FinetuneError, ConfigError)) else None)


def fit(
    config: RunConfig,
    listener: Listener | None = None,
    control: RunControl | None = None,
    *,
    output_dir: str | Path | None = None,
) -> RunResult:
    """Train a model as the config says, in a new run folder. Failures the user can act on are returned
    as a RunResult with status "failed" (and a RunFailed event); bugs are reported and re-raised."""
    out = Path(output_dir) if output_dir is not None else Path(config.checkpoint.output_dir)
    snap = _snapshot_config(config)
    try:
        run = new_run_dir(out, config.checkpoint.run_name or config.name)
        atomic_write_text(run.config, snap.to_toml())
    except OSError as e:
        raise StorageError(
            f"cannot make a run folder in {out.resolve()}: {e.strerror or e}; free some space or set "
            "checkpoint.output_dir to a folder you can write to"
        ) from None
    return _guarded(_Trainer(snap, run, listener, control))


def resume(run_dir: str | Path, listener: Listener | None = None, control: RunControl | None = None) -> RunResult:
    """Continue a stopped or interrupted run from its newest checkpoint that loads and checks out."""
    run = open_run_dir(run_dir)
    config = load_config(run.config)
    info, weights, state, skipped = latest_usable_checkpoint(run)
    trainer = _Trainer(config, run, listener, control)
    for reason in skipped:
        trainer.emit(LogMessage("warning", f"passed over a damaged checkpoint: {reason}"))
    return _guarded(trainer, (weights, state))
