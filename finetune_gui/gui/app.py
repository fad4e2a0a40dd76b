"""Start the desktop app: the first window paints before torch is imported, which happens in the background."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from finetune_gui.gui.binding import binding_problem
from finetune_gui.gui.x11_libraries import x11_problem

ORG, APP = "finetune-gui", "finetune-gui"


def preload_engine() -> threading.Thread:
    """Import torch and the engine on a background thread, so the first training starts without a wait.

    The imported objects are then frozen out of the garbage collector: a full collection over torch's ~400k
    objects holds the GIL for ~0.2 s, which the window would feel as a stutter whenever a worker collects.
    """

    def load() -> None:
        try:
            import finetune_gui.core.inference
            import finetune_gui.core.training.engine  # noqa: F401
        except Exception:  # noqa: BLE001 - the real import error surfaces when a job needs the engine
            return
        gc.freeze()

    thread = threading.Thread(target=load, name="preload-engine", daemon=True)
    thread.start()
    return thread


def make_app(argv: list[str] | None = None) -> QApplication:
    QCoreApplication.setOrganizationName(ORG)
    QCoreApplication.setApplicationName(APP)
    app = QApplication.instance() or QApplication(argv or sys.argv)
    app.setStyle("Fusion")  # Fusion follows the system's light/dark scheme on every platform
    icon = Path(__file__).resolve().parents[2] / "resources" / "icon.png"  # next to the package, as presets/
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def main(argv: list[str] | None = None) -> int:
    blocked = x11_problem()
    if blocked is not None:  # Qt would abort making the application; nothing can be shown, so say it here
        print(f"error: {blocked}", file=sys.stderr)
        return 2
    app = make_app(argv)
    problem = binding_problem()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        if app.platformName() not in ("offscreen", "minimal"):  # nobody could close a dialog there
            QMessageBox.critical(None, "finetune-gui cannot start", problem)
        return 2
    from finetune_gui.gui.main_window import MainWindow

    window = MainWindow(settings=QSettings())
    window.show()
    QTimer.singleShot(0, preload_engine)  # after the first paint
    args = (argv or sys.argv)[1:]
    if args:
        window.accept_path(args[0])
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
