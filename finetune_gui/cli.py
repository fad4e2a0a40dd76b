"""The `finetune-gui` command: train, resume, lr-find, validate and presets, headless.

Exit codes: 0 done (also early-stopped), 1 unexpected error (a bug; traceback shown), 2 bad config or usage,
3 data problem, 4 model or weights could not be loaded (incl. offline), 5 training diverged (NaN/Inf loss),
6 out of memory, 7 damaged or missing run/checkpoint, 8 the run folder cannot be written (disk full, read-only),
130 stopped by Ctrl+C (a checkpoint was saved; resume it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from finetune_gui import __version__
from finetune_gui.config import ConfigError, RunConfig, load_config

EXIT_OK, EXIT_BUG, EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, EXIT_DIVERGED, EXIT_OOM, EXIT_RUN, EXIT_STORAGE = (
    0, 1, 2, 3, 4, 5, 6, 7, 8,
)
EXIT_STOPPED = 130


def _exit_code_for(error_type: str) -> int:
    return {
        "ConfigError": EXIT_CONFIG,
        "DataError": EXIT_DATA,
        "ModelLoadError": EXIT_MODEL,
        "OfflineError": EXIT_MODEL,
        "Diverged": EXIT_DIVERGED,
        "OutOfMemory": EXIT_OOM,
        "RunStateError": EXIT_RUN,
        "StorageError": EXIT_STORAGE,
    }.get(error_type, EXIT_BUG)


def _fmt_time(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
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
                f"loss {event.loss:.4f}{self.last_metric} {event.samples_per_s:.1f} samples/s ETA {_fmt_time(event.eta_s)}"
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


def _install_ctrl_c(control) -> None:
    def handler(signum, frame):  # noqa: ARG001
        if control.stop_requested:
            raise KeyboardInterrupt
        sys.stderr.write("\nstopping after this step and saving a checkpoint (Ctrl+C again to abort)\n")
        control.stop()

    signal.signal(signal.SIGINT, handler)


def _load(path: str, overrides: list[str] | None) -> RunConfig:
    from finetune_gui.presets import find_preset

    return load_config(find_preset(path), overrides)


def _finish(result, listener: ConsoleListener) -> int:
    if result.status == "failed":
        return _exit_code_for(listener.failure.error_type if listener.failure else "")
    if result.status == "stopped":
        print(f"stopped; continue with: finetune-gui resume {result.run_dir}", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_OK


def cmd_train(args) -> int:
    from finetune_gui.core.training.engine import fit
    from finetune_gui.core.training.events import RunControl

    config = _load(args.config, args.set)
    control = RunControl()
    _install_ctrl_c(control)
    listener = ConsoleListener(quiet=args.quiet)
    result = fit(config, listener, control, output_dir=args.output)
    return _finish(result, listener)


def cmd_resume(args) -> int:
    from finetune_gui.core.training.engine import resume
    from finetune_gui.core.training.events import RunControl

    control = RunControl()
    _install_ctrl_c(control)
    listener = ConsoleListener(quiet=args.quiet)
    result = resume(args.run, listener, control)
    return _finish(result, listener)


def cmd_validate(args) -> int:
    config = _load(args.config, args.set)
    print(f"{args.config}: valid ({config.task.kind.value}, model {config.model.name})")
    if config.data.path and not config.resolve(config.data.path).exists():
        print(f"warning: data.path {config.resolve(config.data.path)} does not exist yet", file=sys.stderr)
    return EXIT_OK


def cmd_presets(args) -> int:
    from finetune_gui.presets import list_presets

    presets = list_presets()
    if args.json:
        print(json.dumps([{"name": p.name, "path": str(p.path), "task": p.task, "model": p.model,
                           "description": p.description, "builtin": p.builtin} for p in presets], indent=2))
        return EXIT_OK
    width = max((len(p.name) for p in presets), default=4)
    for p in presets:
        where = "" if p.builtin else " (yours)"
        print(f"{p.name.ljust(width)}  {p.task:<22} {p.description}{where}")
    return EXIT_OK


def cmd_lr_find(args) -> int:
    from finetune_gui.core.training.lr_find import find_lr

    config = _load(args.config, args.set)
    print(f"sweeping the learning rate from {args.start:g} to {args.end:g} over up to {args.steps} steps...",
          file=sys.stderr)
    result = find_lr(config, start_lr=args.start, end_lr=args.end, num_steps=args.steps)
    low, high = min(result.losses), max(result.losses)
    for lr, loss in list(zip(result.lrs, result.losses))[:: max(1, len(result.lrs) // 25)]:
        bar = "#" * int(40 * (loss - low) / max(high - low, 1e-12))
        print(f"{lr:10.2e}  {loss:9.4f}  {bar}")
    if result.suggested_lr is not None:
        print(f"suggested learning rate: {result.suggested_lr:.2e}  (train.lr; {result.reason})")
    else:
        print(f"no suggestion: {result.reason}")
    if args.output:
        from finetune_gui.core.runs import atomic_write_json

        atomic_write_json(args.output, {"lrs": result.lrs, "losses": result.losses,
                                        "suggested_lr": result.suggested_lr, "reason": result.reason})
        print(f"curve saved to {args.output}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finetune-gui",
        description="Transfer learning and fine-tuning for images and text. With no command, opens the app.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"finetune-gui {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check this installation offscreen (imports, window, one training step, ONNX export)")
    sub = parser.add_subparsers(dest="command")

    def with_config(p):
        p.add_argument("config", help="config TOML file, or the name of a preset (see `finetune-gui presets`)")
        p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config value, e.g. --set train.lr=3e-4 (repeatable)")

    p = sub.add_parser("train", help="train a model from a config or preset")
    with_config(p)
    p.add_argument("--output", help="folder to make the run folder in (default: checkpoint.output_dir)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only epoch lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", help="continue a stopped or interrupted run")
    p.add_argument("run", help="the run folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("lr-find", help="sweep the learning rate and suggest one")
    with_config(p)
    p.add_argument("--start", type=float, default=1e-7)
    p.add_argument("--end", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--output", help="save the curve as JSON here")
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("validate", help="check a config file and print field-level errors")
    with_config(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("presets", help="list the presets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_presets)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        from finetune_gui.selftest import main as self_test  # noqa: PLC0415

        return self_test()
    if args.command is None:
        return _run_gui_or_help(parser)
    from finetune_gui.core.errors import FinetuneError

    try:
        return args.func(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except FinetuneError as e:
        print(f"error: {e}", file=sys.stderr)
        return _exit_code_for(type(e).__name__)
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return EXIT_STOPPED


def _run_gui_or_help(parser: argparse.ArgumentParser) -> int:
    try:
        from finetune_gui.gui.app import main as gui_main  # noqa: PLC0415
    except ImportError:
        parser.print_help()
        return EXIT_CONFIG
    return gui_main()


if __name__ == "__main__":
    raise SystemExit(main())
