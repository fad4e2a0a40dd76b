"""The training loop. A run goes through its phases top to bottom: set up → restore (when resuming) → train
and evaluate each epoch → final evaluation with the best weights. A stop lands between two steps and saves.

`fit(config, listener, control)` starts a run; `resume(run_dir, listener, control)` continues one from its
newest usable checkpoint. Both can be called from a script, the CLI, a test or the Qt worker. Hooks
(`hooks.TrainingHook`) plug into the loop's named events; `hooks=None` gives the diagnostics, `()` none.
"""

from __future__ import annotations

import time
import traceback
from functools import partial
from pathlib import Path
from typing import Any

import torch

from finetune_gui.config import RunConfig, load_config
from finetune_gui.core import devices
from finetune_gui.core.checkpoints import (
    CheckpointInfo,
    latest_usable_checkpoint,
    load_checkpoint,
)
from finetune_gui.core.diagnostics.hook import DiagnosticsHook
from finetune_gui.core.distributed.context import SINGLE, DistContext, any_rank, from_env, from_main, join, leave
from finetune_gui.core.distributed.ddp import (
    accumulating,
    distribute,
    global_mean,
    loss_units,
    rewrapped,
    run_dir_on_rank,
    share_weight,
)
from finetune_gui.core.distributed.fsdp import say_when_alone
from finetune_gui.core.errors import ConfigError, Diverged, FinetuneError, RunStateError, StorageError
from finetune_gui.core.features.cache import attach_feature_cache
from finetune_gui.core.models.freezing import (
    count_params,
    set_frozen_batchnorm_eval,
    unfreeze_next_block,
)
from finetune_gui.core.runs import RunDir, environment_record, new_run_dir, open_run_dir, snapshot_config
from finetune_gui.core.tensor_files import write_safetensors
from finetune_gui.core.training.batches import evaluate, forward_batch
from finetune_gui.core.training.callbacks import BestTracker, check_finite, check_finite_weights, check_monitored
from finetune_gui.core.training.events import (
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
from finetune_gui.core.training.failures import STORAGE_ERRNOS, last_checkpoint_note, out_of_memory, storage_error
from finetune_gui.core.training.hooks import Hooks, StepEnd, TrainingHook
from finetune_gui.core.training.loop_state import LoopState
from finetune_gui.core.training.metrics import metric_mode
from finetune_gui.core.training.optim import build_optimizer, build_scheduler, optimizer_step
from finetune_gui.core.training.prepare import Prepared, prepare
from finetune_gui.core.training.recipe import LpFt, is_lp_ft, optimiser_groups, probe_stage
from finetune_gui.core.training.result import RunResult
from finetune_gui.core.training.saving import Checkpointing
from finetune_gui.core.training.speed import train_through
from finetune_gui.core.training.tensorboard_log import TensorBoardHook
from finetune_gui.files import atomic_write, atomic_write_json, atomic_write_text

STEP_REPORT_INTERVAL_S = 0.5


class Trainer(Checkpointing):
    """One run in its run folder. `run()` reads as the list of phases; each phase is a method below it."""

    def __init__(
        self,
        config: RunConfig,
        run: RunDir,
        listener: Listener | None,
        control: RunControl | None,
        hooks: tuple[TrainingHook, ...] | list[TrainingHook] | None = None,
        dist: DistContext = SINGLE,
    ):
        self.config, self.run_dir, self.dist = config, run, dist
        self.listener = (listener if dist.is_main else None) or (lambda e: None)  # rank 0 alone reports
        self.control = control or RunControl()
        chosen = [DiagnosticsHook()] if hooks is None else list(hooks) if dist.is_main else []
        self.hooks = Hooks(chosen + [TensorBoardHook()] if config.logging.tensorboard else chosen)
        self.state = LoopState()
        self.p: Prepared | None = None
        self.recipe: LpFt | None = None
        self.status = "completed"
        self.val_metrics: dict[str, float] = {}
        self.test_metrics: dict[str, float] = {}

    def emit(self, event) -> None:
        if isinstance(event, LogMessage):
            self.run_dir.log_line(f"[{event.level}] {event.text}")
        elif isinstance(event, StepMetrics):  # kept, so a reopened or resumed run plots its earlier steps
            self.run_dir.append_step(event.step, event.epoch, event.loss, event.lr, event.grad_norm)
        self.listener(event)

    def run(self, resume_from: tuple[dict, dict] | None = None) -> RunResult:
        self.set_up()
        if resume_from is not None:
            self.restore(*resume_from)
        self.announce()
        try:
            while self.state.epoch < self.config.train.epochs and (
                self.state.step < self.p.total_steps or self.state.epoch_trained
            ):
                self.train_epoch()
                if self.end_of_epoch() == "early-stopped":
                    break
        except StopRequested:
            return self.stopped()
        return self.final_evaluation()

    # ---------------------------------------------------------------- phases

    def set_up(self) -> None:
        """Data, model, run-folder records, optimiser, schedule and the metric that picks the best epoch."""
        cfg, run = self.config, self.run_dir
        if is_lp_ft(cfg):  # stage 1 trains the head alone (from cached features when they apply)
            live = self.ready(prepare(probe_stage(cfg), self.emit, compile_model=not self.dist.enabled))
            probe = live if self.dist.enabled else attach_feature_cache(live, run.root.parent, self.emit)
            self.recipe = LpFt(cfg, live, probe, self.emit)
            p = self.p = self.recipe.probe
        else:
            p = self.p = self.ready(prepare(cfg, self.emit, compile_model=not self.dist.enabled), cached=True)
        if self.dist.is_main:
            atomic_write_json(run.labels, {"task": p.task.value, "labels": p.data.labels})
            atomic_write_json(run.problems, [{"path": e.path, "line": e.line, "reason": e.reason} for e in p.data.problems])  # fmt: skip
            if not run.environment.exists():
                atomic_write_json(run.environment, environment_record(str(p.device)))
        for e in p.data.problems[:20]:
            self.emit(LogMessage("warning", f"skipped {e.path}{f':{e.line}' if e.line else ''}: {e.reason}"))

        tc = cfg.train
        self.optimizer = build_optimizer(tc, optimiser_groups(p.bundle, cfg))
        self.schedule = build_scheduler(self.optimizer, tc, p.total_steps, p.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(p.device.type) if devices.needs_grad_scaler(p.amp_dtype) else None
        self.params = [q for g in self.optimizer.param_groups for q in g["params"]]

        es = cfg.early_stopping
        monitor = cfg.checkpoint.monitor or es.metric
        self.early_stopping = es.enabled
        if p.val_loader is None and monitor.startswith("val_"):
            fallback = "train_" + monitor.removeprefix("val_")
            self.emit(LogMessage("warning", f"no validation split, so '{monitor}' is watched as '{fallback}'"))
            monitor = fallback
            if es.enabled:  # the training loss says nothing about overfitting, the reason to stop early
                self.early_stopping = False
                self.emit(LogMessage("info", f"early stopping is off: it needs a validation split ({monitor} keeps falling while the model overfits); all {cfg.train.epochs} epochs run"))  # fmt: skip
        self.monitor = monitor
        self.best = BestTracker(monitor, es.mode if es.mode != "auto" else metric_mode(monitor), es.min_delta)

    def ready(self, p: Prepared, cached: bool = False) -> Prepared:
        """Under torchrun, `p` shared between the processes; alone, from cached features when they apply."""
        if self.dist.enabled:
            return distribute(p, self.dist, self.emit)
        say_when_alone(self.config.train.strategy, self.emit)
        return attach_feature_cache(p, self.run_dir.root.parent, self.emit) if cached else p

    def restore(self, weights: dict[str, Any], state: dict[str, Any]) -> None:
        """Continue from a checkpoint: weights, loop position, optimiser, schedule and random state."""
        self.load_weights(weights, str(self.run_dir.root))
        self.state.load_state_dict(state)
        for _ in range(self.state.unfrozen):
            unfreeze_next_block(self.p.bundle)
        self.load_optimizer(state)
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.best.load_state_dict(state["best"])
        self.run_dir.truncate_metrics(self.state.step)
        devices.set_rng_state(state["rng"])
        self.emit(LogMessage("info", f"resumed at epoch {self.state.epoch + 1}, step {self.state.step}"))

    def announce(self) -> None:
        p, tc = self.p, self.config.train
        trainable, total = count_params(p.model)
        data = p.data
        precision = str(p.amp_dtype or "fp32").replace("torch.", "")
        sizes = len(data.train), len(data.val), len(data.test)
        self.emit(
            RunStarted(str(self.run_dir.root), p.task.value, str(p.device), precision, tc.epochs, p.steps_per_epoch,
                       p.total_steps, *sizes, tuple(data.labels), trainable, total, self.state.step)
        )  # fmt: skip
        self.run_dir.write_status(state="running", step=self.state.step, total_steps=p.total_steps)
        self.started, self.first_step = time.monotonic(), self.state.step
        self.samples_seen, self.last_report, self.paused_s = 0, 0.0, 0.0

    def train_epoch(self) -> None:
        """Train the rest of the current epoch (all of it, unless a resumed run starts part-way through)."""
        self.unfreeze_on_schedule()
        p, tc, s = self.p, self.config.train, self.state
        p = self.p = rewrapped(p)  # under DDP: the parameters that train now are the ones kept in step
        p.model.train()
        set_frozen_batchnorm_eval(p.model)
        p.sampler.set_epoch(s.epoch, s.batch_in_epoch * tc.batch_size)
        self.optimizer.zero_grad(set_to_none=True)
        self.epoch_start = time.monotonic()
        pending = 0
        for batch in [] if s.epoch_trained else p.train_loader:  # trained already: stopped in its evaluation
            sync = pending + 1 == tc.grad_accum or s.batch_in_epoch + 1 == p.batches_per_epoch  # DDP: average now
            train_through(p.runner, partial(self.train_batch, sync=sync), batch)  # a failed compile redoes it eagerly
            pending += 1
            if pending < tc.grad_accum and s.batch_in_epoch < p.batches_per_epoch:
                continue
            pending = 0
            self.optimizer_step_and_report()
            if s.step >= p.total_steps:
                break
            self.between_steps()
        s.epoch_trained = True  # a stop during the evaluation saves "trained, not yet evaluated"

    def end_of_epoch(self) -> str:
        """Evaluate, log the epoch, keep the best weights, save on schedule; "early-stopped" ends the run."""
        p, cfg, s = self.p, self.config, self.state
        # a finite loss can still hide NaN weights (a NaN gradient): stop here, before evaluating them
        check_finite_weights(self.current_weights()[0], s.step, self.schedule.current_lrs()[0])
        metrics = {"train_loss": s.train_loss}
        val = evaluate(p, p.val_loader, None if self.dist.enabled else self.control)
        done = s.epoch
        s.next_epoch()
        if val is not None:
            self.val_metrics = {f"val_{k}": v for k, v in val.compute().items()}
            metrics.update(self.val_metrics)
        self.schedule.epoch_end(metrics.get("val_loss", metrics["train_loss"]))
        lr = self.schedule.current_lrs()[0]
        elapsed = time.monotonic() - self.epoch_start
        self.run_dir.append_metrics(
            {"epoch": s.epoch, "step": s.step, "lr": lr, **metrics, "time_s": round(elapsed, 3)}
        )
        self.emit(EpochMetrics(done, s.step, metrics, lr, elapsed))
        self.hooks.on_epoch_end(self, done, metrics)
        check_monitored(self.monitor, metrics, val is not None, s.step, lr)
        if self.best.update(metrics[self.monitor], done):
            self.save_best(done, metrics[self.monitor], lr)
        if s.epoch % cfg.checkpoint.every_n_epochs == 0 or s.epoch == cfg.train.epochs or s.step >= p.total_steps:
            self.save()
        es = cfg.early_stopping
        if from_main(self.dist, self.early_stopping and self.best.epochs_since_best >= es.patience):
            self.status = "early-stopped"
            self.emit(EarlyStopped(done, self.monitor, float(self.best.best_value), self.best.best_epoch))
            return "early-stopped"
        return "go on"

    def stopped(self) -> RunResult:
        """A stop was asked for: save where the loop is, so `resume` continues from exactly here."""
        self.status = "stopped"
        self.save()
        self.run_dir.write_status(state="stopped", step=self.state.step)
        self.hooks.on_run_end(self, self.status)
        self.emit(LogMessage("info", f"stopped at step {self.state.step}; `finetune-gui resume {self.run_dir.root}` continues"))  # fmt: skip
        return RunResult(self.run_dir.root, self.status, self.best.best_epoch, self.val_metrics, {})

    def final_evaluation(self) -> RunResult:
        """Restore the best weights (unless told not to), evaluate the test split, write the final model."""
        p, run, s, best = self.p, self.run_dir, self.state, self.best
        es = self.config.early_stopping
        best_ckpt = run.checkpoints / "best.safetensors"
        if (es.restore_best if self.early_stopping else True) and best_ckpt.exists() and best.best_epoch >= 0:
            try:
                weights, _ = load_checkpoint(CheckpointInfo(best_ckpt, run.checkpoints / "best.state.pt", s.step))
            except RunStateError as e:
                self.emit(LogMessage("warning", f"the best checkpoint cannot be used ({e}); the final weights are the last epoch's"))  # fmt: skip
            else:
                self.load_weights(weights, str(best_ckpt))
                self.emit(LogMessage("info", f"restored the best weights (epoch {best.best_epoch + 1}, {self.monitor})"))  # fmt: skip
                best_val = evaluate(p, p.val_loader)
                if best_val is not None:
                    self.val_metrics = {f"val_{k}": v for k, v in best_val.compute().items()}
        split, loader = ("test", p.test_loader) if p.test_loader is not None else ("val", p.val_loader)
        test_metrics: dict[str, float] = {}
        ev = evaluate(p, loader)
        report: dict[str, Any] = {"split": split, "best_epoch": best.best_epoch, "monitor": self.monitor}
        if ev is not None:
            test_metrics = self.test_metrics = {f"test_{k}": v for k, v in ev.compute().items()}
            report.update(ev.report())
        run.append_metrics({"epoch": s.epoch, "step": s.step, "split": split, **test_metrics})
        weights, _ = self.current_weights()
        if self.dist.is_main:
            atomic_write_json(run.evaluation, report)
            atomic_write(run.final_weights, lambda f: write_safetensors(f, weights))
        run.write_status(state=self.status, step=s.step, best_epoch=best.best_epoch)
        self.hooks.on_run_end(self, self.status)  # before RunFinished: what listeners read then is complete
        self.emit(RunFinished(str(run.root), self.status, best.best_epoch, self.val_metrics, test_metrics))
        return RunResult(run.root, self.status, best.best_epoch, self.val_metrics, test_metrics)

    # ---------------------------------------------------------------- steps

    def unfreeze_on_schedule(self) -> None:
        """Gradual unfreezing: one more block at the start of every K-th epoch; lp-ft's stage for this epoch."""
        every, s = self.config.model.gradual_unfreeze_every, self.state
        if self.recipe is not None:
            self.p = self.recipe.prepared(s.epoch)
        if every and s.epoch > 0 and s.batch_in_epoch == 0 and s.epoch % every == 0 and s.unfrozen < s.epoch // every:
            name = unfreeze_next_block(self.p.bundle)
            s.unfrozen += 1
            if name:
                self.emit(LogMessage("info", f"epoch {s.epoch + 1}: unfroze {name}"))

    def train_batch(self, batch: Any, sync: bool = True) -> None:
        """Forward and backward for one batch; its gradients add to those of the step under way (under DDP
        they are averaged over the processes when `sync`, at the step's last batch)."""
        tc, p = self.config.train, self.p
        with accumulating(p, sync):
            loss, _, targets, n = forward_batch(p, batch, train=True)
            units = loss_units(p, targets, n)
            if tc.l1 > 0:
                loss = loss + tc.l1 * sum(q.abs().sum() for q in self.params if q.requires_grad and q.dim() > 1)
            self.hooks.before_backward(self, loss)
            scaled = loss * share_weight(p, self.state.batch_in_epoch, units) / tc.grad_accum
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        self.hooks.after_backward(self, loss)
        self.loss_value, n = global_mean(p.dist, float(loss.detach()), units, n)
        self.samples_seen += n
        check_finite(self.loss_value, self.state.step + 1, self.schedule.current_lrs()[0])  # before the weights
        self.state.add_batch(self.loss_value, n)

    def between_steps(self) -> None:
        """Stop here if asked (StopRequested); wait while paused, and keep that time out of speed and ETA."""
        before = time.monotonic()
        if self.dist.enabled:  # every process stops at the same step (pausing is for a run in one process)
            if any_rank(self.dist, self.control.stop_requested):
                raise StopRequested()
            return
        self.control.checkpoint(on_pause=lambda: self.emit(LogMessage("info", "paused")))
        self.paused_s += time.monotonic() - before

    def optimizer_step_and_report(self) -> None:
        p, tc, s = self.p, self.config.train, self.state
        now = time.monotonic()
        logged = (s.step + 1) % tc.log_every == 0 or s.step + 1 == p.total_steps
        report = logged or now - self.last_report > STEP_REPORT_INTERVAL_S
        # the gradient norm costs ~2% of a step: measured on the logged steps only, not on the extra reports
        # that keep a slow run's display fresh
        self.hooks.before_step(self, logged)
        grad_norm = optimizer_step(self.optimizer, self.scaler, self.params, tc.grad_clip, measure=logged)
        self.schedule.step()
        s.step += 1
        lr = self.schedule.current_lrs()[0]
        if report:
            self.last_report = now
            training_s = now - self.started - self.paused_s  # time spent paused is not training time
            rate = self.samples_seen / max(training_s, 1e-9)
            eta = (p.total_steps - s.step) * training_s / max(s.step - self.first_step, 1)
            self.emit(StepMetrics(s.epoch, s.step, p.total_steps, self.loss_value, lr, grad_norm, rate, eta))
        self.hooks.on_step_end(self, StepEnd(s.epoch, s.step, self.loss_value, lr, grad_norm, logged))


# ---------------------------------------------------------------- starting, resuming, failing


def fit(
    config: RunConfig,
    listener: Listener | None = None,
    control: RunControl | None = None,
    *,
    output_dir: str | Path | None = None,
    hooks: tuple[TrainingHook, ...] | list[TrainingHook] | None = None,
) -> RunResult:
    """Train a model as the config says, in a new run folder. Failures the user can act on are returned
    as a RunResult with status "failed" (and a RunFailed event); bugs are reported and re-raised."""
    out = Path(output_dir) if output_dir is not None else Path(config.checkpoint.output_dir)
    snap = snapshot_config(config)
    dist = join(config.train.device)  # under torchrun: one process of several; rank 0 makes the folder

    def make() -> RunDir:
        try:
            run = new_run_dir(out, config.checkpoint.run_name or config.name)
            atomic_write_text(run.config, snap.to_toml())
        except OSError as e:
            raise StorageError(
                f"cannot make a run folder in {out.resolve()}: {e.strerror or e}; free some space or set "
                "checkpoint.output_dir to a folder you can write to"
            ) from None
        return run

    return _guarded(Trainer(snap, run_dir_on_rank(dist, make), listener, control, hooks, dist))


def resume(
    run_dir: str | Path,
    listener: Listener | None = None,
    control: RunControl | None = None,
    *,
    hooks: tuple[TrainingHook, ...] | list[TrainingHook] | None = None,
) -> RunResult:
    """Continue a stopped or interrupted run from its newest checkpoint that loads and checks out."""
    run = open_run_dir(run_dir, clean=from_env().is_main)  # one writer cleans: rank 0
    config = load_config(run.config)
    dist = join(config.train.device)  # any world size: the checkpoint holds no per-process state
    run = run_dir_on_rank(dist, lambda: run)
    _, weights, state, skipped = latest_usable_checkpoint(run)
    trainer = Trainer(config, run, listener, control, hooks, dist)
    for reason in skipped:
        trainer.emit(LogMessage("warning", f"passed over a damaged checkpoint: {reason}"))
    return _guarded(trainer, (weights, state))


def _guarded(trainer: Trainer, resume_from=None) -> RunResult:
    """Run the trainer; turn what the user can act on into a failed RunResult, and report bugs."""
    try:
        try:
            return trainer.run(resume_from)
        except Diverged as e:
            return _failed(trainer, Diverged(f"{e} {last_checkpoint_note(trainer.run_dir, diverged=True)}"), "")
        except (FinetuneError, ConfigError) as e:
            return _failed(trainer, e, "")
        except OSError as e:
            if e.errno in STORAGE_ERRNOS:
                return _failed(trainer, storage_error(e, trainer.run_dir), "")
            _failed(trainer, e, traceback.format_exc())
            raise
        except Exception as e:
            if not devices.is_oom(e):
                _failed(trainer, e, traceback.format_exc())
                raise
        # out of memory: the failed step's tensors went with the exception; find a size that fits
        devices.release_memory()
        return _failed(trainer, out_of_memory(trainer.config, trainer.p, trainer.emit), "")
    finally:
        trainer.hooks.close(trainer)
        trainer.p = None
        if trainer.config.train.compile:
            torch.compiler.reset()  # the compiled graphs hold on to the model
        devices.release_memory()
        leave(trainer.dist)


def _failed(trainer: Trainer, e: BaseException, details: str) -> RunResult:
    run = trainer.run_dir
    message = str(e)
    try:
        state = "diverged" if isinstance(e, Diverged) else "failed"
        run.write_status(state=state, error=type(e).__name__, message=message)
        run.log_line(f"[error] {type(e).__name__}: {message}\n{details}")
    except OSError:
        pass
    trainer.listener(RunFailed(str(run.root), type(e).__name__, message, details))
    return RunResult(run.root, "failed", error=e if isinstance(e, (FinetuneError, ConfigError)) else None)
