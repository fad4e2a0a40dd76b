"""The diagnosis in the window (issue 14): a banner as soon as a finding appears, a card per finding on the Train
and Evaluate pages, a look inside the model, and a remedy that becomes the next run's setup after showing what
it changes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QPushButton

from finetune_gui.config import validate_dict
from tests.faults.helpers import image_sections
from tests.gui.driving import go

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_sick_run_is_diagnosed_live_and_its_remedy_prepares_the_next_run(
    qtbot, window, tinynet, image_folder, tmp_path
):
    sections = image_sections(image_folder, model={"freeze": "head-only", "pretrained": False}, train={"epochs": 2})
    sections["checkpoint"]["output_dir"] = str(tmp_path / "runs")
    window.state.set_config(validate_dict(sections))
    window.show()
    train = go(qtbot, window, "monitor")
    with qtbot.waitSignal(window.bridge.run_finished, timeout=120_000):
        qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)

    assert train.banner.isVisible() and "Nothing to transfer" in train.banner.label.text()
    found = [f["id"] for f in train.diagnosis.findings]
    assert found[0] == "nothing-to-transfer" and train.tabs.tabText(1) == f"Diagnosis ({len(found)})"
    assert train.probe_plots.last is not None and len(train.probe_plots.last.block_grad) >= 2

    qtbot.mouseClick(train.banner.findChild(QPushButton, "showDiagnosis"), Qt.MouseButton.LeftButton)
    assert train.tabs.currentWidget() is train.diagnosis
    card = train.diagnosis.cards()[0]
    train_all = next(b for b in card.remedy_buttons if "Train every layer" in b.text())
    qtbot.mouseClick(train_all, Qt.MouseButton.LeftButton)
    dialog = window.findChild(QDialog, "remedyDialog")
    assert dialog is not None and dialog.isVisible()
    rows = [[dialog.table.item(r, c).text() for c in range(3)] for r in range(dialog.table.rowCount())]
    assert rows == [["model.freeze", "head-only", "none"]]
    qtbot.mouseClick(dialog.findChild(QPushButton, "prepareRun"), Qt.MouseButton.LeftButton)
    assert window.state.config.model.freeze == "none"
    assert "new run is prepared" in window.statusBar().currentMessage()

    evaluate = go(qtbot, window, "evaluate")
    qtbot.waitUntil(lambda: evaluate.tabs.tabText(3) == f"Diagnosis ({len(found)})", timeout=60_000)
    assert [c.finding["id"] for c in evaluate.diagnosis.cards()] == found  # read back from the run folder
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=60_000)


def test_a_healthy_run_says_nothing_was_found(qtbot, window, tinynet, image_folder, tmp_path):
    sections = image_sections(image_folder, train={"epochs": 1})
    sections["checkpoint"]["output_dir"] = str(tmp_path / "runs")
    window.state.set_config(validate_dict(sections))
    window.show()
    train = go(qtbot, window, "monitor")
    with qtbot.waitSignal(window.bridge.run_finished, timeout=120_000):
        qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    assert not train.banner.isVisible()
    assert train.tabs.tabText(1) == "Diagnosis" and train.diagnosis.cards() == []
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=60_000)
