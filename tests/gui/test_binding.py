"""The Qt binding check: a binding that loses references to None is named, with the fix, before a window opens."""

from __future__ import annotations

import ctypes
import sys

import pytest

from finetune_gui.gui import app as app_module
from finetune_gui.gui.binding import binding_problem, dropped_none_references

mortal_none = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="None is immortal from Python 3.12: the defect cannot do harm there"
)


def test_a_call_that_keeps_its_references_loses_none():
    assert dropped_none_references(lambda: None) == 0


@mortal_none
def test_the_installed_qt_binding_keeps_its_references_to_none(qapp):
    assert binding_problem() is None


@mortal_none
def test_a_binding_that_drops_none_is_reported_with_the_fix():
    none = ctypes.py_object(None)
    dropped = 0

    def leaky_call() -> None:  # what PySide6 6.12.0 does on every call that returns nothing
        nonlocal dropped
        ctypes.pythonapi.Py_DecRef(none)
        dropped += 1

    try:
        problem = binding_problem(leaky_call)
    finally:
        for _ in range(dropped):
            ctypes.pythonapi.Py_IncRef(none)
    assert problem is not None
    assert "drops a reference to None" in problem
    assert 'pip install "pyside6-essentials>=6.6,!=6.12.0"' in problem


def test_the_app_refuses_to_start_on_a_broken_binding_and_says_why(qapp, monkeypatch, capsys):
    monkeypatch.setattr(app_module, "binding_problem", lambda: "PySide6 9.9 is broken; install another")
    opened = []
    monkeypatch.setattr("finetune_gui.gui.main_window.MainWindow", lambda *a, **k: opened.append(1))

    assert app_module.main(["finetune-gui"]) == 2
    assert "error: PySide6 9.9 is broken; install another" in capsys.readouterr().err
    assert opened == []
