"""Quick baseline, driving the main window: on the Train page and on the Training setup page it goes through the
same gate as Start training, so data that does not look fit asks first, and going back starts nothing; on the
setup page it is off, with its reason, for a causal language model. Each test failed on the app before it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from finetune_gui.config import TaskKind
from tests.conftest import make_image_folder
from tests.factories import make_docs_tree
from tests.gui.driving import answer, go, type_data_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def press_baseline(qtbot, window, page_key: str) -> QMessageBox | None:
    """Press Quick baseline on the page `page_key`; the question it asked, if any."""
    page = go(qtbot, window, page_key)
    qtbot.waitUntil(page.baseline_button.isEnabled, timeout=60_000)  # the model is known to load
    qtbot.mouseClick(page.baseline_button, Qt.MouseButton.LeftButton)
    return window.findChild(QMessageBox, "trainAnywayQuestion")


def tiny_baseline_settings(window, tmp_path) -> None:
    s = window.state
    s.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))
    s.set_value("model", "pretrained", False)
    s.set_value("data", "image_size", 32)


def stop_any_run(qtbot, window) -> None:
    window.bridge.stop()
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=120_000)


def test_quick_baseline_on_data_that_looks_unfit_asks_first_and_go_back_starts_nothing(qtbot, window, tmp_path):
    window.show()
    type_data_path(qtbot, window, make_docs_tree(tmp_path / "docs"))
    tiny_baseline_settings(window, tmp_path)
    try:
        question = press_baseline(qtbot, window, "monitor")

        assert question is not None and question.isVisible(), "the baseline started without asking"
        assert question.windowTitle() == "Train on this data?"
        assert "This folder does not look like a dataset" in question.text()
        assert not window.bridge.is_training
        answer(qtbot, question, "Go back to the data")
        assert window.current_page_key() == "data"
        qtbot.wait(100)
        assert not window.bridge.is_training and not (tmp_path / "runs").exists()
    finally:
        stop_any_run(qtbot, window)


def test_quick_baseline_on_the_setup_page_asks_the_same_and_fits_on_the_train_page_when_told_to(
    qtbot, window, tmp_path
):
    window.show()
    type_data_path(qtbot, window, make_docs_tree(tmp_path / "docs"))
    tiny_baseline_settings(window, tmp_path)
    try:
        question = press_baseline(qtbot, window, "setup")
        assert question is not None, "the baseline started without asking"

        with qtbot.waitSignal(window.bridge.run_started, timeout=240_000) as started:
            answer(qtbot, question, "Fit the baseline anyway")

        assert window.current_page_key() == "monitor"
        assert "baseline" in started.args[0].run_dir
    finally:
        stop_any_run(qtbot, window)


def test_quick_baseline_on_the_setup_page_starts_at_once_on_fit_data_and_shows_the_train_page(qtbot, window, tmp_path):
    window.show()
    type_data_path(qtbot, window, make_image_folder(tmp_path / "shapes"))
    tiny_baseline_settings(window, tmp_path)
    try:
        with qtbot.waitSignal(window.bridge.run_started, timeout=240_000) as started:
            assert press_baseline(qtbot, window, "setup") is None
        assert window.current_page_key() == "monitor"
        assert "baseline" in started.args[0].run_dir
        assert "quick baseline" in window.pages["monitor"].log_view.toPlainText()
    finally:
        stop_any_run(qtbot, window)


def test_quick_baseline_on_the_setup_page_is_off_for_a_causal_language_model_and_says_why(qtbot, window):
    window.show()
    page = go(qtbot, window, "setup")
    button = page.baseline_button
    assert button.text() == "Quick baseline" and button.isVisible()

    window.state.set_value("task", "kind", TaskKind.CAUSAL_LM)

    assert not button.isEnabled() and not window.pages["monitor"].baseline_button.isEnabled()
    for tip in (button.toolTip(), window.pages["monitor"].baseline_button.toolTip()):
        assert "off for a causal language model" in tip and "Start training instead" in tip
    note = page.findChild(QLabel, "setup-baseline-note")
    assert note.isVisible() and "causal language model" in note.text()

    window.state.set_value("task", "kind", TaskKind.IMAGE_CLASSIFICATION)
    assert "causal" not in note.text() and "causal" not in button.toolTip()


def test_quick_baseline_on_the_setup_page_says_it_is_off_while_the_model_cannot_be_loaded(qtbot, window, tmp_path):
    window.show()
    page = go(qtbot, window, "setup")
    window.state.set_value("model", "pretrained", False)
    window.state.set_value("model", "weights_path", str(tmp_path / "missing.pth"))

    qtbot.waitUntil(lambda: window.state.model_ready is False, timeout=60_000)
    note = page.findChild(QLabel, "setup-baseline-note")
    assert not page.baseline_button.isEnabled()
    assert note.text() == "Off until the model can be loaded (Model page)"
    assert "missing.pth" in page.baseline_button.toolTip()
