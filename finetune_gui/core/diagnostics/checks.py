"""Every check, and `diagnose`: the findings a run record gives, worst first."""

from __future__ import annotations

from finetune_gui.core.diagnostics import data_checks, training_checks
from finetune_gui.core.diagnostics.findings import Finding, worst_first
from finetune_gui.core.diagnostics.record import RunRecord

CHECKS = (
    data_checks.nothing_to_transfer,
    data_checks.transformer_lr,
    training_checks.lr_too_high,
    training_checks.overfitting,
    training_checks.not_learning,
    training_checks.lr_too_low,
    training_checks.gradient_flow,
    training_checks.dead_units,
    training_checks.frozen_drift,
    data_checks.class_imbalance,
    data_checks.never_predicted,
    data_checks.leakage,
    data_checks.unseen_labels,
)


def diagnose(record: RunRecord, checks=CHECKS) -> list[Finding]:
    """What `checks` find in `record`, worst first."""
    return worst_first([f for check in checks if (f := check(record)) is not None])


def diagnose_run(run_dir) -> list[Finding]:
    """A run folder's findings, from its saved record with today's checks (RunStateError without one)."""
    from finetune_gui.core.diagnostics.record import read_record

    return diagnose(read_record(run_dir))
