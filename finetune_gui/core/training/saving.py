"""How a run saves and reloads itself: the step checkpoints a resume continues from, and the best epoch's weights.

Under torchrun rank 0 alone writes. Under DDP the weights are the same in every process; under FSDP every
process gives its shard to a full copy gathered on rank 0, so checkpoints are the same file either way.
"""

from __future__ import annotations

from typing import Any

import torch

from finetune_gui.core import devices
from finetune_gui.core.checkpoints import rotate_checkpoints, save_checkpoint, step_tag
from finetune_gui.core.distributed import fsdp
from finetune_gui.core.models.weights import load_model_weights, model_weights
from finetune_gui.core.training.callbacks import check_finite_weights
from finetune_gui.core.training.events import CheckpointSaved
from finetune_gui.core.training.optim import load_optimizer_state


class Checkpointing:
    """The Trainer's saving; it reads the trainer's state, optimiser, schedule, scaler, best tracker and run."""

    def current_weights(self) -> tuple[dict[str, torch.Tensor], list[str]]:
        """The weights as checkpoints store them, and the tied names left out (every rank must call it: under
        FSDP it gathers, and only rank 0 gets the tensors)."""
        return fsdp.full_weights(self.p) if self.p.strategy == "fsdp" else model_weights(self.p.model)

    def load_weights(self, weights: dict[str, torch.Tensor], source: str) -> None:
        if self.p.strategy == "fsdp":
            fsdp.load_full_weights(self.p, weights, source)
        else:
            load_model_weights(self.p.model, weights, source)

    def load_optimizer(self, state: dict[str, Any]) -> None:
        """The checkpoint's optimiser state, keyed by position (one process, DDP) or by name (FSDP)."""
        saved = state["optimizer"]
        if state.get("optimizer_keys") == fsdp.NAMED_OPTIMIZER_STATE:
            fsdp.load_named_optimizer_state(self.p.model, self.optimizer, saved)
        elif self.p.strategy == "fsdp":
            named = fsdp.named_optimizer_state(self.p.model, self.optimizer, saved)
            fsdp.load_named_optimizer_state(self.p.model, self.optimizer, named)
        else:
            load_optimizer_state(self.optimizer, saved)

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything besides the weights that a resumed run needs to continue bit for bit."""
        named = self.p.strategy == "fsdp"
        return {
            **self.state.state_dict(),
            "optimizer": fsdp.optimizer_state(self.p, self.optimizer) if named else self.optimizer.state_dict(),
            "optimizer_keys": fsdp.NAMED_OPTIMIZER_STATE if named else "positions",
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "best": self.best.state_dict(),
            "rng": devices.rng_state(),
        }

    def save(self) -> None:
        """A step checkpoint; then the oldest step checkpoints beyond the number to keep go."""
        s = self.state
        weights, tied = self.current_weights()
        state = self.checkpoint_state() if self.dist.is_main or self.p.strategy == "fsdp" else {}
        if not self.dist.is_main:
            return
        check_finite_weights(weights, s.step, self.schedule.current_lrs()[0])  # never save a diverged model
        info = save_checkpoint(self.run_dir, step_tag(s.step), weights, dict(state, tied=tied))
        rotate_checkpoints(self.run_dir, self.config.checkpoint.keep_last)
        self.run_dir.write_status(latest_checkpoint=info.weights.name, step=s.step)
        self.emit(CheckpointSaved(str(info.weights), s.epoch, s.step, False))

    def save_best(self, epoch: int, value: float, lr: float) -> None:
        """The weights of the best epoch so far, as the `best` checkpoint."""
        weights, tied = self.current_weights()
        if not self.dist.is_main:
            return
        check_finite_weights(weights, self.state.step, lr)
        extra = {"epoch": epoch, "step": self.state.step, "metric": self.monitor, "value": value, "tied": tied}
        info = save_checkpoint(self.run_dir, "best", weights, extra)
        self.emit(CheckpointSaved(str(info.weights), epoch, self.state.step, True))
