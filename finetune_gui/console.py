"""What a headless run shows on a terminal: a progress bar, one line per epoch, and a summary at the end."""

from __future__ import annotations

import math
import sys
from typing import TextIO


def format_time(seconds: float) -> str:
    """h:mm:ss (or mm:ss) for an ETA; --:-- when it is not known."""
    if math.isnan(seconds) or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ConsoleListener:
    """Draws a progress bar on a terminal (or plain lines when output is not a terminal) and a summary."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False):
        self.out = stream or sys.stderr
        self.tty = self.out.isatty()
        self.quiet = quiet
        self.started = None
        self.last_metric = ""
        self.epochs: list = []
        self.failure = None
        self.finished = None
        self._bar_open = False

    def _line(self, text: str) -> None:
        if self._bar_open:
            self.out.write("\n")
            self._bar_open = False
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, event) -> None:
        from finetune_gui.core.training import events as ev

        if isinstance(event, ev.RunStarted):
            self.started = event
            params = f"{event.trainable_params:,} of {event.total_params:,} parameters trainable"
            self._line(f"run folder: {event.run_dir}")
            self._line(
                f"{event.task} on {event.device} ({event.precision}): {event.num_train} train / {event.num_val} val / "
                f"{event.num_test} test samples, {len(event.labels) or '-'} labels, {params}"
            )
        elif isinstance(event, ev.LogMessage):
            self._line(("warning: " if event.level == "warning" else "") + event.text)
        elif isinstance(event, ev.StepMetrics) and not self.quiet:
            frac = event.step / max(event.total_steps, 1)
            width = 24
            bar = "#" * int(frac * width) + "." * (width - int(frac * width))
            text = (
                f"epoch {event.epoch + 1} [{bar}] {frac:4.0%} step {event.step}/{event.total_steps} "
                f"loss {event.loss:.4f}{self.last_metric} {event.samples_per_s:.1f} samples/s ETA {format_time(event.eta_s)}"
            )
            if self.tty:
                self.out.write("\r" + text.ljust(110))
                self.out.flush()
                self._bar_open = True
            elif event.step == event.total_steps or event.step % 50 == 0:
                self._line(text)
        elif isinstance(event, ev.EpochMetrics):
            self.epochs.append(event)
            shown = {k: v for k, v in event.metrics.items()}
            key = next((k for k in ("val_accuracy", "val_f1_micro", "val_mae", "val_perplexity") if k in shown), None)
            self.last_metric = f" {key.removeprefix('val_')} {shown[key]:.4f}" if key else ""
            parts = " ".join(f"{k} {v:.4f}" for k, v in shown.items())
            self._line(f"epoch {event.epoch + 1}: {parts} lr {event.lr:.2e} ({event.elapsed_s:.1f}s)")
        elif isinstance(event, ev.EarlyStopped):
            self._line(
                f"early stopping: {event.metric} has not improved since epoch {event.best_epoch + 1} "
                f"(best {event.best_value:.4f})"
            )
        elif isinstance(event, ev.RunFinished):
            self.finished = event
            self._line(f"finished ({event.status}); best epoch {event.best_epoch + 1}")
            rows = list(event.val_metrics.items()) + list(event.test_metrics.items())
            if rows:
                width = max(len(k) for k, _ in rows)
                self._line("-" * (width + 14))
                for k, v in rows:
                    self._line(f"{k.ljust(width)}  {v:12.4f}")
                self._line("-" * (width + 14))
            self._line(f"saved to {event.run_dir}")
        elif isinstance(event, ev.RunFailed):
            self.failure = event
            self._line(f"error: {event.message}")
            if event.details:
                self._line(event.details)
