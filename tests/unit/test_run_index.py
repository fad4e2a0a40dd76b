"""Runs listed and compared from their folders' files (issue 14, part 3): one row per run with its best
validation value in the metric's own direction, the task's test metric, epochs, duration, date and findings;
curves on a step, epoch or time axis; the config values that differ; a damaged folder is a problem, not a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_gui.config import validate_dict
from finetune_gui.core.errors import RunStateError
from finetune_gui.core.run_compare import (
    comparison_dict,
    config_rows,
    ema,
    findings_rows,
    load_histories,
    load_history,
    metric_names,
)
from finetune_gui.core.run_index import list_runs, summarize_run

EPOCHS = [  # val_loss is best at epoch 2, val_accuracy at epoch 3
    {"epoch": 1, "step": 4, "lr": 0.01, "train_loss": 1.2, "val_loss": 0.9, "val_accuracy": 0.5, "time_s": 10.0},
    {"epoch": 2, "step": 8, "lr": 0.01, "train_loss": 0.8, "val_loss": 0.7, "val_accuracy": 0.6, "time_s": 20.0},
    {"epoch": 3, "step": 12, "lr": 0.01, "train_loss": 0.5, "val_loss": 0.8, "val_accuracy": 0.7, "time_s": 30.0},
]
TEST_ROW = {"epoch": 3, "step": 12, "split": "test", "test_loss": 0.75, "test_accuracy": 0.65}


def make_run(
    root: Path,
    name: str,
    *,
    sections: dict | None = None,
    epochs: list[dict] = EPOCHS,
    test: dict | None = TEST_ROW,
    state: str = "completed",
    steps: int = 12,
    diagnostics: dict | None = None,
    started: str = "2026-01-01T10:00:00",
) -> Path:
    """A run folder written by hand, as the engine lays it out."""
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    config = validate_dict({"task": {"kind": "image-classification"}, **(sections or {})})
    (run / "config.toml").write_text(config.to_toml(), encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": state, "step": steps, "total_steps": 12}), encoding="utf-8")
    rows = [*epochs, *([test] if test else [])]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    lines = [{"step": s, "epoch": (s - 1) // 4, "loss": 2.0 / s, "lr": 0.01, "grad_norm": None} for s in range(1, 13)]
    (run / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines[:steps]), encoding="utf-8")
    (run / "environment.json").write_text(json.dumps({"started": started}), encoding="utf-8")
    if diagnostics is not None:
        (run / "diagnostics.json").write_text(json.dumps(diagnostics), encoding="utf-8")
    return run


def overfitting_record() -> dict:
    """A saved record on which today's overfitting check fires (validation loss up while training loss falls)."""
    epochs = [
        {"epoch": e, "step": 10 * e, "elapsed_s": float(e), "train_loss": 1.0 / e, "val_loss": 0.5 + 0.1 * e}
        for e in range(1, 7)
    ]
    return {"record": {"task": "image-classification", "epochs": epochs, "patience": 3}, "findings": []}


def test_a_run_is_summed_up_with_its_best_value_in_the_monitored_metrics_direction(tmp_path):
    lower = summarize_run(make_run(tmp_path, "by-loss"))
    assert (lower.best_metric, lower.best_value, lower.best_epoch) == ("val_loss", 0.7, 2)
    higher = summarize_run(make_run(tmp_path, "by-accuracy", sections={"early_stopping": {"metric": "val_accuracy"}}))
    assert (higher.best_metric, higher.best_value, higher.best_epoch) == ("val_accuracy", 0.7, 3)
    forced = make_run(tmp_path, "forced-min", sections={"early_stopping": {"metric": "val_accuracy", "mode": "min"}})
    assert summarize_run(forced).best_value == 0.5
    assert (lower.test_metric, lower.test_value) == ("test_accuracy", 0.65)
    assert (lower.epochs, lower.duration_s, lower.status, lower.model) == (3, 60.0, "completed", "resnet18")
    assert lower.date == "2026-01-01 10:00:00" and lower.findings is None and lower.findings_text == "–"


def test_a_run_without_validation_or_test_values_has_none(tmp_path):
    run = summarize_run(make_run(tmp_path, "bare", epochs=[{"epoch": 1, "step": 4, "train_loss": 1.0}], test=None))
    assert run.best_value is None and run.test_value is None and run.duration_s is None and run.epochs == 1


def test_findings_are_counted_by_severity_from_todays_checks_on_the_saved_record(tmp_path):
    run = summarize_run(make_run(tmp_path, "overfit", diagnostics=overfitting_record()))
    assert run.findings == {"info": 0, "warning": 1, "critical": 0}  # the saved findings list was empty
    assert run.findings_text == "1 warning"


