"""What every page has: the shared state, the worker bridge, and a way to ask for another page."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget


class Page(QWidget):
    """A step of the flow. Subclasses set `key` and `title`, build their widgets in __init__, and never block.

    Work that only a page someone looks at needs (plots, listing devices, building a model) starts in
    `on_first_shown`, which runs once, on the page's first show; `on_shown` runs each time the main window
    switches to the page.
    """

    key = ""
    title = ""
    navigate = Signal(str)  # the key of the page to show
    error = Signal(str, str, str)  # error type, message, details → the main window shows a dialog

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.bridge = state, bridge
        self.shown_once = False
        self.setObjectName(f"page-{self.key}")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self.shown_once:
            self.shown_once = True
            self.on_first_shown()

    def on_first_shown(self) -> None:
        """Called once, when the page shows for the first time."""

    def on_shown(self) -> None:
        """Called each time the page becomes the visible one."""
