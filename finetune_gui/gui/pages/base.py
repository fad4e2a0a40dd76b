"""What every page has: the shared state, the worker bridge, and a way to ask for another page."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget


class Page(QWidget):
    """A step of the flow. Subclasses set `key` and `title`, build their widgets in __init__, and never block."""

    key = ""
    title = ""
    navigate = Signal(str)  # the key of the page to show
    error = Signal(str, str, str)  # error type, message, details → the main window shows a dialog

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.bridge = state, bridge
        self.setObjectName(f"page-{self.key}")

    def on_shown(self) -> None:
        """Called each time the page becomes the visible one."""
