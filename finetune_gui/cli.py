"""The `finetune-gui` command: train, resume, baseline, lr-find, find-batch-size, validate, presets, export, predict,
diagnose, runs, compare and launch-command, headless.

Exit codes: 0 done (also early-stopped), 1 unexpected error (a bug; traceback shown), 2 bad config or usage,
3 data problem (also an unreadable input to predict), 4 model or weights could not be loaded (incl. offline),
5 training diverged (NaN/Inf loss), 6 out of memory, 7 damaged or missing run/checkpoint, 8 the run folder cannot
be written (disk full, read-only), 9 cannot export (format not for this task, output folder not empty, damaged
export folder), 10 an exported model failed verification (see the table), 130 stopped by Ctrl+C
or SIGTERM (a checkpoint was saved; resume it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from finetune_gui import __version__, cli_baseline, cli_compare, cli_events, cli_launch
from finetune_gui.cli_runs import add_commands, print_findings, run_findings
from finetune_gui.config import ConfigError, RunConfig, load_config
from finetune_gui.console import ConsoleListener

EXIT_OK, EXIT_BUG, EXIT_CONFIG, EXIT_DATA, EXIT_MODEL = 0, 1, 2, 3, 4
EXIT_DIVERGED, EXIT_OOM, EXIT_RUN, EXIT_STORAGE = 5, 6, 7, 8
EXIT_EXPORT, EXIT_VERIFY = 9, 10
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
        "ExportError": EXIT_EXPORT,
    }.get(error_type, EXIT_BUG)


def _install_ctrl_c(control) -> None:
    def handler(signum, frame):
        if control.stop_requested:
            raise KeyboardInterrupt
        sys.stderr.write("\nstopping after this step and saving a checkpoint (Ctrl+C again to abort)\n")
        control.stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)  # the app's Stop of a run it started as a child process


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
    cli_launch.exec_torchrun_if_asked(args)  # --nproc-per-node: becomes torchrun; returns when there is none
    from finetune_gui.core.training.engine import fit
    from finetune_gui.core.training.events import RunControl

    config = _load(args.config, args.set)
    control = RunControl()
    _install_ctrl_c(control)
    listener = ConsoleListener(quiet=args.quiet)
    result = fit(config, cli_events.with_events(listener, args), control, output_dir=args.output)
    if cli_launch.prints_findings(args, result):
        print_findings(run_findings(result.run_dir), file=sys.stderr)
    return _finish(result, listener)


def cmd_resume(args) -> int:
    cli_launch.exec_torchrun_if_asked(args)
    from finetune_gui.core.training.engine import resume
    from finetune_gui.core.training.events import RunControl

    control = RunControl()
    _install_ctrl_c(control)
    listener = ConsoleListener(quiet=args.quiet)
    result = resume(args.run, cli_events.with_events(listener, args), control)
    return _finish(result, listener)


def cmd_validate(args) -> int:
    config = _load(args.config, args.set)
    print(f"{args.config}: valid ({config.task.kind.value}, model {config.model.name})")
    if config.data.path and not os.path.exists(config.resolve(config.data.path)):  # False for any OSError
        print(f"warning: data.path {config.resolve(config.data.path)} does not exist yet", file=sys.stderr)
    return EXIT_OK


def cmd_presets(args) -> int:
    from finetune_gui.presets import list_presets

    presets = list_presets()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "path": str(p.path),
                        "task": p.task,
                        "model": p.model,
                        "description": p.description,
                        "builtin": p.builtin,
                    }
                    for p in presets
                ],
                indent=2,
            )
        )
        return EXIT_OK
    width = max((len(p.name) for p in presets), default=4)
    for p in presets:
        where = "" if p.builtin else " (yours)"
        print(f"{p.name.ljust(width)}  {p.task:<22} {p.description}{where}")
    return EXIT_OK


def cmd_lr_find(args) -> int:
    from finetune_gui.core.training.lr_find import find_lr

    config = _load(args.config, args.set)
    print(
        f"sweeping the learning rate from {args.start:g} to {args.end:g} over up to {args.steps} steps...",
        file=sys.stderr,
    )
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
        from finetune_gui.files import atomic_write_json

        atomic_write_json(
            args.output,
            {"lrs": result.lrs, "losses": result.losses, "suggested_lr": result.suggested_lr, "reason": result.reason},
        )
        print(f"curve saved to {args.output}")
    return EXIT_OK


def cmd_find_batch_size(args) -> int:
    from finetune_gui.core.training.batch_size import find_batch_size

    config = _load(args.config, args.set)
    print(
        f"trying training steps from batch size {args.start or config.train.batch_size} on {config.train.device} ...",
        file=sys.stderr,
    )
    result = find_batch_size(config, start=args.start, max_batch_size=args.max)
    for size, ok in result.tried:
        print(f"{size:6d}  {'fits' if ok else 'out of memory'}")
    print(f"largest batch size that fits: {result.batch_size}  (train.batch_size; {result.reason})")
    return EXIT_OK


def cmd_export(args) -> int:
    from finetune_gui.core.export import export_run, run_task
    from finetune_gui.core.export.formats import default_formats

    formats = args.format or ",".join(default_formats(run_task(args.run)))
    if args.int8 and "onnx-int8" not in formats.split(","):
        formats += ",onnx-int8"
    report = export_run(
        args.run,
        formats,
        output=args.output,
        progress=None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    if args.json:
        print(json.dumps(dict(report.to_json(), folder=str(report.folder)), indent=2))
    else:
        print(report.table())
        print(f"\nexport folder: {report.folder}")
    if not report.ok:
        print(
            "error: verification failed for "
            + ", ".join(r.format for r in report.results if not r.passed)
            + "; do not deploy those files (reasons above)",
            file=sys.stderr,
        )
        return EXIT_VERIFY
    return EXIT_OK


def _predict_inputs(values: list[str]) -> list[str]:
    """INPUT arguments, with `-` read as one input per line of stdin and `@FILE` as one per line of FILE."""
    out: list[str] = []
    for value in values:
        if value == "-":
            out += [line.rstrip("\n") for line in sys.stdin if line.strip()]
        elif value.startswith("@") and len(value) > 1:
            from finetune_gui.core.errors import DataError

            try:
                text = Path(value[1:]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise DataError(f"{value[1:]}: cannot read the inputs ({e})") from None
            out += [line for line in text.splitlines() if line.strip()]
        else:
            out.append(value)
    return out


def _prediction_json(item: str, prediction) -> dict:
    return {
        "input": item,
        "label": prediction.label,
        "scores": prediction.scores,
        "value": prediction.value,
        "labels": list(prediction.labels),
    }


def _print_prediction(item: str, prediction) -> None:
    if prediction.value is not None:
        print(f"{item}\t{prediction.value:.6g}")
        return
    top = ", ".join(f"{k} {v:.1%}" for k, v in list(prediction.scores.items())[:3])
    print(f"{item}\t{prediction.label or '(no label)'}\t{top}")


def _check_images(paths: list[str]) -> None:
    """Every input must be a readable image file; the first that is not is named (exit 3)."""
    from finetune_gui.core.data.image_files import load_rgb
    from finetune_gui.core.errors import DataError

    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{missing[0]}: no such image file{more}")
    for p in paths:
        try:
            load_rgb(p)
        except Exception as e:  # noqa: BLE001 - any decoder failure is the same problem to the user
            raise DataError(f"{p}: not a readable image ({type(e).__name__}: {e})") from None


def cmd_predict(args) -> int:
    from finetune_gui.core.errors import DataError
    from finetune_gui.core.export.predict import is_export_folder

    inputs = _predict_inputs(args.inputs)
    if not inputs:
        raise DataError("nothing to predict: give image files, texts (`-` reads lines from stdin) or a prompt")
    if is_export_folder(args.source):
        from finetune_gui.core.export.predict import load_export

        model = load_export(args.source, args.backend)
        task, using, backend = model.task, model.describe(), model.backend
        if model.warning:
            print(f"warning: {model.warning}", file=sys.stderr)
    else:
        if args.backend:
            raise DataError("--backend picks an artefact of an export folder; a run folder predicts with its own model")
        from finetune_gui.core.inference import load_predictor

        model = load_predictor(args.source)
        task, using, backend = model.task.value, f"the run's model ({model.weights_source})", "eager"
    print(f"predicting with {using}", file=sys.stderr)
    if task.startswith("image-"):
        _check_images(inputs)
        items = model.predict_images(inputs)
        results = [_prediction_json(i, p) for i, p in zip(inputs, items)]
    elif task == "causal-lm":
        texts = [model.generate(prompt, args.max_new_tokens, args.temperature, args.seed) for prompt in inputs]
        results = [{"input": prompt, "text": text} for prompt, text in zip(inputs, texts)]
    else:
        if any(not text.strip() for text in inputs):
            raise DataError("empty text: give something to predict from")
        items = model.predict_texts(inputs)
        results = [_prediction_json(i, p) for i, p in zip(inputs, items)]
    if args.json:
        print(
            json.dumps(
                {"source": str(args.source), "backend": backend, "task": task, "predictions": results},
                indent=2,
                ensure_ascii=False,
            )
        )
    elif task == "causal-lm":
        for r in results:
            print(r["input"] + r["text"])
    else:
        for i, p in zip(inputs, items):
            _print_prediction(i, p)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finetune-gui",
        description="Transfer learning and fine-tuning for images and text. With no command, opens the app.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"finetune-gui {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation offscreen (imports, window, one training step, ONNX export)",
    )
    sub = parser.add_subparsers(dest="command")

    def with_config(p):
        p.add_argument("config", help="config TOML file, or the name of a preset (see `finetune-gui presets`)")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="SECTION.KEY=VALUE",
            help="override a config value, e.g. --set train.lr=3e-4 (repeatable)",
        )

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

    p = sub.add_parser("find-batch-size", help="find the largest batch size that fits in memory")
    with_config(p)
    p.add_argument("--start", type=int, help="first size to try (default: train.batch_size)")
    p.add_argument("--max", type=int, help="largest size to consider (default: the training split's size)")
    p.set_defaults(func=cmd_find_batch_size)

    p = sub.add_parser("validate", help="check a config file and print field-level errors")
    with_config(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("presets", help="list the presets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("export", help="export a run's model and verify it against the trained model")
    p.add_argument("run", help="the run folder")
    p.add_argument(
        "--format",
        metavar="F1,F2",
        help="comma-separated: torchscript, onnx, onnx-int8, pt2, safetensors, hf (default: all the task "
        "supports but onnx-int8)",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="also write model.int8.onnx (weights quantised to 8 bits; classifiers only), verified by top-1 "
        "agreement >= 99%% with the trained model on validation samples",
    )
    p.add_argument("--output", help="export folder to create; must not hold files (default: RUN/exports/DATE-TIME)")
    p.add_argument("--json", action="store_true", help="print the verification report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="predict with a run's model or an exported one")
    p.add_argument(
        "source",
        metavar="RUN_OR_EXPORT",
        help="a run folder, or an export folder (uses its ONNX, else TorchScript, else .pt2 artefact)",
    )
    p.add_argument(
        "inputs",
        metavar="INPUT",
        nargs="+",
        help="image files; texts (`-` = one per line from stdin, @FILE = one per line of FILE); or prompts",
    )
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.add_argument(
        "--backend", choices=["onnx", "onnx-int8", "torchscript", "pt2", "hf"], help="which artefact of an export runs"
    )
    p.add_argument("--max-new-tokens", type=int, default=30, help="causal LM: tokens to write (default 30)")
    p.add_argument("--temperature", type=float, default=0.0, help="causal LM: 0 = greedy (default), higher = freer")
    p.add_argument("--seed", type=int, default=None, help="causal LM: seed for sampling")
    p.set_defaults(func=cmd_predict)
    add_commands(sub)
    cli_events.add_events_options(sub)
    for module in (cli_compare, cli_baseline, cli_launch):
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        from finetune_gui.selftest import main as self_test

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
        from finetune_gui.gui.app import main as gui_main
    except ImportError:
        parser.print_help()
        return EXIT_CONFIG
    return gui_main()


if __name__ == "__main__":
    raise SystemExit(main())
