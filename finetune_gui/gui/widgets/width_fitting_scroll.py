"""A scroll area for a column of forms: vertical scrolling only, as wide as its content needs."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtWidgets import QScrollArea, QWidget


class WidthFittingScrollArea(QScrollArea):
    """Scrolls vertically only, and asks its layout for the width its content needs: without horizontal scrolling
    a narrower column would cut the forms' right edge off. Follows the content as knobs are shown and hidden."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        if self.widget() is not None:
            needed = self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
            hint.setWidth(max(hint.width(), needed + 2 * self.frameWidth()))
        return hint
