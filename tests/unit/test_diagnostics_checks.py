"""The checks read a run record alone: what makes each one speak, what keeps it quiet, and a record saved and
read back diagnoses the same (issue 14)."""

from __future__ import annotations

import json
import math

from finetune_gui.config import RunConfig
from finetune_gui.core.diagnostics.checks import diagnose
from finetune_gui.core.diagnostics.findings import Finding, Remedy
from finetune_gui.core.diagnostics.record import ProbeRow, RunRecord, StepRow
from finetune_gui.core.diagnostics.remedies import apply_remedy, config_diff
from finetune_gui.core.diagnostics.training_checks import lr_too_high, not_learning, overfitting


def epochs(val_losses, train_losses, seconds=10.0) -> list[dict]:
    return [
        {"epoch": i + 1, "val_loss": v, "train_loss": t, "elapsed_s": seconds}
        for i, (v, t) in enumerate(zip(val_losses, train_losses))
    ]


def test_overfitting_is_validation_loss_rising_while_training_loss_falls():
    record = RunRecord(task="text-classification", patience=2)
    record.epochs = epochs([0.60, 0.55, 0.70, 0.90, 1.14], [0.5, 0.3, 0.1, 0.05, 0.03])
    f = overfitting(record)
    assert (f.began_epoch, f.severity) == (3, "warning")
    assert f.evidence["seconds_after_best"] == 30.0 and f.evidence["seconds_early_stopping_saves"] == 10.0
    assert "epoch 2" in f.explanation and "0.55" in f.explanation
    assert {"early_stopping.enabled": True, "early_stopping.patience": 2} in [r.changes for r in f.remedies]
    assert not any(k.startswith("augment.") for r in f.remedies for k in r.changes)  # text has no augmentation


def test_no_overfitting_while_validation_loss_still_falls_or_training_loss_rises_too():
    falling = RunRecord(epochs=epochs([0.9, 0.8, 0.7, 0.6], [0.9, 0.8, 0.7, 0.6]))
    both_rise = RunRecord(epochs=epochs([0.5, 0.7, 0.9, 1.1], [0.4, 0.6, 0.8, 1.0]))
    assert overfitting(falling) is None and overfitting(both_rise) is None


def test_a_validation_loss_back_near_its_best_is_the_noise_of_a_small_split():
    record = RunRecord(epochs=epochs([0.20, 0.143, 0.475, 0.218, 0.193, 0.145], [0.2, 0.15, 0.09, 0.17, 0.11, 0.10]))
    assert overfitting(record) is None  # seen on the demo preset: 36 validation images, 20 epochs


def test_overfitting_that_early_stopping_caught_is_only_information():
    record = RunRecord(stopped_early=True, early_stopping=True)
    record.epochs = epochs([0.6, 0.5, 0.7, 0.8], [0.5, 0.3, 0.1, 0.05])
    assert overfitting(record).severity == "info"


def test_one_odd_batch_is_not_a_spike_but_a_climbing_loss_is():
    steps = [StepRow(i + 1, 0, loss, 0.01, float("nan")) for i, loss in enumerate([1.0, 0.5, 0.3, 0.2, 3.0, 0.2, 0.2])]
    assert lr_too_high(RunRecord(lr=0.01, steps=steps)) is None
    steps += [StepRow(8 + i, 0, loss, 0.01, float("nan")) for i, loss in enumerate([5.0, 40.0, 900.0])]
    f = lr_too_high(RunRecord(lr=0.01, steps=steps))
    assert f.began_step == 9 and f.remedies[0].changes == {"train.lr": 0.001}


def test_a_saved_record_diagnoses_the_same_when_read_back():
    record = RunRecord(task="image-classification", lr=1e-8, random_init=True, trainable_params=10, total_params=1000)
    record.class_counts = {"train": {"cat": 100, "dog": 5}, "val": {"cat": 3, "bird": 1}}
    record.steps = [StepRow(i, 0, 1.0, 1e-8, float("nan")) for i in range(1, 13)]
    record.probes = [ProbeRow(i, 1e-9, [1e-9, float("nan"), 1.0]) for i in range(1, 7)]
    found = diagnose(record)
    again = diagnose(RunRecord.from_dict(json.loads(json.dumps(record.to_dict()))))
    assert [f.id for f in found] == [f.id for f in again]
    assert found[0].id == "nothing-to-transfer"  # the critical one first
    assert {"lr-too-low", "vanishing-gradients", "class-imbalance", "unseen-labels"} <= {f.id for f in found}
    assert math.isnan(RunRecord.from_dict(record.to_dict()).probes[0].block_grad[1])


def test_a_finding_survives_json_and_a_remedy_becomes_a_checked_config():
    f = Finding("x", "warning", "T", "E", remedies=[Remedy("Lower", {"train.lr": 1e-4, "model.head_dropout": 0.3})])
    assert Finding.from_dict(json.loads(json.dumps(f.to_dict()))) == f
    config = RunConfig()
    fixed = apply_remedy(config, f.remedies[0])
    assert config_diff(config, fixed) == [("model.head_dropout", 0.0, 0.3), ("train.lr", 0.001, 0.0001)]
    assert config.train.lr == 0.001  # the original is left as it was


def test_a_regression_never_better_than_the_mean_is_not_learning_but_one_that_was_once_is():
    record = RunRecord(task="image-regression")
    record.steps = [StepRow(step=i, epoch=0, loss=1.0 / i, lr=1e-3, grad_norm=1.0) for i in range(1, 30)]
    record.epochs = [{"epoch": 1, "val_r2": -3.9}, {"epoch": 2, "val_r2": -5.6}]
    f = not_learning(record)
    assert f is not None and "R² never rose above 0" in f.explanation
    record.epochs = [{"epoch": 1, "val_r2": 0.21}, {"epoch": 2, "val_r2": -1.0}]  # it was better once: overfitting's
    assert not_learning(record) is None
