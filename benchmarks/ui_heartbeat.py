"""Does the window stay responsive while training? A 10 ms QTimer runs during a real training run through the
worker bridge; the gaps between its ticks are reported (p50 / p99 / max). The run goes in a thread of the app
(in-process) and in a child process the app follows (Training setup: "Run training in a separate process"), one
after the other in the same invocation, so the two figures are side by side.

    .venv/bin/python benchmarks/ui_heartbeat.py [--epochs 3] [--modes in-process,child] [--repeats 2]

Targets: p99 < 50 ms, max < 200 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--modes", default="in-process,child", help="comma-separated: in-process, child")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each mode, in the order A B B A ...")
    args = ap.parse_args()
    os.environ["FINETUNE_GUI_OFFLINE"] = "1"
    from finetune_gui.gui.app import make_app

    app = make_app(["bench"])
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results: dict[str, list[tuple[list, list]]] = {m: [] for m in modes}
    for i in range(args.repeats):
        for mode in modes if i % 2 == 0 else modes[::-1]:  # ABBA: neither mode always goes first
            results[mode].append(measure(app, mode, args))
    for what, index in (("from run start to run end", 0), ("from pressing Train until the run ended", 1)):
        print(f"{what}:")
        for mode in modes:
            report(f"  {mode:>10}", [pair for runs in results[mode] for pair in runs[index]])
    print("how long (s), each run:")  # the training itself shares the 2 cores with the window either way
    for mode in modes:
        spans = [(r[0][-1][1] - r[0][0][0], r[1][-1][1] - r[1][0][0]) for r in results[mode] if r[0]]
        print(f"  {mode:>10}: " + ", ".join(f"run {a:.1f} (from Train {b:.1f})" for a, b in spans))


def measure(app, mode: str, args) -> tuple[list, list]:
    """One run in `mode`; the timer's (tick, next tick) pairs during the run, and from Train until it ended."""
    from PySide6.QtCore import QSettings, QTimer

    from finetune_gui.config import validate_dict
    from finetune_gui.gui.app import preload_engine
    from finetune_gui.gui.main_window import MainWindow
    from tests.conftest import make_image_folder

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_image_folder(tmp / "data", classes=("a", "b", "c", "d"), per_class=60, size=args.image_size)
        config = validate_dict(
            {
                "data": {"path": str(tmp / "data"), "image_size": args.image_size},
                "model": {"name": "resnet18", "allow_random_init": True, "freeze": "none"},
                "train": {"epochs": args.epochs, "batch_size": 16, "log_every": 1},
                "checkpoint": {"output_dir": str(tmp / "runs")},
            }
        )
        settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)  # not the user's recent runs
        window = MainWindow(settings=settings)
        window.show()
        window.state.set_config(config)
        window.bridge.separate_process = mode == "child"
        preload_engine().join()  # the app does this right after its first paint, long before anyone presses Train
        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        marks: dict[str, float] = {}
        window.bridge.run_started.connect(lambda _e: marks.setdefault("started", time.perf_counter()))
        window.bridge.run_finished.connect(lambda _e: marks.setdefault("finished", time.perf_counter()))

        def training_changed(running: bool) -> None:
            if not running:
                timer.stop()  # the evaluation the finished run started is not training
                app.quit()

        window.bridge.training_changed.connect(training_changed)
        timer.start()
        window.start_training()  # the real path: monitor page, plots, throttled signals
        app.exec()
        window.close()  # as the app quits: waits for the worker threads the finished run started
    whole = [(a, b) for a, b in zip(ticks, ticks[1:])]
    run = [(a, b) for a, b in whole if marks.get("started", 0) <= a and b <= marks.get("finished", float("inf"))]
    return run, whole


def report(what: str, pairs: list[tuple[float, float]]) -> None:
    gaps = sorted((b - a) * 1000 for a, b in pairs)
    p = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]  # noqa: E731
    print(
        f"{what}: {len(gaps)} timer gaps, p50 {statistics.median(gaps):.1f} ms, p99 {p(0.99):.1f} ms, "
        f"max {gaps[-1]:.1f} ms  (targets: p99 < 50 ms, max < 200 ms)"
    )


if __name__ == "__main__":
    main()
