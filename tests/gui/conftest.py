"""GUI test fixtures: offscreen Qt, settings under tmp_path, and no test may leave a worker thread running."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from tests.conftest import make_image_folder


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, qapp, monkeypatch):
    """QSettings() written by the app goes to tmp_path, never the user's."""
    QCoreApplication.setOrganizationName("finetune-gui-tests")
    QCoreApplication.setApplicationName("finetune-gui-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the per-user runs folder, under tmp_path
    yield


@pytest.fixture(autouse=True)
def _no_dangling_worker_threads(qtbot):
    """Fail a test that leaves a worker QThread running (napari's _dangling_qthreads, for our bridge)."""
    from finetune_gui.gui.worker import live_worker_threads

    yield
    try:
        qtbot.waitUntil(lambda: not live_worker_threads(), timeout=10000)
    except Exception:  # noqa: BLE001 - turned into a clear failure below
        names = [t.objectName() for t in live_worker_threads()]
        for t in live_worker_threads():
            t.wait(60000)
        pytest.fail(f"worker threads left running after the test: {names}")


@pytest.fixture
def state(qapp):
    from finetune_gui.gui.state import AppState

    return AppState()


@pytest.fixture
def window(qapp, qtbot, tmp_path):
    from finetune_gui.gui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    yield w
    w.bridge.stop()
    assert w.bridge.shutdown(60000), "a worker thread did not end within 60 s"
    qtbot.waitUntil(lambda: not w.bridge.busy, timeout=10000)


@pytest.fixture
def long_image_run(window, tmp_path):
    """The window set up for an image run long enough to stop or close in the middle (50 epochs of 2-image steps)."""
    data = make_image_folder(tmp_path / "shapes", per_class=20, size=32)
    s = window.state
    s.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))
    s.set_value("data", "path", str(data))
    s.set_value("data", "image_size", 32)
    s.set_value("model", "pretrained", False)
    s.set_value("train", "epochs", 50)
    s.set_value("train", "batch_size", 2)
    return window
