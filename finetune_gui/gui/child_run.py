"""A training run in a child process (`finetune-gui train … --events FILE`, or torchrun around it), followed
through its event file.

The GUI never joins a process group or imports the engine for such a run: it starts the CLI in a session of
its own, reads the events the run appends (core/training/event_stream.py) every POLL_MS, and hands them on in
order, steps thinned to the newest of each poll. Stop sends SIGTERM (the CLI stops after the step and saves a
checkpoint; torchrun forwards it to its workers); whatever is still alive STOP_GRACE_S later is killed with
its whole process group, so nothing is left behind. A child that ends without saying how the run ended becomes
a RunFailed with its exit code and the last lines it wrote to stderr.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

POLL_MS = 100
STOP_GRACE_S = 10.0
STDERR_KEPT_CHARS = 8000
STDERR_LINES = 20
NO_PAUSE_IN_CHILD = (
    "A run in a separate process cannot pause (Training setup → Hardware). Stop saves a checkpoint, and Resume "
    "run continues from it."
)
EXIT_STOPPED = 130  # the CLI's exit code after a stop that saved a checkpoint (see cli.py)
#: the CLI's exit codes for failures it may report before the run has a folder (and so before any RunFailed)
ERROR_TYPE_BY_EXIT_CODE = {
    2: "ConfigError",
    3: "DataError",
    4: "ModelLoadError",
    5: "Diverged",
    6: "OutOfMemory",
    7: "RunStateError",
    8: "StorageError",
}


def child_command(cli_args: list[str], nproc: int = 1) -> list[str]:
    """The command line that runs `finetune-gui CLI_ARGS` with this Python: plainly, or under torchrun with
    `nproc` processes on this machine."""
    if nproc > 1:
        launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone"]
        return [sys.executable, *launcher, "-m", "finetune_gui", *cli_args]
    return [sys.executable, "-m", "finetune_gui", *cli_args]


def training_child(config, output_dir: str | Path | None, nproc: int = 1, parent: QObject | None = None) -> ChildRun:
    """A child run that trains `config` (its file paths made absolute and written to a temporary TOML)."""
    from finetune_gui.core.runs import snapshot_config
    from finetune_gui.files import atomic_write_text

    folder = Path(tempfile.mkdtemp(prefix="finetune-gui-child-"))
    config_file = folder / "config.toml"
    atomic_write_text(config_file, snapshot_config(config).to_toml())
    args = ["train", str(config_file)] + (["--output", str(output_dir)] if output_dir is not None else [])
    return ChildRun(args, folder, nproc, parent)


def resume_child(run_dir: str | Path, parent: QObject | None = None) -> ChildRun:
    """A child run that resumes the run folder `run_dir` from its newest checkpoint."""
    return ChildRun(["resume", str(run_dir)], Path(tempfile.mkdtemp(prefix="finetune-gui-child-")), 1, parent)


class ChildRun(QObject):
    """One child process and its event file. `event` carries each engine event in order; `ended` comes once,
    after the last event, when the process (and every process of its group) is gone."""

    event = Signal(object)
    ended = Signal()

    def __init__(self, cli_args: list[str], folder: Path, nproc: int = 1, parent: QObject | None = None):
        from finetune_gui.core.training.event_stream import EventTail

        super().__init__(parent)
        self.folder = folder  # a temporary folder of this run's own: the config snapshot and the event file
        self.events_path = folder / "events.jsonl"
        # the argv start() runs
        self.command = child_command([*cli_args, "--events", str(self.events_path), "--quiet"], nproc)
        self._tail = EventTail(self.events_path)
        self._stderr = ""
        self._run_dir = ""
        self._said_end = False  # a RunFinished or RunFailed came
        self._stop_requested = self._killed = self._over = False
        self._pgid: int | None = None
        self.stop_grace_s = STOP_GRACE_S  # how long a stop may take before everything is killed
        self.process = QProcess(self)
        self.process.setStandardOutputFile(QProcess.nullDevice())  # the events say it all; stderr is kept
        if hasattr(QProcess, "setUnixProcessParameters"):  # Qt 6.6+: setsid(), so the group can be killed whole
            flags = QProcess.UnixProcessFlag.CreateNewSession | QProcess.UnixProcessFlag.ResetSignalHandlers
            self.process.setUnixProcessParameters(flags)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(POLL_MS)
        self._poll_timer.timeout.connect(self.poll)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.kill)

    # ------------------------------------------------------------ steering

    def start(self) -> None:
        self.process.setProgram(self.command[0])
        self.process.setArguments(self.command[1:])
        self.process.start()
        pid = self.process.processId()
        if pid and hasattr(QProcess, "setUnixProcessParameters"):
            self._pgid = pid  # a session leader's group has its pid
        if not self._over:  # (it may have failed to start already)
            from finetune_gui.core.training.events import LogMessage

            self.event.emit(
                LogMessage("info", f"training in a separate process (pid {pid}): {shlex.join(self.command)}")
            )
            self._poll_timer.start()

    @property
    def pid(self) -> int:
        return int(self.process.processId())

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def stop(self) -> None:
        """Ask the run to stop after its step and save a checkpoint; kill it all if it has not ended in time."""
        if not self.running or self._stop_requested:
            return
        self._stop_requested = True
        self.process.terminate()
        self._kill_timer.start(int(self.stop_grace_s * 1000))

    def kill(self) -> None:
        """End the child and every process of its group now."""
        if self.running:
            self._killed = True
        self._kill_group()
        self.process.kill()

    def wait(self, timeout_ms: int) -> bool:
        """Block until the child has ended (killing it all after `stop_grace_s` of a stop, or `timeout_ms`)."""
        if not self.running:
            return True
        budget = min(timeout_ms, int(self.stop_grace_s * 1000)) if self._stop_requested else timeout_ms
        if not self.process.waitForFinished(budget):
            self.kill()
            self.process.waitForFinished(5000)
        return not self.running

    # ------------------------------------------------------------ following

    def poll(self) -> None:
        """Hand on the events written since the last poll: each in order, but of a run of steps (and of probes)
        only the newest, as the in-process worker thins them."""
        from finetune_gui.core.training import events as ev

        held: dict[type, object] = {}
        for event in self._tail.read():
            if isinstance(event, (ev.StepMetrics, ev.Probed)):
                held[type(event)] = event
                continue
            for kept in held.values():
                self.event.emit(kept)
            held.clear()
            if isinstance(event, ev.RunStarted):
                self._run_dir = event.run_dir
            elif isinstance(event, (ev.RunFinished, ev.RunFailed)):
                self._said_end = True
            self.event.emit(event)
        for kept in held.values():
            self.event.emit(kept)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", errors="replace")
        self._stderr = (self._stderr + text)[-STDERR_KEPT_CHARS:]

    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr."""
        return "\n".join(self._stderr.rstrip().splitlines()[-STDERR_LINES:])

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end(f"The training process could not be started ({self.process.errorString()}).")

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stderr()
        crashed = status == QProcess.ExitStatus.CrashExit
        self._end(None if self._said_end else self._why_failed(code, crashed))

    def _why_failed(self, code: int, crashed: bool) -> str | None:
        """What to tell of a child that ended without a RunFinished or RunFailed (None: it was a stop)."""
        if self._killed:
            return (
                f"The training process did not end within {self.stop_grace_s:g} s of Stop, so it was ended with all "
                "its processes. Checkpoints saved before are kept; Resume run continues from the newest."
            )
        if self._stop_requested or (not crashed and code == EXIT_STOPPED):
            return None
        if crashed:
            try:
                name = signal.Signals(code).name
            except ValueError:
                name = f"signal {code}"
            return f"The training process was ended by {name} before the run finished."
        lines = self.stderr_tail().splitlines()
        said = [i for i, line in enumerate(lines) if line.startswith("error: ")]
        if said:  # the CLI's message, with the lines it goes on with
            return "\n".join(lines[said[-1] :]).removeprefix("error: ")
        return f"The training process ended with exit code {code} without saying how the run went."

    def _end(self, failure: str | None) -> None:
        """Once: the last events, a RunFailed when `failure` says why, nothing of the group left, `ended`."""
        if self._over:
            return
        self._over = True
        self._poll_timer.stop()
        self._kill_timer.stop()
        self.poll()
        if failure is not None and not self._said_end:
            from finetune_gui.core.training.events import RunFailed

            code = self.process.exitCode()
            crashed = self.process.exitStatus() == QProcess.ExitStatus.CrashExit
            error_type = "ChildProcessError" if crashed or self._killed else ERROR_TYPE_BY_EXIT_CODE.get(code)
            self.event.emit(RunFailed(self._run_dir, error_type or "ChildProcessError", failure, self.stderr_tail()))
        self._kill_group()  # a DataLoader worker or a torchrun worker that outlived its parent
        self._tail.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.ended.emit()

    def _kill_group(self) -> None:
        if self._pgid is None or not hasattr(os, "killpg"):
            return
        try:
            os.killpg(self._pgid, signal.SIGKILL)  # no one is left in a group once its id is free again
        except (ProcessLookupError, PermissionError):
            pass
