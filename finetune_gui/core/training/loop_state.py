"""Where the loop is: the counters a checkpoint saves and a resumed run starts from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class LoopState:
    """The loop's position and the running sums of the epoch under way.

    `epoch_trained` is True between an epoch's last step and the end of its evaluation, so a run stopped
    during the evaluation resumes by evaluating, not by training the epoch again.
    """

    epoch: int = 0  # epochs finished (0-based index of the one under way)
    step: int = 0  # optimiser steps done over the whole run
    batch_in_epoch: int = 0  # batches of the current epoch already trained
    epoch_trained: bool = False
    unfrozen: int = 0  # blocks unfrozen so far by gradual unfreezing
    train_sum: float = 0.0  # sum of sample-weighted training losses this epoch
    train_count: int = 0  # samples in train_sum

    def add_batch(self, loss: float, n: int) -> None:
        """Count one trained batch of n samples and its mean loss."""
        self.batch_in_epoch += 1
        self.train_sum += loss * n
        self.train_count += n

    @property
    def train_loss(self) -> float:
        """The epoch's mean training loss so far."""
        return self.train_sum / max(self.train_count, 1)

    def next_epoch(self) -> None:
        """The epoch is trained and evaluated: move to the next one."""
        self.epoch += 1
        self.batch_in_epoch, self.epoch_trained = 0, False
        self.train_sum, self.train_count = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "epoch_trained": self.epoch_trained,
            "step": self.step,
            "unfrozen": self.unfrozen,
            "train_sum": self.train_sum,
            "train_count": self.train_count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.epoch_trained = bool(state.get("epoch_trained", False))
        self.unfrozen = int(state.get("unfrozen", 0))
        self.train_sum, self.train_count = float(state["train_sum"]), int(state["train_count"])
