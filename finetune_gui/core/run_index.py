"""Every run in some folders, each summed up in one row (the Runs page's table, `finetune-gui runs`).

A run folder is one with config.toml and status.json. Folders are searched two levels down (a runs folder, and
the sub-folders that a relative `checkpoint.output_dir` makes in it); a run folder is not searched inside. A run
that cannot be read is a problem string, never an exception: one bad folder must not hide the others.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from finetune_gui.config import ConfigError, RunConfig, load_config
from finetune_gui.core.diagnostics.findings import SEVERITIES, Finding
from finetune_gui.core.errors import RunStateError
from finetune_gui.core.metric_names import main_metric, metric_mode
from finetune_gui.core.runs import RunDir

SEARCH_DEPTH = 2
RESUMABLE_STATES = ("stopped", "running", "failed")  # "running" in a folder: the process was killed
ALIVE_WITHIN_S = 300.0  # a "running" run whose files changed this recently is taken to be training still


@dataclass(frozen=True)
class RunSummary:
    """One run in one row. Values that a run does not have (no validation split, not tested) are None."""

    name: str
    path: str
    status: str
    task: str
    model: str
    best_metric: str  # the metric that picks the best epoch (early stopping's, or checkpoint.monitor)
    best_value: float | None
    best_epoch: int | None
    test_metric: str  # the task's main metric on the test split, prefixed ("test_accuracy")
    test_value: float | None
    epochs: int
    duration_s: float | None
    date: str  # when it started, "YYYY-MM-DD HH:MM:SS"
    findings: dict[str, int] | None  # severity -> count; None when the run has no diagnosis
    resumable: bool = False
    training: bool = False  # "running", and its files changed within ALIVE_WITHIN_S
    notes: list[str] = field(default_factory=list)  # what could not be read (the run is listed all the same)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def findings_text(self) -> str:
        """ "2 warning, 1 info", "none", or "–" when not diagnosed."""
        if self.findings is None:
            return "–"
        counts = [(self.findings.get(s, 0), s) for s in reversed(SEVERITIES)]
        parts = [f"{n} {s}{'s' if s == 'warning' and n > 1 else ''}" for n, s in counts if n]
        return ", ".join(parts) or "none"


@dataclass
class RunIndex:
    runs: list[RunSummary]
    problems: list[str]


def is_run_folder(path: Path) -> bool:
    return (path / "config.toml").is_file() and (path / "status.json").is_file()


def find_run_folders(folder: Path, problems: list[str], depth: int = SEARCH_DEPTH) -> list[Path]:
    """Run folders at or under `folder` (up to `depth` levels down), sorted by path; unreadable folders noted."""
    if is_run_folder(folder):
        return [folder]
    if depth == 0:
        return []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    except OSError as e:
        problems.append(f"{folder}: cannot be listed ({e.strerror or e})")
        return []
    found: list[Path] = []
    for child in children:
        found += find_run_folders(child, problems, depth - 1)
    return found


def list_runs(folders: list[str | Path]) -> RunIndex:
    """Every run under `folders` (each run once, however many folders hold it), newest first."""
    problems: list[str] = []
    seen: set[Path] = set()
    runs: list[RunSummary] = []
    for folder in folders:
        for path in find_run_folders(Path(folder).expanduser(), problems):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                runs.append(summarize_run(path))
            except (RunStateError, ConfigError, OSError, ValueError) as e:
                problems.append(f"{path}: cannot be read ({_first_line(e)})")
    runs.sort(key=lambda r: (r.date, r.name), reverse=True)
    return RunIndex(runs, problems)


def read_config(run: RunDir) -> RunConfig:
    """The run's config; RunStateError when config.toml is missing or no longer valid."""
    try:
        return load_config(run.config)
    except ConfigError as e:
        raise RunStateError(f"{run.config}: {'; '.join(e.problems) or e}") from None


