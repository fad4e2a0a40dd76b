"""The LR finder tells what it is doing while it sweeps (issue 13, item 5): the phase, step i/N with the LR and the
loss, a bar that fills, and the loss-against-LR curve growing; Stop keeps the curve so far."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt

from tests.gui.driving import go

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SWEEPING = re.compile(r"Sweeping: step (\d+)/1000, lr \d\.\de-\d+, loss [\d.]+")


def test_the_lr_finder_shows_phase_step_and_growing_curve_and_stop_keeps_the_curve(qtbot, long_image_run):
    window = long_image_run
    window.show()
    finder = go(qtbot, window, "setup").lr_finder
    finder.finder_steps_spin.setValue(1000)
    qtbot.mouseClick(finder.find_button, Qt.MouseButton.LeftButton)
    assert "building the model" in finder.finder_status.text().lower()  # the first phase

    qtbot.waitUntil(lambda: len(finder.finder_plot.curve()[0]) >= 3, timeout=180_000)
    assert finder.running and finder.finder_plot.showing_plot
    match = SWEEPING.fullmatch(finder.finder_status.text())
    assert match, finder.finder_status.text()
    bar = finder.finder_busy
    assert bar.isVisible() and bar.maximum() == 1000 and bar.value() == int(match.group(1)) >= 3
    grown = len(finder.finder_plot.curve()[0])
    qtbot.waitUntil(lambda: len(finder.finder_plot.curve()[0]) > grown, timeout=60_000)  # it keeps growing

    assert finder.stop_finder_button.isVisible() and finder.stop_finder_button.isEnabled()
    qtbot.mouseClick(finder.stop_finder_button, Qt.MouseButton.LeftButton)
    seen = len(finder.finder_plot.curve()[0])
    qtbot.waitUntil(lambda: not finder.running, timeout=60_000)
    lrs, losses = finder.finder_plot.curve()
    assert seen <= len(lrs) < 1000 and finder.finder_plot.showing_plot
    assert "stopped by request" in finder.finder_status.text()


def test_the_lr_finders_suggestion_goes_with_the_run_while_the_setup_is_the_one_it_measured(
    qtbot, long_image_run, monkeypatch
):
    window = long_image_run
    window.show()
    finder = go(qtbot, window, "setup").lr_finder
    finder.finder_steps_spin.setValue(20)
    qtbot.mouseClick(finder.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not finder.running, timeout=180_000)
    suggested = window.state.suggested_lr()
    assert suggested is not None and suggested == finder._suggested

    started = []
    monkeypatch.setattr(window.bridge, "start_training", lambda config, out, **kw: started.append(kw))
    window.state.set_value("train", "lr", 0.5)  # a new LR or length keeps the measurement
    window.state.set_value("train", "epochs", 3)
    window.start_training()
    assert started == [{"suggested_lr": suggested}]

    window.state.set_value("train", "batch_size", 4)  # another setup: the sweep no longer speaks for it
    assert window.state.suggested_lr() is None
