"""Time from process start to the first painted main window, and whether torch was loaded by then.

    .venv/bin/python benchmarks/cold_start.py [--runs 5]

Target: first window < 1 s on a 2-core machine (importing torch alone takes ~2.6 s there).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import time, sys, json
t0 = time.perf_counter()
from PySide6.QtCore import QEvent, QObject, QTimer
from finetune_gui.gui.app import make_app
app = make_app(["finetune-gui"])
from finetune_gui.gui.main_window import MainWindow
window = MainWindow()

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not hasattr(self, "t"):
            self.t = time.perf_counter() - t0
            self.torch = "torch" in sys.modules
            QTimer.singleShot(0, app.quit)
        return False

spy = FirstPaint()
window.installEventFilter(spy)
window.show()
app.exec()
print(json.dumps({"first_paint_s": spy.t, "torch_loaded": spy.torch}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    env["XDG_CONFIG_HOME"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / "finetune-gui-bench-config")
    results = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD], env=env, cwd=REPO, capture_output=True, text=True, check=True
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    times = [r["first_paint_s"] for r in results]
    print(
        f"first painted window: median {statistics.median(times):.3f} s, min {min(times):.3f} s, "
        f"max {max(times):.3f} s over {len(times)} runs (target < 1 s)"
    )
    print(f"torch imported before first paint: {any(r['torch_loaded'] for r in results)}")


if __name__ == "__main__":
    main()
