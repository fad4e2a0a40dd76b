"""Runs side by side: their curves on one x axis (step, epoch or elapsed time), their config differences and their
findings. Built on the run folders' files alone, so runs of the app, the CLI and older versions compare alike.

Curves are per epoch from metrics.jsonl, except the training loss, which steps.jsonl has per step (a run from
before steps.jsonl falls back to its per-epoch means). A step's epoch and time are interpolated between the
ends of the epochs around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_gui.config import RunConfig
from finetune_gui.core.diagnostics.findings import SEVERITIES, Finding, worst_first
from finetune_gui.core.diagnostics.remedies import config_diff
from finetune_gui.core.errors import RunStateError
from finetune_gui.core.run_index import (
    RunSummary,
    epoch_rows,
    is_number,
    is_run_folder,
    read_config,
    run_findings,
    summarize_run,
)
from finetune_gui.core.runs import RunDir

MIN_RUNS, MAX_RUNS = 2, 8
X_AXES = ("step", "epoch", "time")
STEP_METRIC = "train_loss"  # the one metric that steps.jsonl holds per step
_NOT_CURVES = ("epoch", "step", "time_s", "split")


@dataclass
class RunHistory:
    """What a comparison needs of one run, read from its folder."""

    summary: RunSummary
    config: RunConfig
    epochs: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    findings: list[Finding] | None  # None: the run has no diagnosis (from before diagnostics, or damaged)

    @property
    def name(self) -> str:
        return self.summary.name

    def curve(self, metric: str, x: str = "step") -> tuple[list[float], list[float]]:
        """(xs, ys) of `metric` against `x` ("step", "epoch" or "time" in seconds); values not logged are left out."""
        if x not in X_AXES:
            raise ValueError(f"x must be one of {', '.join(X_AXES)}, not {x!r}")
        if metric == STEP_METRIC and self.steps:
            points = [(float(s["step"]), s.get("loss")) for s in self.steps]
        else:
            key = "lr" if metric == "lr" else metric
            points = [(float(r.get("step", 0)), r.get(key)) for r in self.epochs]
        points = [(s, float(v)) for s, v in points if is_number(v)]
        if x == "step":
            return [s for s, _ in points], [v for _, v in points]
        ends = self._epoch_ends(x)
        if len(ends) < 2:
            return [], []
        return [_interpolate(s, ends) for s, _ in points], [v for _, v in points]

    def _epoch_ends(self, x: str) -> list[tuple[float, float]]:
        """(step, epoch or elapsed seconds) at the start and at the end of each epoch logged."""
        ends, elapsed = [(0.0, 0.0)], 0.0
        for i, r in enumerate(self.epochs):
            elapsed += float(r.get("time_s", 0.0) or 0.0)
            ends.append((float(r.get("step", 0)), float(r.get("epoch", i + 1)) if x == "epoch" else elapsed))
        if x == "epoch" and len(ends) == 1:  # stopped within its first epoch: the planned steps per epoch
            total = RunDir(Path(self.summary.path)).read_status().get("total_steps")
            if total:
                ends.append((float(total) / self.config.train.epochs, 1.0))
        return [e for i, e in enumerate(ends) if i == 0 or e[0] > ends[i - 1][0]]


def load_history(path: str | Path) -> RunHistory:
    """One run folder read for comparing; RunStateError for a folder that is not a run."""
    root = Path(path)
    if not is_run_folder(root):
        raise RunStateError(f"{root}: not a run folder (it needs config.toml and status.json)")
    run = RunDir(root)
    try:
        findings = run_findings(run)
    except ValueError:
        findings = None  # the summary's notes say why
    return RunHistory(summarize_run(root), read_config(run), epoch_rows(run.read_metrics()), run.read_steps(), findings)


def load_histories(paths: list[str | Path]) -> list[RunHistory]:
    """Runs read for comparing (at most MAX_RUNS; ValueError for more)."""
    if len(paths) > MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS} runs can be compared at once, not {len(paths)}")
    return [load_history(p) for p in paths]


def metric_names(histories: list[RunHistory]) -> list[str]:
    """The metrics any of the runs logged: the training loss, the validation ones, other training ones, the LR."""
    names: dict[str, None] = {STEP_METRIC: None} if any(h.steps for h in histories) else {}
    for h in histories:
        for r in h.epochs:
            names.update((k, None) for k, v in r.items() if k not in _NOT_CURVES and is_number(v))

    def rank(name: str) -> int:
        if name == STEP_METRIC:
            return 0
        if name == "val_loss":
            return 1
        return 2 if name.startswith("val_") else 4 if name == "lr" else 3

    return sorted(names, key=rank)


def ema(values: list[float], weight: float) -> list[float]:
    """Exponential moving average with TensorBoard's debiasing (the first values are not pulled towards 0);
    weight 0 leaves the values as they are, weight near 1 smooths hardest."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), not {weight}")
    out, last = [], 0.0
    for n, v in enumerate(values, start=1):
        last = last * weight + (1.0 - weight) * v
        out.append(last / (1.0 - weight**n))
    return out


