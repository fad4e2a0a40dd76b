"""Render every page of the app, filled with the demo data and a real (short) demo run, into docs/screenshots/.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Without Xvfb it falls back to Qt's offscreen platform (same pixels, no window manager). Takes a minute or two:
it trains the demo preset for two epochs so the monitor, evaluate and try-it pages show real results.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("FINETUNE_GUI_OFFLINE", "1")

SIZE = (1280, 800)


def settle(app, window, seconds: float = 1.0, timeout: float = 120.0) -> None:
    """Let queued work finish: wait until no worker runs, then let the event loop draw for `seconds`."""
    deadline = time.monotonic() + timeout
    while window.bridge.busy and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    if window.bridge.busy:  # a second round: a finished task may have started the next one (e.g. thumbnails)
        settle(app, window, seconds, max(1.0, deadline - time.monotonic()))


def shoot(app, window, out: Path, name: str) -> Path:
    settle(app, window)
    path = out / f"{name}.png"
    window.grab().save(str(path))
    print(f"wrote {path}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QSettings

    from finetune_gui.gui.app import make_app
    from finetune_gui.gui.main_window import MainWindow

    app = make_app(["finetune-gui"])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings)
        window.resize(*SIZE)
        window.show()
        shoot(app, window, out, "1-start")

        window.open_config(REPO / "presets" / "demo-fashion.toml")
        window.state.set_value("train", "epochs", args.epochs)
        window.state.set_value("checkpoint", "output_dir", str(Path(tmp) / "runs"))
        for i, key in enumerate(("data", "model", "augment", "setup"), start=2):
            window.show_page(key)
            shoot(app, window, out, f"{i}-{key}")

        window.start_training()
        deadline = time.monotonic() + 600
        while window.bridge.is_training and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        shoot(app, window, out, "6-monitor")
        window.show_page("evaluate")
        shoot(app, window, out, "7-evaluate")
        window.show_page("try_it")
        try_it = window.pages["try_it"]
        sample = next((REPO / "resources" / "demo" / "fashion").rglob("*.png"))
        try_it.predict_file(str(sample))
        shoot(app, window, out, "8-try-it")
        window.show_page("export")
        window.pages["export"].start_export()  # the formats ticked by default, verified
        shoot(app, window, out, "9-export")
        window.close()
        settle(app, window, 0.2)


if __name__ == "__main__":
    main()
