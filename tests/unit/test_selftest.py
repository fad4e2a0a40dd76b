"""`finetune-gui --self-test`: one line per check, every check runs, and any failure makes the exit code 1."""

from __future__ import annotations

import io
import sys
import types

import pytest

from finetune_gui import selftest
from finetune_gui.cli import main


def test_the_self_test_from_source_imports_opens_the_window_trains_and_exports(monkeypatch, capsys):
    for name in ("QT_QPA_PLATFORM", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)  # restored afterwards; the self-test sets what it needs itself
    code = main(["--self-test"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("finetune-gui ") and "self-test (from source" in lines[0]
    results = {line[6:].split()[0]: line[:4].strip() for line in lines[1:-1]}
    assert list(results) == [name for name, _ in selftest.CHECKS]
    assert set(results.values()) == {"ok"}, lines
    assert code == 0
    assert lines[-1].startswith("self-test: all checks passed")
    export_line = next(line for line in lines if line[6:].startswith("export-onnx"))
    assert "verified against the eager model" in export_line


def test_a_failing_check_prints_its_reason_and_the_later_checks_still_run(tmp_path):
    ran = []

    def good(ctx):
        ran.append(ctx.workdir.exists())
        return "fine"

    def refuses(ctx):
        raise selftest.CheckFailed("the widget is missing; bundle it")

    def crashes(ctx):
        raise ValueError("unexpected") from OSError("libfoo.so: cannot open")

    out = io.StringIO()
    failed = selftest.run_checks(
        [("one", good), ("two", refuses), ("three", crashes), ("four", good)], out=out, workdir=tmp_path
    )
    lines = out.getvalue().splitlines()
    assert failed == 2
    assert ran == [True, True]
    assert lines[1].startswith("ok    one    fine  [")
    assert lines[2] == "FAIL  two    the widget is missing; bundle it"
    assert lines[3].startswith("FAIL  three  ValueError: unexpected (at test_selftest.py:")
    assert lines[3].endswith("; caused by OSError: libfoo.so: cannot open")
    assert lines[4].startswith("ok    four")
    assert lines[5].startswith("self-test: 2 of 4 checks FAILED in ")
    assert list(tmp_path.iterdir()) == []  # the scratch folder is removed afterwards


def test_without_the_export_api_the_export_check_fails_instead_of_being_skipped(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "finetune_gui.core.export", types.ModuleType("empty_export"))
    with pytest.raises(selftest.CheckFailed, match="export_run cannot be imported"):
        selftest.check_export_onnx(selftest.Context(workdir=tmp_path, run_dir=tmp_path))


def test_the_export_check_fails_when_there_is_no_trained_run(monkeypatch, tmp_path):
    def export_run(*args, **kwargs):
        raise AssertionError("must not be called without a run")

    fake = types.ModuleType("fake_export")
    fake.export_run = export_run
    monkeypatch.setitem(sys.modules, "finetune_gui.core.export", fake)
    with pytest.raises(selftest.CheckFailed, match="no trained run"):
        selftest.check_export_onnx(selftest.Context(workdir=tmp_path, run_dir=None))


def test_the_environment_is_offscreen_and_offline_but_keeps_the_users_choices():
    env = {"QT_QPA_PLATFORM": "xcb", "HF_HUB_OFFLINE": "0"}
    selftest.prepare_environment(env)
    assert env["QT_QPA_PLATFORM"] == "offscreen"
    assert env["HF_HUB_OFFLINE"] == "0"
    assert env["FINETUNE_GUI_OFFLINE"] == "1"