def test_listing_finds_runs_two_levels_down_once_each_newest_first_and_reports_unreadable_ones(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    make_run(runs, "first")
    make_run(runs / "experiment", "nested", started="2026-01-02T09:00:00")
    (runs / "notes").mkdir()  # a folder that is not a run: passed over quietly
    broken = make_run(runs, "broken")
    (broken / "config.toml").write_text("[train]\nepochs = 'many'\n", encoding="utf-8")
    damaged = make_run(runs, "damaged-status")
    (damaged / "status.json").write_text("{not json", encoding="utf-8")
    index = list_runs([runs, runs / "experiment", tmp_path / "missing"])
    assert [r.name for r in index.runs] == ["nested", "first"]
    assert len(index.problems) == 2
    assert any("broken" in p and "train.epochs" in p for p in index.problems), index.problems
    assert any("damaged-status" in p for p in index.problems), index.problems


def test_a_stopped_run_with_a_checkpoint_can_be_resumed_and_an_active_one_counts_as_training(tmp_path):
    stopped = make_run(tmp_path, "stopped", state="stopped")
    assert not summarize_run(stopped).resumable  # no checkpoint yet
    (stopped / "checkpoints" / "step-00000008.sha256").write_text("", encoding="utf-8")
    assert summarize_run(stopped).resumable
    assert summarize_run(make_run(tmp_path, "going", state="running")).training  # its files changed just now
    assert not summarize_run(stopped).training


def test_curves_take_the_step_epoch_or_elapsed_time_axis(tmp_path):
    history = load_history(make_run(tmp_path, "a"))
    assert history.curve("val_loss", "step") == ([4.0, 8.0, 12.0], [0.9, 0.7, 0.8])
    assert history.curve("val_loss", "epoch")[0] == [1.0, 2.0, 3.0]
    assert history.curve("val_loss", "time")[0] == [10.0, 30.0, 60.0]
    xs, ys = history.curve("train_loss", "step")  # per step, from steps.jsonl
    assert xs == [float(s) for s in range(1, 13)] and ys[0] == 2.0
    assert history.curve("train_loss", "epoch")[0][:4] == [0.25, 0.5, 0.75, 1.0]
    assert history.curve("train_loss", "time")[0][1] == 5.0  # step 2 of 4 in a 10 s first epoch
    with pytest.raises(ValueError):
        history.curve("val_loss", "wall")


def test_a_run_stopped_in_its_first_epoch_still_has_an_epoch_axis(tmp_path):
    history = load_history(make_run(tmp_path, "early", epochs=[], test=None, state="stopped", steps=2))
    # 12 planned steps over config.train.epochs (10 by default)
    assert history.curve("train_loss", "epoch")[0] == pytest.approx([1 / 1.2, 2 / 1.2])


def test_metric_names_put_the_training_loss_first_then_validation_then_the_learning_rate(tmp_path):
    histories = load_histories([make_run(tmp_path, "a"), make_run(tmp_path, "b", steps=0)])
    assert metric_names(histories) == ["train_loss", "val_loss", "val_accuracy", "lr"]


def test_ema_smooths_without_pulling_the_first_values_to_zero():
    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])
    assert ema([0.0, 10.0], 0.5) == pytest.approx([0.0, 10.0 * 0.5 / 0.75])
    assert ema([3.0, 1.0], 0.0) == [3.0, 1.0]
    with pytest.raises(ValueError):
        ema([1.0], 1.0)


def test_the_config_table_holds_only_the_values_that_differ_unless_all_are_asked_for(tmp_path):
    a = make_run(tmp_path, "a", sections={"train": {"lr": 0.01}})
    b = make_run(tmp_path, "b", sections={"train": {"lr": 0.001, "weight_decay": 0.1}})
    c = make_run(tmp_path, "c", sections={"train": {"lr": 0.01}})
    histories = load_histories([a, b, c])
    assert config_rows(histories) == [("train.lr", [0.01, 0.001, 0.01]), ("train.weight_decay", [0.01, 0.1, 0.01])]
    everything = dict(config_rows(histories, differences_only=False))
    assert everything["train.epochs"] == [10, 10, 10] and len(everything) > 50


def test_findings_line_up_by_check_worst_first(tmp_path):
    sick = make_run(tmp_path, "sick", diagnostics=overfitting_record())
    healthy = make_run(tmp_path, "healthy", diagnostics={"record": {"task": "image-classification"}})
    old = make_run(tmp_path, "old")  # from before diagnostics
    rows = findings_rows(load_histories([sick, healthy, old]))
    assert [(fid, severities) for fid, _, severities in rows] == [("overfitting", ["warning", None, None])]
    data = comparison_dict(load_histories([sick, old]))
    assert data["findings"][0][0]["id"] == "overfitting" and data["findings"][1] is None
    assert {"metric": "best val_loss", "values": [0.7, 0.7]} in data["metrics"]


def test_a_folder_that_is_not_a_run_cannot_be_compared_and_nine_runs_are_too_many(tmp_path):
    with pytest.raises(RunStateError):
        load_history(tmp_path)
    with pytest.raises(ValueError):
        load_histories([tmp_path] * 9)
