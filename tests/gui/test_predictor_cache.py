"""One loaded model per run serves Evaluate and Try it: going back and forth between them loads it once."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from finetune_gui.gui import predictor_cache
from finetune_gui.gui.predictor_cache import PredictorCache
from tests.conftest import make_image_folder
from tests.factories import image_sections, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The run folders the cache loads a model for, in order (the real loader still runs)."""
    calls: list[str] = []
    real = predictor_cache.load_run_predictor

    def counting(run_dir: str):
        calls.append(run_dir)
        return real(run_dir)

    monkeypatch.setattr(predictor_cache, "load_run_predictor", counting)
    return calls


def test_evaluate_then_try_it_then_evaluate_loads_the_model_once_and_another_run_loads_its_own(
    qtbot, window, loads, tmp_path
):
    make_image_folder(tmp_path / "images")
    run = train_run(tmp_path, image_sections())
    other = Path(shutil.copytree(run, tmp_path / "other-run"))
    evaluate, try_it = window.pages["evaluate"], window.pages["try_it"]
    window.show()

    assert window.open_run(run)
    window.show_page("evaluate")
    qtbot.waitUntil(lambda: evaluate.samples is not None, timeout=60000)  # scored with the run's model
    window.show_page("try_it")
    qtbot.waitUntil(lambda: try_it.predictor is not None and not try_it._busy, timeout=60000)
    picture = sorted((tmp_path / "images" / "square").glob("*.png"))[0]
    assert try_it.predict_file(picture)
    qtbot.waitUntil(lambda: try_it.last_prediction is not None, timeout=60000)
    window.show_page("evaluate")
    evaluate.samples = None
    qtbot.mouseClick(evaluate.refresh_button, Qt.MouseButton.LeftButton)  # re-scores the test split
    qtbot.waitUntil(lambda: evaluate.samples is not None, timeout=60000)
    assert loads == [str(run)]

    assert window.open_run(other)  # another run folder: its own model replaces the first
    window.show_page("evaluate")
    qtbot.waitUntil(lambda: evaluate.samples is not None and evaluate.run_dir == str(other), timeout=60000)
    window.show_page("try_it")
    qtbot.waitUntil(lambda: try_it.predictor is not None and not try_it._busy, timeout=60000)
    assert try_it.predictor.run_dir == other
    assert loads == [str(run), str(other)]


def test_threads_asking_at_once_get_one_load_and_a_forgotten_run_loads_again(monkeypatch):
    loaded: list[str] = []
    gate = threading.Event()

    def slow_load(run_dir: str):
        gate.wait(5)
        loaded.append(run_dir)
        return object()

    monkeypatch.setattr(predictor_cache, "load_run_predictor", slow_load)
    cache = PredictorCache()
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("runs/a"))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert loaded == ["runs/a"] and len(got) == 4 and len({id(p) for p in got}) == 1
    assert cache.use("runs/a/", lambda predictor, x: (predictor, x), 7) == (got[0], 7)  # the same folder
    cache.forget("runs/a")  # its training finished: new weights
    assert cache.get("runs/a") is not got[0] and loaded == ["runs/a", "runs/a"]
    cache.get("runs/b")
    assert loaded == ["runs/a", "runs/a", "runs/b"]
