"""The main window: closing during a run asks and never loses it, drops start the flow, shortcuts move between
pages, geometry is remembered, and a setup saved as a preset loads back the same."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QInputDialog, QMessageBox

from finetune_gui.config import load_config
from tests.conftest import make_image_folder


def drop_on(window, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.dropEvent(
        QDropEvent(
            QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        )
    )


def test_closing_during_a_run_asks_and_no_keeps_training(qtbot, long_image_run, monkeypatch):
    window = long_image_run
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    window.show()
    with qtbot.waitSignal(window.bridge.step, timeout=240_000):
        window.start_training()
    assert window.close() is False
    assert asked and window.bridge.is_training and window.isVisible()
    window.bridge.stop()
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=120_000)


def test_closing_during_a_run_with_yes_stops_it_with_a_resumable_checkpoint(qtbot, long_image_run, monkeypatch):
    window = long_image_run
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.show()
    with qtbot.waitSignal(window.bridge.step, timeout=240_000):
        window.start_training()
    run_dir = window.state.run_dir
    assert window.close() is True
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=10_000)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "stopped"
    assert list((run_dir / "checkpoints").glob("step-*.safetensors"))


def test_a_folder_dropped_on_the_window_becomes_the_data(qtbot, window, tmp_path):
    data = make_image_folder(tmp_path / "shapes", per_class=4, size=16)
    window.show()
    drop_on(window, data)
    assert window.state.config.data.path == str(data.resolve())
    assert window.current_page_key() == "data"
    qtbot.waitUntil(lambda: window.state.scan is not None and not window.bridge.busy, timeout=60_000)


def test_a_dropped_preset_opens_as_the_setup(qtbot, window):
    from finetune_gui.presets import builtin_presets_dir

    preset = builtin_presets_dir() / "minilm-sentiment.toml"
    drop_on(window, preset)
    assert window.state.config == load_config(preset)
    assert window.windowTitle().endswith("minilm-sentiment.toml")


def test_ctrl_and_a_number_go_to_that_page(qtbot, window):
    from PySide6.QtGui import QKeySequence

    shortcuts = {a.shortcut().toString(): a for a in window.actions()}
    for i, key in enumerate(window.pages, start=1):
        shortcuts[QKeySequence(f"Ctrl+{i % 10}").toString()].trigger()  # what Qt does when the keys are pressed
        assert window.current_page_key() == key
    assert shortcuts["Ctrl+R"] and shortcuts["Ctrl+Q"] and shortcuts["Ctrl+S"]
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=60_000)  # pages shown started their workers


def test_window_geometry_is_saved_on_close_and_read_at_start(qtbot, tmp_path, monkeypatch):
    from finetune_gui.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "geometry.ini"), QSettings.Format.IniFormat)
    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    first.resize(1234, 777)
    first.show()
    first.close()
    saved = settings.value("window/geometry")
    assert saved == first.saveGeometry()
    restored = []
    monkeypatch.setattr(MainWindow, "restoreGeometry", lambda self, g: restored.append(bytes(g)) or True)
    second = MainWindow(settings=settings)
    qtbot.addWidget(second)
    assert restored == [bytes(saved)]  # (the offscreen screen is 800 px wide, so Qt would shrink it back)


def test_a_setup_saved_as_a_preset_loads_back_identical(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_PRESETS_DIR", str(tmp_path / "my-presets"))
    window.state.set_value("train", "epochs", 9)
    window.state.set_value("augment", "rotation", 15.0)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("my-setup", True))
    window.save_preset_dialog()
    saved = tmp_path / "my-presets" / "my-setup.toml"
    assert saved.is_file()
    loaded = load_config(saved)
    assert loaded.train.epochs == 9 and loaded.augment.rotation == 15.0
    assert loaded.model_dump(exclude={"name"}) == window.state.config.model_dump(exclude={"name"})


def test_saving_over_an_existing_preset_asks_first(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_PRESETS_DIR", str(tmp_path / "my-presets"))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("mine", True))
    window.save_preset_dialog()
    saved = tmp_path / "my-presets" / "mine.toml"
    before = saved.read_text()
    window.state.set_value("train", "epochs", 4)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    window.save_preset_dialog()
    assert saved.read_text() == before  # declined: the user's preset is untouched