def config_rows(histories: list[RunHistory], differences_only: bool = True) -> list[tuple[str, list[Any]]]:
    """("section.key", the value in each run) in config order; only keys whose values differ, or all of them."""
    flat = [dict(_flatten(h.config.to_dict())) for h in histories]
    differing: set[str] = set()
    for other in histories[1:]:
        differing.update(key for key, _, _ in config_diff(histories[0].config, other.config))
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [(k, [f.get(k) for f in flat]) for k in keys if not differences_only or k in differing]


def findings_rows(histories: list[RunHistory]) -> list[tuple[str, str, list[str | None]]]:
    """(finding id, title, severity in each run or None), the worst findings first."""
    titles: dict[str, str] = {}
    by_run: list[dict[str, str]] = []
    for h in histories:
        found = {f.id: f.severity for f in h.findings or []}
        for f in h.findings or []:
            titles.setdefault(f.id, f.title)
        by_run.append(found)
    rows = [(fid, title, [found.get(fid) for found in by_run]) for fid, title in titles.items()]
    return sorted(rows, key=lambda r: -max(SEVERITIES.index(s) for s in r[2] if s))


def metric_rows(histories: list[RunHistory]) -> list[tuple[str, list[float | None]]]:
    """The best validation value, the test metric, then each metric's value at the last epoch, per run."""
    rows: list[tuple[str, list[float | None]]] = []
    for label in dict.fromkeys(f"best {h.summary.best_metric}" for h in histories):
        metric = label.removeprefix("best ")
        rows.append((label, [h.summary.best_value if h.summary.best_metric == metric else None for h in histories]))
    for label in dict.fromkeys(h.summary.test_metric for h in histories):
        rows.append((label, [h.summary.test_value if h.summary.test_metric == label else None for h in histories]))
    for name in metric_names(histories):
        if name == "lr":
            continue
        last = [h.epochs[-1].get(name) if h.epochs else None for h in histories]
        rows.append((f"final {name}", [float(v) if is_number(v) else None for v in last]))
    return rows


def comparison_dict(histories: list[RunHistory], differences_only: bool = True) -> dict[str, Any]:
    """The comparison as plain JSON data (`finetune-gui compare --json`)."""
    return {
        "runs": [h.summary.to_dict() for h in histories],
        "config": [{"key": k, "values": v} for k, v in config_rows(histories, differences_only)],
        "metrics": [{"metric": k, "values": v} for k, v in metric_rows(histories)],
        "findings": [None if h.findings is None else [f.to_dict() for f in worst_first(h.findings)] for h in histories],
    }


def _flatten(values: dict[str, Any], prefix: str = ""):
    for k, v in values.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _interpolate(step: float, ends: list[tuple[float, float]]) -> float:
    """The value at `step` on the polyline through `ends` (extended past its last point by its last slope)."""
    for (s0, v0), (s1, v1) in zip(ends, ends[1:]):
        if step <= s1:
            return v0 + (v1 - v0) * (step - s0) / (s1 - s0)
    (s0, v0), (s1, v1) = ends[-2], ends[-1]
    return v1 + (v1 - v0) * (step - s1) / (s1 - s0)
