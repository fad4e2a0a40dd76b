"""TensorBoard logs of a run (`[logging] tensorboard = true`), written with torch.utils.tensorboard.

The event files go in the run folder itself, so `tensorboard --logdir runs` lists each run under its folder's
name. Logged steps give train/loss, train/lr and train/grad_norm; each epoch gives its train_ and val_ metrics
under epoch/; the end of a run writes its settings and final metrics to the HParams tab. All against the
optimiser step, so a resumed run continues its curves (events past the step it resumed from are purged).
"""

from __future__ import annotations

import math
from typing import Any

from finetune_gui.core.training.events import LogMessage
from finetune_gui.core.training.hooks import StepEnd, TrainingHook

# the settings worth comparing across runs in TensorBoard's HParams table
HPARAM_FIELDS = (
    "model.name", "model.freeze", "model.unfreeze_last_n", "model.head_dropout", "model.lora.enabled",
    "data.image_size", "data.max_length", "train.epochs", "train.batch_size", "train.optimizer", "train.lr",
    "train.weight_decay", "train.schedule", "train.warmup_fraction", "train.label_smoothing", "train.grad_clip",
    "train.precision", "train.seed", "early_stopping.enabled", "augment.auto_augment", "augment.mixup_alpha",
)  # fmt: skip

MISSING_PACKAGE = (
    "TensorBoard logs are off for this run: the tensorboard package is not installed. "
    "Install it with `pip install tensorboard` (or `pip install finetune-gui[tensorboard]`), "
    "or set [logging] tensorboard = false."
)


def hparams_of(config: Any) -> dict[str, bool | int | float | str]:
    """The run's settings in HPARAM_FIELDS as TensorBoard takes them: bools, numbers and strings."""
    values = config.to_dict()
    out: dict[str, bool | int | float | str] = {}
    for dotted in HPARAM_FIELDS:
        value: Any = values
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        out[dotted] = value if isinstance(value, bool | int | float | str) else str(value)
    return out


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}


class TensorBoardHook(TrainingHook):
    """Writes the run's scalars and hparams as TensorBoard event files in the run folder."""

    def __init__(self) -> None:
        self.writer: Any = None
        self.unavailable = False

    def _open(self, trainer: Any, first_step: int) -> Any:
        if self.writer is None and not self.unavailable:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.unavailable = True
                trainer.emit(LogMessage("warning", MISSING_PACKAGE))
                return None
            root = trainer.run_dir.root
            resumed = any(root.glob("events.out.tfevents.*"))
            # a resumed run purges what the stopped one logged past its last checkpoint, so no step shows twice
            self.writer = SummaryWriter(str(root), purge_step=first_step if resumed else None, flush_secs=10)
        return self.writer

    def on_step_end(self, trainer: Any, step: StepEnd) -> None:
        if not step.logged or (w := self._open(trainer, step.step)) is None:
            return
        w.add_scalar("train/loss", step.loss, step.step)
        w.add_scalar("train/lr", step.lr, step.step)
        if math.isfinite(step.grad_norm):
            w.add_scalar("train/grad_norm", step.grad_norm, step.step)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        if (w := self._open(trainer, trainer.state.step)) is None:
            return
        for name, value in _finite(metrics).items():
            w.add_scalar(f"epoch/{name}", value, trainer.state.step)
        w.flush()

    def on_run_end(self, trainer: Any, status: str) -> None:
        if (w := self._open(trainer, trainer.state.step)) is None:
            return
        from torch.utils.tensorboard.summary import hparams

        final = _finite({**trainer.val_metrics, **trainer.test_metrics})
        tags = {f"final/{k}": v for k, v in final.items()}
        for summary in hparams({**hparams_of(trainer.config), "status": status}, tags):
            w.file_writer.add_summary(summary, trainer.state.step)
        for tag, value in tags.items():
            w.add_scalar(tag, value, trainer.state.step)
        w.flush()

    def close(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
