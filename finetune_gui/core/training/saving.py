"""How a run saves itself: the step checkpoints a resume continues from, and the best epoch's weights.

Under torchrun the weights are the same in every process, and rank 0 alone writes them."""

from __future__ import annotations

from typing import Any

from finetune_gui.core import devices
from finetune_gui.core.checkpoints import rotate_checkpoints, save_checkpoint, step_tag
from finetune_gui.core.models.weights import model_weights
from finetune_gui.core.training.callbacks import check_finite_weights
from finetune_gui.core.training.events import CheckpointSaved


class Checkpointing:
    """The Trainer's saving; it reads the trainer's state, optimiser, schedule, scaler, best tracker and run."""

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything besides the weights that a resumed run needs to continue bit for bit."""
        return {
            **self.state.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "best": self.best.state_dict(),
            "rng": devices.rng_state(),
        }

    def save(self) -> None:
        """A step checkpoint, then the oldest beyond checkpoint.keep_last go."""
        s = self.state
        if not self.dist.is_main:  # the weights are the same in every process; rank 0 writes them
            return
        weights, tied = model_weights(self.p.model)
        check_finite_weights(weights, s.step, self.schedule.current_lrs()[0])  # never save a diverged model
        info = save_checkpoint(self.run_dir, step_tag(s.step), weights, dict(self.checkpoint_state(), tied=tied))
        rotate_checkpoints(self.run_dir, self.config.checkpoint.keep_last)
        self.run_dir.write_status(latest_checkpoint=info.weights.name, step=s.step)
        self.emit(CheckpointSaved(str(info.weights), s.epoch, s.step, False))

    def save_best(self, epoch: int, value: float, lr: float) -> None:
        """The weights of the best epoch so far, as the `best` checkpoint."""
        if not self.dist.is_main:
            return
        weights, tied = model_weights(self.p.model)
        check_finite_weights(weights, self.state.step, lr)
        extra = {"epoch": epoch, "step": self.state.step, "metric": self.monitor, "value": value, "tied": tied}
        info = save_checkpoint(self.run_dir, "best", weights, extra)
        self.emit(CheckpointSaved(str(info.weights), epoch, self.state.step, True))
