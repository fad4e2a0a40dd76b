"""A run folder keeps its reported steps in steps.jsonl (issue 13, item 8), so a reopened or resumed run can plot
them; the file survives a crash mid-line and a resume forgets the steps it redoes."""

from __future__ import annotations

import json
import math

from finetune_gui.core.runs import new_run_dir


def test_steps_are_appended_and_read_back_with_unmeasured_values_as_none(tmp_path):
    run = new_run_dir(tmp_path, "r")
    run.append_step(1, 0, 0.9, 1e-3, math.nan)  # a step reported without measuring its gradient norm
    run.append_step(2, 0, 0.8, 1e-3, 2.5)
    assert "NaN" not in run.steps_jsonl.read_text()  # plain JSON, readable by any tool
    assert run.read_steps() == [
        {"step": 1, "epoch": 0, "loss": 0.9, "lr": 1e-3, "grad_norm": None},
        {"step": 2, "epoch": 0, "loss": 0.8, "lr": 1e-3, "grad_norm": 2.5},
    ]


def test_a_last_line_cut_short_by_a_crash_is_skipped(tmp_path):
    run = new_run_dir(tmp_path, "r")
    run.append_step(1, 0, 0.9, 1e-3, 1.0)
    with open(run.steps_jsonl, "a", encoding="utf-8") as f:
        f.write('{"step": 2, "epoch": 0, "lo')
    assert [r["step"] for r in run.read_steps()] == [1]


def test_resuming_drops_the_steps_after_the_checkpoint(tmp_path):
    run = new_run_dir(tmp_path, "r")
    for step in range(1, 8):
        run.append_step(step, 0, 1.0 / step, 1e-3, 1.0)
    with open(run.steps_jsonl, "a", encoding="utf-8") as f:
        f.write('{"step": 8, "ep')  # then the process was killed
    run.truncate_metrics(after_step=4)
    assert [r["step"] for r in run.read_steps()] == [1, 2, 3, 4]
    assert all(json.loads(line) for line in run.steps_jsonl.read_text().splitlines())  # the cut line is gone
