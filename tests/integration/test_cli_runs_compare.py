"""`finetune-gui runs [DIR ...] [--json]` lists the runs of folders; `finetune-gui compare RUN RUN... [--json]`
shows how runs differ: config, best and final metrics, findings (issue 14, part 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from finetune_gui.cli import EXIT_CONFIG, EXIT_OK, EXIT_RUN, main
from tests.compared_runs import train_three_runs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> list[Path]:
    return train_three_runs(tmp_path_factory.mktemp("compared"))


def test_runs_lists_each_run_of_the_runs_folder_in_the_current_folder(three_runs, monkeypatch, capsys):
    monkeypatch.chdir(three_runs[0].parent.parent)  # the folder that holds runs/
    assert main(["runs"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "status", "task", "model", "best", "val", "test"] + [
        "epochs",
        "time",
        "date",
        "findings",
    ]
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(r.name for r in three_runs)
    assert all("completed" in line and "tinynet" in line and "val_loss" in line for line in lines[1:])


def test_runs_as_json_and_a_damaged_run_is_a_warning_not_a_failure(three_runs, tmp_path, capsys):
    folder = tmp_path / "runs"
    for run in three_runs:
        shutil.copytree(run, folder / run.name)
    (folder / three_runs[0].name / "status.json").write_text("{cut short", encoding="utf-8")
    assert main(["runs", str(folder), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert sorted(r["name"] for r in data["runs"]) == sorted(r.name for r in three_runs[1:])
    assert data["runs"][0]["test_metric"] == "test_accuracy" and data["runs"][0]["epochs"] == 2
    assert len(data["problems"]) == 1 and three_runs[0].name in data["problems"][0]
    assert main(["runs", str(folder)]) == EXIT_OK
    assert f"warning: {folder / three_runs[0].name}" in capsys.readouterr().err


def test_compare_shows_the_config_differences_the_metrics_side_by_side_and_each_runs_findings(three_runs, capsys):
    high, _, low = three_runs
    assert main(["compare", str(high), str(low)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"A  {high.name}" in out and f"B  {low.name}" in out
    differences = out.split("config differences:")[1].split("metrics:")[0]
    assert "train.lr" in differences and "0.03" in differences and "0.001" in differences
    assert "train.batch_size" in differences and "train.epochs" not in differences  # alike: left out
    assert "best val_loss" in out and "test_accuracy" in out and "final val_accuracy" in out
    findings = out.split("findings:")[1].splitlines()
    assert any(line.startswith("A  ") for line in findings) and any(line.startswith("B  ") for line in findings)


def test_compare_all_shows_every_config_value_and_json_has_the_same_parts(three_runs, capsys):
    assert main(["compare", *map(str, three_runs), "--all"]) == EXIT_OK
    assert "train.epochs" in capsys.readouterr().out
    assert main(["compare", *map(str, three_runs), "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in data["runs"]] == [r.name for r in three_runs]
    lr = next(row for row in data["config"] if row["key"] == "train.lr")
    assert lr["values"] == [0.03, 0.01, 0.001]
    assert len(data["findings"]) == 3 and all(isinstance(f, list) for f in data["findings"])


def test_compare_refuses_a_folder_that_is_not_a_run_and_fewer_than_two_runs(three_runs, tmp_path, capsys):
    assert main(["compare", str(three_runs[0]), str(tmp_path)]) == EXIT_RUN
    assert "not a run folder" in capsys.readouterr().err
    assert main(["compare", str(three_runs[0])]) == EXIT_CONFIG
    assert "2 to 8 runs" in capsys.readouterr().err
