"""Driving the main window as a person does: click a page in the sidebar, edit a field by its name."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QMessageBox, QPushButton, QWidget

from finetune_gui.gui.pages.model import TREE_DEBOUNCE_MS


def field(window, name: str) -> QWidget:
    """The editor of config field `section.key` (the first, where two pages show the same field)."""
    editor = window.findChild(QWidget, name)
    assert editor is not None, f"no editor named {name}"
    return editor


def set_field(qtbot, window, name: str, value) -> None:
    """Edit a field as a person would: tick, pick, spin or type (then leave the box)."""
    editor = field(window, name)
    if isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QComboBox):
        index = editor.findText(str(value))
        assert index >= 0, f"{name}: no choice {value!r}"
        editor.setCurrentIndex(index)
    elif isinstance(editor, QLineEdit):
        editor.setText(str(value))
        editor.editingFinished.emit()
    else:  # QSpinBox / QDoubleSpinBox
        editor.setValue(value)
    section, key = name.split(".", 1)
    assert window.state.get_value(section, key) == value, f"{name} did not reach the config"


def go(qtbot, window, key: str):
    """Click the page's entry in the sidebar and return the page."""
    row = list(window.pages).index(key)
    item = window.sidebar.item(row)
    rect = window.sidebar.visualItemRect(item)
    qtbot.mouseClick(window.sidebar.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.current_page_key() == key
    return window.pages[key]


def show_active(qtbot, window) -> None:
    """Show the window and make it the active one, so a clicked field takes the keyboard focus."""
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def type_data_path(qtbot, window, path: Path):
    """Type a data path on the Data page (then leave the field) and wait for its scan."""
    page = go(qtbot, window, "data")
    edit = page.findChild(QLineEdit, "dataPath")
    edit.setText(str(path))
    edit.editingFinished.emit()
    qtbot.waitUntil(lambda: not page.scanning and window.state.scan is not None, timeout=60_000)
    return page


def wait_model_tree(qtbot, page) -> None:
    """Wait until the Model page has (re)built its layer tree after the last change."""
    qtbot.wait(2 * TREE_DEBOUNCE_MS)  # a change just made may rebuild the tree
    qtbot.waitUntil(
        lambda: not page.tree_loading and not page.bridge.busy and bool(page.freezing.layer_tree.module_names()),
        timeout=120_000,
    )


def answer(qtbot, question: QMessageBox, text: str) -> None:
    """Press the button of `question` that reads `text`."""
    button = next(b for b in question.findChildren(QPushButton) if b.text() == text)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
