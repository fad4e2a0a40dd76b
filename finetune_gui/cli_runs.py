"""The commands about runs that exist: `finetune-gui diagnose RUN [--json]` reads a run's diagnosis back (the
checks run again on its saved record, so a run made before an upgrade gets today's checks)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

WIDTH = 100


def add_commands(sub) -> None:
    """Add this module's commands to the `finetune-gui` parser's subparsers."""
    p = sub.add_parser("diagnose", help="say in plain words what went wrong in a run, with remedies")
    p.add_argument("run", help="run folder")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=cmd_diagnose)


def run_findings(run_dir: str | Path) -> list:
    """The findings of a run folder, from its saved record (RunStateError when it has none)."""
    from finetune_gui.core.diagnostics.checks import diagnose_run

    return diagnose_run(run_dir)


def print_findings(findings: list, file=sys.stdout) -> None:
    """Each finding: its title, the explanation wrapped, and the remedies as --set options."""
    if not findings:
        print("diagnosis: nothing wrong found", file=file)
        return
    for f in findings:
        print(f"\n[{f.severity}] {f.line()}", file=file)
        print(textwrap.fill(f.explanation, WIDTH, initial_indent="  ", subsequent_indent="  "), file=file)
        for r in f.remedies:
            sets = " ".join(f"--set {k}={json.dumps(v)}" for k, v in r.changes.items())
            print(f"  remedy: {r.label}: {sets}", file=file)


def cmd_diagnose(args) -> int:
    findings = run_findings(args.run)
    if args.json:
        from finetune_gui.core.diagnostics.record import json_safe

        print(
            json.dumps(
                {"run": str(Path(args.run).resolve()), "findings": json_safe([f.to_dict() for f in findings])}, indent=2
            )
        )
    else:
        print_findings(findings)
    return 0
