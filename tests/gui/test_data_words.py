"""Issue 13, items 11 and 13, driving the main window: a folder that is not a dataset is called so on the Data
page and Start asks before training on it; messages name the fields as the window shows them, not config keys.
Each test failed on the app before its fix."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QTableWidget

import finetune_gui
from finetune_gui.gui.wording import KEYS, rewording
from tests.conftest import make_image_folder
from tests.factories import make_docs_tree
from tests.gui.driving import answer, go, type_data_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def shown_whole(window, label: QLabel) -> bool:
    """The label is visible, inside the window, and tall enough for its wrapped text."""
    right = label.mapTo(window, QPoint(label.width(), 0)).x()
    return label.isVisible() and right <= window.width() and label.heightForWidth(label.width()) <= label.height()


def press_start(qtbot, window) -> QMessageBox | None:
    """Press Start training on the Train page; the question it asked, if any."""
    page = go(qtbot, window, "monitor")
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    return window.findChild(QMessageBox, "trainAnywayQuestion")


def tiny_run_settings(window, tmp_path) -> None:
    s = window.state
    s.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))
    s.set_value("model", "pretrained", False)
    s.set_value("data", "image_size", 32)
    s.set_value("train", "epochs", 1)


def stop_any_run(qtbot, window) -> None:
    """Stop a run the test started (or the app started without asking), so the window closes without a question."""
    window.bridge.stop()
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=120_000)


# ---------------------------------------------------------------- item 11: a folder that is not a dataset


def test_a_documentation_folder_is_called_no_dataset_on_the_data_page(qtbot, window, tmp_path):
    window.resize(1280, 800)
    window.show()
    page = type_data_path(qtbot, window, make_docs_tree(tmp_path / "docs"))
    qtbot.wait(50)  # the layout settles

    warning = page.findChild(QLabel, "dataDoubt")
    text = warning.text()
    assert "This folder does not look like a dataset" in text
    assert "90 files or folders could not be used and only 65 images could" in text
    assert "9 of 11 classes have fewer than 5 images" in text
    assert "one subfolder per class" in text and "Start training asks" in text
    assert shown_whole(window, warning), "the warning is cut off at 1280x800"
    assert not page.findChild(QLabel, "imbalanceWarning").isVisible()  # class weights cannot mend a docs folder


def test_real_data_gets_no_such_warning(qtbot, window, tmp_path):
    window.show()
    page = type_data_path(qtbot, window, make_image_folder(tmp_path / "shapes"))
    assert not page.findChild(QLabel, "dataDoubt").isVisible()
    assert page.doubt() is None


def test_start_training_on_a_documentation_folder_asks_and_go_back_returns_to_the_data(qtbot, window, tmp_path):
    window.show()
    type_data_path(qtbot, window, make_docs_tree(tmp_path / "docs"))
    tiny_run_settings(window, tmp_path)

    try:
        question = press_start(qtbot, window)

        assert question is not None and question.isVisible(), "training started without asking"
        assert "This folder does not look like a dataset" in question.text()
        assert not window.bridge.is_training
        answer(qtbot, question, "Go back to the data")
        assert window.current_page_key() == "data"
        qtbot.wait(100)
        assert not window.bridge.is_training and not (tmp_path / "runs").exists()
    finally:
        stop_any_run(qtbot, window)


def test_train_anyway_trains_on_the_folder_as_it_is(qtbot, window, tmp_path):
    window.show()
    type_data_path(qtbot, window, make_docs_tree(tmp_path / "docs"))
    tiny_run_settings(window, tmp_path)
    try:
        question = press_start(qtbot, window)
        assert question is not None, "training started without asking"

        with qtbot.waitSignal(window.bridge.run_started, timeout=240_000):
            answer(qtbot, question, "Train anyway")

        assert window.current_page_key() == "monitor"
    finally:
        stop_any_run(qtbot, window)


# ---------------------------------------------------------------- item 13: words for people


def test_a_missing_data_folder_names_the_field_not_data_path(qtbot, window, tmp_path):
    window.show()
    page = go(qtbot, window, "data")
    page.set_data_path(str(tmp_path / "nowhere"))  # what typing it and leaving the field does
    qtbot.waitUntil(lambda: page.error_banner.isVisible(), timeout=60_000)

    message = page.findChild(QLabel, "dataErrorMessage").text()
    assert "check the “Data folder or file” field (Data page)" in message
    assert "data.path" not in message


def test_a_run_that_fails_names_the_field_on_the_train_page(qtbot, window, tmp_path):
    window.show()
    tiny_run_settings(window, tmp_path)
    window.state.set_value("data", "path", str(tmp_path / "nowhere"))
    with qtbot.waitSignal(window.bridge.run_failed, timeout=240_000):
        press_start(qtbot, window)

    for text in (window.pages["monitor"].status_label.text(), window.statusBar().currentMessage()):
        assert "“Data folder or file” field (Data page)" in text and "data.path" not in text


def test_a_table_without_the_columns_names_the_column_fields(qtbot, window, tmp_path):
    table = tmp_path / "scores.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    window.show()
    page = type_data_path(qtbot, window, table)

    errors = page.findChild(QTableWidget, "problemErrors")
    reason = errors.item(errors.rowCount() - 1, 2).text()
    assert "Set the “Image path column” field (Data page, Columns) (images)" in reason
    assert "the “Text column” field (Data page, Columns) (text)" in reason
    assert "data.path_column" not in reason and "data.text_column" not in reason


def test_errors_say_samples_are_left_out_when_the_rest_can_train(qtbot, window, tmp_path):
    root = make_image_folder(tmp_path / "shapes")
    (root / "circle" / "broken.png").write_bytes(b"not a png at all")
    window.show()
    page = type_data_path(qtbot, window, root)

    caption = page.findChild(QLabel, "problemErrorsCaption").text()
    assert caption == "1 image is left out; training can start with the other 36."


def test_errors_say_why_training_cannot_start(qtbot, window, tmp_path):
    root = make_image_folder(tmp_path / "cats", classes=("cat",))
    (root / "cat" / "broken.png").write_bytes(b"not a png at all")
    window.show()
    page = type_data_path(qtbot, window, root)

    caption = page.findChild(QLabel, "problemErrorsCaption").text()
    assert caption == (
        "Training cannot start because classification needs at least two classes and only one was found."
    )


def engine_message_keys() -> set[str]:
    """The config keys that the engine's messages (string literals outside gui/) name."""
    from finetune_gui.gui.wording import _KEY_RE

    package = Path(finetune_gui.__file__).parent
    found = set()
    for source in package.rglob("*.py"):
        if "gui" in source.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found |= {m.group(1) for m in _KEY_RE.finditer(node.value)}
    return found


def test_every_key_an_engine_message_names_is_worded_as_the_window_shows_it(window):
    keys = engine_message_keys()
    assert {"data.path", "model.weights_path", "data.text_column"} <= keys <= KEYS
    reword = rewording(window)
    assert sorted(k for k in keys if k in reword(f"check {k}")) == []


def test_a_model_that_cannot_load_names_the_weights_file_not_model_weights_path(qtbot, window, tmp_path):
    window.state.set_value("model", "pretrained", False)
    window.state.set_value("model", "weights_path", str(tmp_path / "missing.pth"))
    window.show()
    page = go(qtbot, window, "model")
    error = page.findChild(QLabel, "modelError")
    qtbot.waitUntil(lambda: error.isVisible() and not page.tree_loading, timeout=120_000)

    assert "The weights file opened on the Model page: file not found" in error.text()
    assert "model.weights_path" not in error.text()