def epoch_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-epoch rows of metrics.jsonl (not the final test row)."""
    return [r for r in rows if "split" not in r]


def best_of(config: RunConfig, epochs: list[dict[str, Any]]) -> tuple[str, float | None, int | None]:
    """(metric, best value, its epoch) by the metric the engine picks its best checkpoint with, in its mode."""
    es = config.early_stopping
    name = config.checkpoint.monitor or es.metric
    mode = es.mode if es.mode != "auto" else metric_mode(name)
    scored = [(float(r[name]), int(r.get("epoch", i + 1))) for i, r in enumerate(epochs) if is_number(r.get(name))]
    if not scored:
        return name, None, None
    value, epoch = (min if mode == "min" else max)(scored, key=lambda s: s[0])
    return name, value, epoch


def summarize_run(path: str | Path) -> RunSummary:
    """One run folder summed up; RunStateError when its config or status cannot be read."""
    run = RunDir(Path(path))
    config = read_config(run)
    status = run.read_status()
    rows = run.read_metrics()
    epochs = epoch_rows(rows)
    test = next((r for r in reversed(rows) if r.get("split") == "test"), {})
    task = config.task.kind.value
    best_metric, best_value, best_epoch = best_of(config, epochs)
    test_metric = f"test_{main_metric(task)}"
    times = [float(r["time_s"]) for r in epochs if is_number(r.get("time_s"))]
    state = str(status.get("state", "unknown"))
    notes: list[str] = []
    return RunSummary(
        name=run.root.name,
        path=str(run.root),
        status=state,
        task=task,
        model=Path(config.model.name).name if Path(config.model.name).is_absolute() else config.model.name,
        best_metric=best_metric,
        best_value=best_value,
        best_epoch=best_epoch,
        test_metric=test_metric,
        test_value=float(test[test_metric]) if is_number(test.get(test_metric)) else None,
        epochs=max((int(r.get("epoch", 0)) for r in epochs), default=0),
        duration_s=sum(times) if times else None,
        date=_started(run),
        findings=_finding_counts(run, notes),
        resumable=state in RESUMABLE_STATES and _has_checkpoint(run),
        training=state == "running" and _changed_within(run, ALIVE_WITHIN_S),
        notes=notes,
    )


def run_findings(run: RunDir) -> list[Finding] | None:
    """Today's checks on the run's saved record (None without diagnostics.json); ValueError if it is damaged."""
    from finetune_gui.core.diagnostics.checks import diagnose
    from finetune_gui.core.diagnostics.record import FILE_NAME, read_diagnostics

    if not (run.root / FILE_NAME).is_file():
        return None
    try:
        record, _ = read_diagnostics(run.root)
    except (OSError, json.JSONDecodeError, TypeError, KeyError) as e:
        raise ValueError(f"{FILE_NAME} cannot be read: {e}") from None
    return diagnose(record)


def _finding_counts(run: RunDir, notes: list[str]) -> dict[str, int] | None:
    try:
        findings = run_findings(run)
    except ValueError as e:
        notes.append(str(e))
        return None
    if findings is None:
        return None
    return {s: sum(f.severity == s for f in findings) for s in SEVERITIES}


def _started(run: RunDir) -> str:
    """environment.json's start time, else the folder's modification time."""
    try:
        started = json.loads(run.environment.read_text(encoding="utf-8")).get("started", "")
        if started:
            return str(started).replace("T", " ")[:19]
    except (OSError, ValueError, AttributeError):
        pass
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.root.stat().st_mtime))


def _has_checkpoint(run: RunDir) -> bool:
    from finetune_gui.core.checkpoints import list_checkpoints

    return bool(list_checkpoints(run))


def _changed_within(run: RunDir, seconds: float) -> bool:
    newest = 0.0
    for p in (run.status, run.log, run.steps_jsonl, run.metrics_jsonl):
        try:
            newest = max(newest, p.stat().st_mtime)
        except OSError:
            continue
    return time.time() - newest < seconds


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool, not NaN or infinite, not None)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
