"""What the Train page shows of a previous run, read from its folder in a worker thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_gui.core.run_index import RESUMABLE_STATES


def load_run_history(run_dir: str) -> dict[str, Any]:
    """Epoch rows, step rows, the test row, status, the log's tail, whether the run can be resumed, and its
    diagnosis (today's checks on its saved record; none for a run from before diagnostics)."""
    from finetune_gui.core.checkpoints import list_checkpoints
    from finetune_gui.core.diagnostics.checks import diagnose_run
    from finetune_gui.core.errors import RunStateError
    from finetune_gui.core.runs import RunDir

    run = RunDir(Path(run_dir))
    if not run.root.is_dir():
        raise RunStateError(f"{run_dir}: the run folder is gone (moved or deleted); open another on the Runs page")
    rows = run.read_metrics()
    status = run.read_status()
    log_tail: list[str] = []
    if run.log.exists():
        log_tail = run.log.read_text(encoding="utf-8", errors="replace").splitlines()[-300:]
    resumable = status.get("state") in RESUMABLE_STATES and bool(list_checkpoints(run))
    try:
        findings = [f.to_dict() for f in diagnose_run(run.root)]
    except RunStateError:
        findings = None
    return {
        "run_dir": run_dir,
        "epochs": [r for r in rows if "split" not in r],
        "steps": run.read_steps(),
        "test": next((r for r in reversed(rows) if "split" in r), None),
        "status": status,
        "log": log_tail,
        "resumable": resumable,
        "findings": findings,
    }
