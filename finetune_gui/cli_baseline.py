"""`finetune-gui baseline CONFIG`: a linear probe on the frozen model's cached features, reported next to
always answering the most common class (see core/features/baseline.py)."""

from __future__ import annotations

from finetune_gui.config import load_config
from finetune_gui.console import ConsoleListener


def add_commands(sub) -> None:
    """Add the baseline command to the `finetune-gui` parser's subparsers."""
    p = sub.add_parser("baseline", help="fit a linear probe on cached features: the score a fine-tune should beat")
    p.add_argument("config", help="config TOML file, or the name of a preset (see `finetune-gui presets`)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--output", help="folder to make the run folder in (default: checkpoint.output_dir)")
    p.add_argument("--epochs", type=int, default=50, help="most epochs of the probe (it stops early; default 50)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only epoch lines")
    p.set_defaults(func=cmd_baseline)


def cmd_baseline(args) -> int:
    from finetune_gui.core.features.baseline import run_baseline
    from finetune_gui.presets import find_preset

    config = load_config(find_preset(args.config), args.set)
    listener = ConsoleListener(quiet=args.quiet)
    result, majority = run_baseline(config, listener, output_dir=args.output, epochs=max(1, args.epochs))
    if result.status == "failed":
        if result.error is not None:
            raise result.error  # the CLI turns it into its exit code and message
        return 1
    for split, metrics in (("val", result.val_metrics), ("test", result.test_metrics)):
        shown = ", ".join(f"{k.removeprefix(split + '_')} {v:.4f}" for k, v in sorted(metrics.items()))
        if shown:
            print(f"linear probe, {split}: {shown}")
    if majority is not None:
        rates = ", ".join(f"{split} {rate:.4f}" for split, rate in majority.rates.items())
        print(f"always '{majority.label}' (the most common class), accuracy: {rates}")
    return 0
