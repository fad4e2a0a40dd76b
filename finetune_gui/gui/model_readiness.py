"""Finds out, in a worker, whether the configured model can be had on this computer (core.models.readiness)
each time the model changes, and writes the answer into the state, where the Train page reads it: Start stays
disabled, with the reason, while the model cannot be had. The Model page's own build reports there too.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

CHECK_DEBOUNCE_MS = 250


def readiness_job(config) -> str | None:
    from finetune_gui.core.models.readiness import model_problem

    return model_problem(config)


def forget_network_answers() -> None:
    """The user asked to try again: the next check asks the network afresh."""
    from finetune_gui.core.models.network import forget_probes

    forget_probes()


class ModelReadiness(QObject):
    """Checks config.model after each change of the model (debounced; one check at a time)."""

    def __init__(self, state, bridge, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.bridge = state, bridge
        self._busy = False
        self._checked_key: tuple | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(CHECK_DEBOUNCE_MS)
        self._timer.timeout.connect(self.check)
        state.changed.connect(self._on_changed)
        self._timer.start()

    def _on_changed(self, section: str) -> None:
        if section in ("", "task", "model") and self.state.model_key() != self._checked_key:
            self.state.set_model_readiness(self.state.model_key(), None)
            self._timer.start()

    def recheck(self) -> None:
        """Check again now, asking the network afresh."""
        forget_network_answers()
        self._checked_key = None
        self.check()

    def check(self) -> None:
        if self._busy:
            self._timer.start()  # again once the current check has ended
            return
        key = self.state.model_key()
        if key == self._checked_key:
            return
        config = self.state.config.model_copy(deep=True).with_base_dir(self.state.config.base_dir)
        self._busy = True
        started = self.bridge.run_task(
            readiness_job,
            config,
            on_result=lambda problem: self._done(key, problem),
            on_error=lambda *_: self._done(key, None),  # a check that breaks leaves the verdict to the build
        )
        if started is None:  # the window is closing
            self._busy = False

    def _done(self, key: tuple, problem: str | None) -> None:
        self._busy = False
        self._checked_key = key
        self.state.set_model_readiness(key, problem is None, problem or "")
