"""The commands that look across runs: `finetune-gui runs [DIR ...] [--json]` lists every run in some folders,
`finetune-gui compare RUN RUN... [--json]` puts runs side by side (config differences, best and final metrics,
findings). Both read the run folders' files only (core/run_index.py, core/run_compare.py)."""

from __future__ import annotations

import json
import string
import sys
from typing import Any

EXIT_USAGE = 2  # cli.EXIT_CONFIG: this module sits beside cli_runs, below cli, and cannot import it
RUNS_COLUMNS = ("name", "status", "task", "model", "best val", "test", "epochs", "time", "date", "findings")


def add_commands(sub) -> None:
    """Add `runs` and `compare` to the `finetune-gui` parser's subparsers."""
    p = sub.add_parser("runs", help="list the runs in folders, with their best and test metrics")
    p.add_argument("folders", nargs="*", metavar="DIR", default=["runs"], help="folders to search (default: runs)")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("compare", help="compare 2 to 8 runs: config differences, metrics and diagnoses")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    p.add_argument("--all", action="store_true", help="show every config value, not only those that differ")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=cmd_compare)


def cmd_runs(args) -> int:
    from finetune_gui.core.run_index import list_runs

    index = list_runs(args.folders)
    if args.json:
        print(json.dumps({"runs": [r.to_dict() for r in index.runs], "problems": index.problems}, indent=2))
        return 0
    for problem in index.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not index.runs:
        print(f"no runs in {', '.join(args.folders)}")
        return 0
    rows = [
        [
            r.name,
            r.status,
            r.task,
            r.model,
            _metric(r.best_metric, r.best_value),
            _metric(r.test_metric.removeprefix("test_"), r.test_value),
            str(r.epochs),
            duration_text(r.duration_s),
            r.date[:16],
            r.findings_text,
        ]
        for r in index.runs
    ]
    print_table(list(RUNS_COLUMNS), rows)
    return 0


def cmd_compare(args) -> int:
    from finetune_gui.core.run_compare import MAX_RUNS, MIN_RUNS, comparison_dict, load_histories

    if not MIN_RUNS <= len(args.runs) <= MAX_RUNS:
        print(f"error: compare takes {MIN_RUNS} to {MAX_RUNS} runs, not {len(args.runs)}", file=sys.stderr)
        return EXIT_USAGE
    histories = load_histories(args.runs)
    if args.json:
        print(json.dumps(comparison_dict(histories, differences_only=not args.all), indent=2))
    else:
        print_comparison(histories, differences_only=not args.all)
    return 0


def print_comparison(histories: list, differences_only: bool = True, file=None) -> None:
    """The runs by letter, the config values that differ, the metrics side by side, and each run's findings."""
    file = file or sys.stdout
    from finetune_gui.core.diagnostics.findings import worst_first
    from finetune_gui.core.run_compare import config_rows, metric_rows

    letters = string.ascii_uppercase[: len(histories)]
    for letter, h in zip(letters, histories):
        print(f"{letter}  {h.name}  ({h.summary.status}, {h.summary.path})", file=file)
    config = config_rows(histories, differences_only)
    print(f"\nconfig{' differences' if differences_only else ''}:", file=file)
    if config:
        print_table(["key", *letters], [[k, *(_value(v) for v in values)] for k, values in config], file=file)
    else:
        print("  none: the runs were set up alike", file=file)
    print("\nmetrics:", file=file)
    rows = [[name, *("–" if v is None else f"{v:.4g}" for v in values)] for name, values in metric_rows(histories)]
    print_table(["metric", *letters], rows, file=file)
    print("\nfindings:", file=file)
    for letter, h in zip(letters, histories):
        if h.findings is None:
            print(f"{letter}  not diagnosed (no diagnostics.json)", file=file)
        elif not h.findings:
            print(f"{letter}  nothing wrong found", file=file)
        for f in worst_first(h.findings or []):
            print(f"{letter}  [{f.severity}] {f.line()}", file=file)


def print_table(header: list[str], rows: list[list[str]], file=None) -> None:
    """Columns as wide as their widest cell, two spaces apart."""
    file = file or sys.stdout
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip(), file=file)


def duration_text(seconds: float | None) -> str:
    """ "m:ss", or "h:mm:ss" from an hour on; "–" when not known."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _metric(name: str, value: float | None) -> str:
    return "–" if value is None else f"{name} {value:.4g}"


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
