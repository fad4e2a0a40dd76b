"""The run's log on the Train page: time-stamped lines, warnings and errors in colour, the newest 5,000 kept."""

from __future__ import annotations

import html
import time

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QWidget

LOG_LINES = 5000
COLOURS = {"warning": "#b8860b", "error": "#d62728"}


class RunLog(QPlainTextEdit):
    """A read-only, monospaced log. `add_line` appends one message; `show_text` replaces it all (a past run)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("monitor-log")
        self.setReadOnly(True)
        self.setMaximumBlockCount(LOG_LINES)
        self.setPlaceholderText("The run's messages appear here.")
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.setFont(mono)

    def add_line(self, level: str, text: str) -> None:
        """Append `text` as "HH:MM:SS [level] text", coloured for warnings and errors."""
        colour = COLOURS.get(level)
        body = html.escape(f"{time.strftime('%H:%M:%S')} [{level}] {text}").replace("\n", "<br>")
        self.appendHtml(f'<span style="color:{colour}">{body}</span>' if colour else body)

    def show_text(self, text: str) -> None:
        """Replace the log with `text`, scrolled to its end."""
        self.setPlainText(text)
        self.moveCursor(self.textCursor().MoveOperation.End)
