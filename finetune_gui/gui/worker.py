"""THE bridge between the GUI and the engine.

Training and every other long job (scanning data, loading a model for the layer tree, the LR finder,
evaluation) run in worker QThreads. Workers only emit signals; the main thread only draws. Step-level
events are throttled to at most 20 per second; every other engine event always arrives, in order.
A run may instead go in a child process (mode="child", child_run.py): its events arrive the same way.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from finetune_gui.gui.child_run import NO_PAUSE_IN_CHILD, ChildRun, resume_child, training_child

STEP_SIGNAL_INTERVAL_S = 0.05  # ≤ 20 GUI updates per second
_LIVE_THREADS: set[QThread] = set()


def live_worker_threads() -> list[QThread]:
    """Worker threads started by any bridge that have not finished (tests check none is left)."""
    for t in list(_LIVE_THREADS):
        if not shiboken6.isValid(t) or not t.isRunning():
            _LIVE_THREADS.discard(t)
    return list(_LIVE_THREADS)


def _track(thread: QThread) -> None:
    _LIVE_THREADS.add(thread)


class _TrainingWorker(QObject):
    event = Signal(object)
    done = Signal(object)

    def __init__(self, job: Callable[[Callable, Any], Any], control: Any):
        super().__init__()
        self._job, self._control = job, control
        self._last_step_emit = self._last_probe_emit = 0.0
        self._pending_step = None

    def _on_event(self, event: Any) -> None:
        from finetune_gui.core.training.events import Probed, StepMetrics

        if isinstance(event, Probed):  # a look inside the model: the newest one is enough, at most as often as steps
            now = time.monotonic()
            if now - self._last_probe_emit >= STEP_SIGNAL_INTERVAL_S:
                self._last_probe_emit = now
                self.event.emit(event)
            return
        if isinstance(event, StepMetrics):
            now = time.monotonic()
            if now - self._last_step_emit < STEP_SIGNAL_INTERVAL_S:
                self._pending_step = event
                return
            self._last_step_emit, self._pending_step = now, None
            self.event.emit(event)
            return
        if self._pending_step is not None:  # the newest step always lands before the epoch summary
            self.event.emit(self._pending_step)
            self._pending_step = None
        self.event.emit(event)

    @Slot()
    def run(self) -> None:
        result: Any = None
        try:
            result = self._job(self._on_event, self._control)
        except Exception as e:  # noqa: BLE001 - a bug in the engine still reaches the user as a dialog
            from finetune_gui.core.training.events import RunFailed

            self._on_event(RunFailed("", type(e).__name__, str(e) or type(e).__name__, traceback.format_exc()))
        finally:
            if self._pending_step is not None:
                self.event.emit(self._pending_step)
            self.done.emit(result)


class _TaskWorker(QObject):
    succeeded = Signal(object)
    failed = Signal(str, str, str)  # error type, message, details
    progressed = Signal(object)
    done = Signal()

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, with_progress: bool = False):
        super().__init__()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        if with_progress:
            self._kwargs = {**kwargs, "progress": self.progressed.emit}

    @Slot()
    def run(self) -> None:
        from finetune_gui.config import ConfigError
        from finetune_gui.core.errors import FinetuneError

        try:
            self.succeeded.emit(self._fn(*self._args, **self._kwargs))
        except (FinetuneError, ConfigError) as e:
            self.failed.emit(type(e).__name__, str(e), "")
        except Exception as e:  # noqa: BLE001 - shown to the user with the traceback in the details
            self.failed.emit(type(e).__name__, str(e) or type(e).__name__, traceback.format_exc())
        finally:
            self.done.emit()


def _receivers_alive(callback: Callable[..., Any]) -> bool:
    """False once a Qt object the callback is bound to (its method's owner, or a QObject argument of a partial)
    has been deleted: a result that arrives after its page or widget is gone is dropped, not delivered."""
    objects = []
    fn = callback
    while isinstance(fn, partial):
        objects.extend(a for a in fn.args if isinstance(a, QObject))
        fn = fn.func
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, QObject):
        objects.append(owner)
    return all(shiboken6.isValid(o) for o in objects)


class _Relay(QObject):
    """Lives in the main thread, so the worker's signals reach the caller's callbacks there (queued)."""

    def __init__(
        self,
        on_result: Callable[[Any], None] | None,
        on_error: Callable[[str, str, str], None] | None,
        on_progress: Callable[[Any], None] | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self._on_result, self._on_error, self._on_progress = on_result, on_error, on_progress

    @Slot(object)
    def progressed(self, value: Any) -> None:
        if self._on_progress is not None and _receivers_alive(self._on_progress):
            self._on_progress(value)

    @Slot(object)
    def succeeded(self, value: Any) -> None:
        if self._on_result is not None and _receivers_alive(self._on_result):
            self._on_result(value)

    @Slot(str, str, str)
    def failed(self, error_type: str, message: str, details: str) -> None:
        if self._on_error is not None and _receivers_alive(self._on_error):
            self._on_error(error_type, message, details)


class WorkerBridge(QObject):
    """Starts and steers the engine from the GUI. Connect to its signals; call its methods from the main thread."""

    run_started = Signal(object)  # events.RunStarted
    step = Signal(object)  # events.StepMetrics (throttled)
    epoch = Signal(object)  # events.EpochMetrics
    log = Signal(str, str)  # level, text
    checkpoint = Signal(object)  # events.CheckpointSaved
    early_stopped = Signal(object)  # events.EarlyStopped
    run_finished = Signal(object)  # events.RunFinished
    run_failed = Signal(object)  # events.RunFailed
    diagnosis = Signal(object)  # events.Diagnosis: every finding so far
    probed = Signal(object)  # events.Probed: gradient flow and dead units of a logged step
    training_changed = Signal(bool)  # True while a run is going
    paused_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._train_thread: QThread | None = None
        self._train_worker: _TrainingWorker | None = None
        self._control = None
        self._child: ChildRun | None = None  # a run going in a child process
        self.separate_process = False  # runs go in a child process unless a call says (a setting of this computer)
        self._tasks: set[tuple[QThread, _TaskWorker, _Relay]] = set()
        self._shut_down = False  # once the window closes, no new work starts

    # -------------------------------------------------------------- training

    @property
    def is_training(self) -> bool:
        return self._train_thread is not None or self._child is not None

    @property
    def child_pid(self) -> int | None:
        """The process id of the run's child process (its process group has the same id); None without one."""
        return self._child.pid if self._child is not None else None

    @property
    def pause_unavailable(self) -> str:
        """Why the run going now cannot pause ("" when it can, or when no run is going)."""
        return NO_PAUSE_IN_CHILD if self._child is not None else ""

    @property
    def is_paused(self) -> bool:
        return bool(self._control is not None and self._control.paused)

    def start_training(
        self,
        config,
        output_dir: str | Path | None = None,
        *,
        suggested_lr: float | None = None,
        mode: str | None = None,
        nproc: int = 1,
    ) -> None:
        """Train `config` (a RunConfig; copied, so later edits in the GUI do not reach the run). `suggested_lr`:
        the LR finder's value for this setup, which the diagnosis offers when the LR proves wrong (in-process
        only). `mode`: "in-process" (a thread), "child" (a child process; `nproc` > 1: that many under
        torchrun), or None: as `separate_process` says."""
        snapshot = config.model_copy(deep=True).with_base_dir(config.base_dir)
        if self._mode(mode) == "child":
            self._start_child(lambda: training_child(snapshot, output_dir, nproc, self))
            return

        def job(listener, control):
            from finetune_gui.core.diagnostics.hook import DiagnosticsHook
            from finetune_gui.core.training.engine import fit

            hooks = (DiagnosticsHook(suggested_lr=suggested_lr),)
            return fit(snapshot, listener, control, output_dir=output_dir, hooks=hooks)

        self._start(job)

    def start_baseline(self, config, output_dir: str | Path | None = None) -> None:
        """Fit the quick baseline of `config` (a linear probe on cached features) as a run of its own."""
        snapshot = config.model_copy(deep=True).with_base_dir(config.base_dir)

        def job(listener, control):
            from finetune_gui.core.features.baseline import run_baseline

            return run_baseline(snapshot, listener, control, output_dir=output_dir)[0]

        self._start(job)

    def resume_training(self, run_dir: str | Path, *, mode: str | None = None) -> None:
        if self._mode(mode) == "child":
            self._start_child(lambda: resume_child(run_dir, self))
            return

        def job(listener, control):
            from finetune_gui.core.training.engine import resume

            return resume(run_dir, listener, control)

        self._start(job)

    def _start(self, job) -> None:
        if self.is_training:
            raise RuntimeError("a run is already going; stop it first")
        from finetune_gui.core.training.events import RunControl  # light: no torch

        self._control = RunControl()
        thread = QThread()
        thread.setObjectName("finetune-training")
        worker = _TrainingWorker(job, self._control)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.event.connect(self._dispatch)
        # direct: the thread ends even while the main thread is blocked waiting for it (shutdown)
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._training_thread_finished)
        self._train_thread, self._train_worker = thread, worker
        _track(thread)
        thread.start()
        self.training_changed.emit(True)

    def _mode(self, mode: str | None) -> str:
        if mode not in (None, "in-process", "child"):
            raise ValueError(f"mode must be 'in-process' or 'child', not {mode!r}")
        return mode or ("child" if self.separate_process else "in-process")

    def _start_child(self, make: Callable[[], ChildRun]) -> None:
        if self.is_training:
            raise RuntimeError("a run is already going; stop it first")
        child = self._child = make()
        child.event.connect(self._dispatch)
        child.ended.connect(self._child_ended)
        self.training_changed.emit(True)
        child.start()

    @Slot()
    def _child_ended(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.deleteLater()
        self.training_changed.emit(False)

    @Slot(object)
    def _dispatch(self, event: Any) -> None:
        from finetune_gui.core.training import events as ev

        if isinstance(event, ev.StepMetrics):
            self.step.emit(event)
        elif isinstance(event, ev.EpochMetrics):
            self.epoch.emit(event)
        elif isinstance(event, ev.LogMessage):
            self.log.emit(event.level, event.text)
        elif isinstance(event, ev.RunStarted):
            self.run_started.emit(event)
        elif isinstance(event, ev.CheckpointSaved):
            self.checkpoint.emit(event)
        elif isinstance(event, ev.EarlyStopped):
            self.early_stopped.emit(event)
        elif isinstance(event, ev.RunFinished):
            self.run_finished.emit(event)
        elif isinstance(event, ev.RunFailed):
            self.run_failed.emit(event)
        elif isinstance(event, ev.Diagnosis):
            self.diagnosis.emit(event)
        elif isinstance(event, ev.Probed):
            self.probed.emit(event)

    @Slot()
    def _training_thread_finished(self) -> None:
        thread = self._train_thread
        self._train_thread, self._train_worker, self._control = None, None, None
        if thread is not None:
            thread.deleteLater()
        self.training_changed.emit(False)

    def pause(self) -> None:
        if self._control is not None:
            self._control.pause()
            self.paused_changed.emit(True)

    def resume(self) -> None:
        if self._control is not None:
            self._control.resume()
            self.paused_changed.emit(False)

    def stop(self) -> None:
        """Ask the run to stop after the current step; it saves a checkpoint and finishes by itself."""
        if self._child is not None:
            self._child.stop()
        if self._control is not None:
            self._control.stop()
            self.paused_changed.emit(False)

    # -------------------------------------------------------------- other jobs

    def run_task(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str, str, str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> QThread | None:
        """Run `fn(*args, **kwargs)` in a worker thread; `on_result` / `on_error` are called in the main thread.

        With `on_progress`, `fn` also gets `progress=`: a function it may call with any value from its thread, each
        value reaching `on_progress` in the main thread, in order (queued; the receiver throttles its redraws).

        After `shutdown` nothing starts (None is returned): a result that arrives while the window closes (say, a
        run's evaluation, read just before) must not start work that would outlive the window's wait for it.
        """
        if self._shut_down:
            return None
        thread = QThread()
        thread.setObjectName(f"finetune-task-{getattr(fn, '__name__', 'job')}")
        worker = _TaskWorker(fn, args, kwargs, with_progress=on_progress is not None)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # a plain function connected straight to the worker's signal would run in the worker thread
        # a child of the bridge: when the window (and its pages) goes, a result still queued is dropped with it
        relay = _Relay(on_result, on_error, on_progress, parent=self)
        worker.succeeded.connect(relay.succeeded)
        worker.failed.connect(relay.failed)
        worker.progressed.connect(relay.progressed)
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        entry = (thread, worker, relay)
        self._tasks.add(entry)

        def finished() -> None:
            self._tasks.discard(entry)
            for obj in entry:
                if shiboken6.isValid(obj):  # the relay went already if the bridge was deleted
                    obj.deleteLater()

        thread.finished.connect(finished)
        _track(thread)
        thread.start()
        return thread

    @property
    def busy(self) -> bool:
        return self.is_training or bool(self._tasks)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop a run (it saves a checkpoint) and wait for every worker thread; True when all ended. No new task
        starts afterwards."""
        self._shut_down = True
        self.stop()
        ok = True
        threads = [t for t, _, _ in list(self._tasks)]
        if self._train_thread is not None:
            threads.append(self._train_thread)
        if self._child is not None:
            ok = self._child.wait(timeout_ms) and ok
        for thread in threads:
            ok = thread.wait(timeout_ms) and ok
        return ok
