"""The loop's diagnostician: a TrainingHook that keeps the RunRecord, takes the probes on logged steps, runs
the checks as the run goes, reports each new finding once, and saves diagnostics.json in the run folder."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from finetune_gui.core.diagnostics import probes
from finetune_gui.core.diagnostics.checks import diagnose
from finetune_gui.core.diagnostics.findings import SEVERITIES, Finding
from finetune_gui.core.diagnostics.record import FILE_NAME, ProbeRow, RunRecord, StepRow, json_safe
from finetune_gui.core.training.hooks import StepEnd, TrainingHook
from finetune_gui.files import atomic_write_text

log = logging.getLogger(__name__)


class DiagnosticsHook(TrainingHook):
    """Diagnoses a run while it trains. A failure inside it turns it off with a warning; the run goes on.

    `heavy` adds the costlier probes (per-block gradients, dead units) to the logged steps."""

    def __init__(self, *, heavy: bool = True, suggested_lr: float | None = None):
        """`suggested_lr`: the LR finder's value for this setup, if it was run; remedies that lower or raise the
        LR then offer it."""
        self.heavy = heavy
        self.record = RunRecord(suggested_lr=suggested_lr)
        self.findings: list[Finding] = []
        self._said: dict[str, str] = {}  # finding id -> severity reported
        self._ready = False
        self._off = False
        self._before: list | None = None
        self._row: ProbeRow | None = None  # the probes of the logged step under way
        self._bn: dict = {}
        self._dead: probes.DeadUnitProbe | None = None
        self._params: list = []

    # ------------------------------------------------------------ the loop's events
    def before_backward(self, trainer: Any, loss) -> None:
        self._guard(trainer, self._set_up)

    def before_step(self, trainer: Any, logged: bool) -> None:
        if logged:
            self._guard(trainer, self._probe_gradients)

    def on_step_end(self, trainer: Any, step: StepEnd) -> None:
        if step.logged:
            self._guard(trainer, lambda t: self._logged_step(t, step))
        elif self._dead is not None:
            self._dead.active = self._next_logged(trainer, step.step)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        self._guard(trainer, lambda t: self._epoch(t, epoch, metrics))

    def on_run_end(self, trainer: Any, status: str) -> None:
        self._guard(trainer, lambda t: self._finish(t, status))
        if self._dead is not None:
            self._dead.remove()

    # ------------------------------------------------------------ work
    def _guard(self, trainer: Any, work) -> None:
        if self._off:
            return
        try:
            work(trainer)
        except Exception as e:  # a diagnosis must never end a run
            self._off = True
            log.warning("diagnostics turned off: %s", e, exc_info=True)
            from finetune_gui.core.training.events import LogMessage

            trainer.emit(LogMessage("warning", f"diagnostics turned off for this run: {type(e).__name__}: {e}"))

    def _set_up(self, trainer: Any) -> None:
        if self._ready:
            return
        self._ready = True
        p, cfg, r = trainer.p, trainer.config, self.record
        data = p.data
        r.task, r.labels = p.task.value, list(data.labels)
        splits = {"train": data.train, "val": data.val, "test": data.test}
        r.class_counts = {s: c for s, ds in splits.items() if (c := probes.class_counts(ds, r.labels))}
        r.duplicates = probes.duplicates_across_splits(data.train, {"val": data.val, "test": data.test})
        r.random_init, r.model_kind, r.lora = bool(p.bundle.random_init), p.bundle.kind, cfg.model.lora.enabled
        r.freeze, r.class_weights = cfg.model.freeze, cfg.train.class_weights
        r.trainable_params = sum(q.numel() for q in p.model.parameters() if q.requires_grad)
        r.total_params = sum(q.numel() for q in p.model.parameters())
        r.early_stopping, r.patience = bool(trainer.early_stopping), cfg.early_stopping.patience
        r.lr = cfg.train.lr
        r.blocks, r.head_blocks = [*p.bundle.blocks, *p.bundle.head], len(p.bundle.head)
        self._params = [q for q in p.model.parameters() if q.requires_grad]
        self._bn = probes.frozen_batchnorm(p.model)
        if self.heavy:
            self._dead = probes.DeadUnitProbe(p.model)
            self._dead.active = self._next_logged(trainer, trainer.state.step)
        self._report(trainer)  # what the data and the setup say before the first step

    def _next_logged(self, trainer: Any, done: int) -> bool:
        """Whether the step after `done` steps is a logged one (its forward passes feed the dead-unit probe)."""
        return (done + 1) % trainer.config.train.log_every == 0 or done + 1 == trainer.p.total_steps

    def _probe_gradients(self, trainer: Any) -> None:
        self._row = ProbeRow(step=trainer.state.step + 1)
        if self.heavy:
            self._row.block_grad = probes.block_gradients(trainer.p.model, self.record.blocks)
        self._before = probes.snapshot(self._params)

    def _logged_step(self, trainer: Any, step: StepEnd) -> None:
        self.record.steps.append(StepRow(step.step, step.epoch, step.loss, step.lr, step.grad_norm))
        row = self._row
        if row is not None and row.step == step.step:
            if self._before is not None:
                row.update_ratio = probes.update_ratio(self._before, self._params)
            if self._dead is not None:
                row.dead = self._dead.take()
            self.record.probes.append(row)
            if self.heavy:
                from finetune_gui.core.training.events import Probed

                trainer.emit(Probed(row.step, tuple(self.record.blocks), tuple(row.block_grad), dict(row.dead)))
        self._before, self._row = None, None
        if self._dead is not None:
            self._dead.active = self._next_logged(trainer, step.step)
        self._report(trainer)

    def _epoch(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        elapsed = getattr(trainer, "epoch_start", None)
        row = {"epoch": epoch + 1, "step": trainer.state.step, **{k: float(v) for k, v in metrics.items()}}
        if elapsed is not None:
            row["elapsed_s"] = time.monotonic() - elapsed
        self.record.epochs.append(row)
        self.record.frozen_bn_drift = max(
            self.record.frozen_bn_drift, probes.batchnorm_drift(trainer.p.model, self._bn)
        )
        self._report(trainer, refresh=True)
        self.save(trainer.run_dir.root)

    def _finish(self, trainer: Any, status: str) -> None:
        self.record.stopped_early = status == "early-stopped"
        evaluation = trainer.run_dir.root / "evaluation.json"
        if evaluation.is_file():
            report = json.loads(evaluation.read_text(encoding="utf-8"))
            matrix, labels = report.get("confusion_matrix"), report.get("labels") or []
            if matrix and len(labels) == len(matrix):
                self.record.support = {label: int(sum(row)) for label, row in zip(labels, matrix)}
                self.record.predicted = {label: int(sum(row[j] for row in matrix)) for j, label in enumerate(labels)}
        self._report(trainer, refresh=True)
        self.save(trainer.run_dir.root)

    # ------------------------------------------------------------ saying and saving
    def _report(self, trainer: Any, refresh: bool = False) -> None:
        """Run the checks; log each finding that is new, or worse than when it was said, and send the findings
        whenever they change."""
        from finetune_gui.core.training.events import Diagnosis, LogMessage

        before = [(f.id, f.severity) for f in self.findings]
        sent = [f.to_dict() for f in self.findings]
        self.findings = diagnose(self.record)
        for f in self.findings:
            said = self._said.get(f.id)
            if said is None or SEVERITIES.index(f.severity) > SEVERITIES.index(said):
                self._said[f.id] = f.severity
                level = "info" if f.severity == "info" else "warning"
                trainer.emit(LogMessage(level, f"diagnosis: {f.line()}"))
        now = [f.to_dict() for f in self.findings]
        changed = [(f.id, f.severity) for f in self.findings] != before  # new, worse, or gone again
        if changed or (refresh and now != sent):  # at epoch ends the numbers of a finding are brought up to date
            trainer.emit(Diagnosis(tuple(now)))

    def save(self, run_root) -> None:
        data = {"record": self.record.to_dict(), "findings": json_safe([f.to_dict() for f in self.findings])}
        atomic_write_text(run_root / FILE_NAME, json.dumps(data, indent=1))
