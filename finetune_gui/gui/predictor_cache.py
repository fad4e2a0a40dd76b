"""The one loaded model of a run, shared by the pages that predict with it (Evaluate and Try it).

Loading a run's model takes seconds, so it is loaded once and kept, keyed by the run folder; asking for another
run replaces it. Only worker threads (bridge.run_task) call `get` and `use`; a lock makes them take turns,
because a core.inference.Predictor must be used from one thread at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def load_run_predictor(run_dir: str):
    """The run's trained model with its preprocessing (core.inference.load_predictor; imports torch)."""
    from finetune_gui.core.inference import load_predictor

    return load_predictor(run_dir)


class PredictorCache:
    """Holds the Predictor of one run folder. Call `get` and `use` from worker threads only; `forget` from any."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held while a model loads or works
        self._run_dir: str | None = None
        self._predictor: Any = None
        self._expired: set[str] = set()  # runs whose weights changed since they were loaded
        self._expired_lock = threading.Lock()  # never held for long: `forget` does not wait for a load

    def get(self, run_dir: str | Path):
        """The run's Predictor, loaded now if it is not the one held (or its weights changed)."""
        with self._lock:
            return self._get(str(Path(run_dir)))

    def use(self, run_dir: str | Path, job: Callable[..., Any], *args: Any) -> Any:
        """`job(predictor, *args)` with the run's Predictor, while no other thread uses it."""
        with self._lock:
            return job(self._get(str(Path(run_dir))), *args)

    def forget(self, run_dir: str | Path) -> None:
        """The run's weights changed (its training finished): load them again the next time it is asked for."""
        with self._expired_lock:
            self._expired.add(str(Path(run_dir)))

    def _get(self, run_dir: str):
        with self._expired_lock:
            expired = run_dir in self._expired
            self._expired.discard(run_dir)
        if self._predictor is None or self._run_dir != run_dir or expired:
            self._predictor, self._run_dir = None, None  # the old model goes before the next one loads
            self._predictor = load_run_predictor(run_dir)
            self._run_dir = run_dir
        return self._predictor
