"""A horizontal bar chart of counts per class, painted with QPainter (no plotting library to load)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

BAR_HEIGHT = 18
BAR_GAP = 6
MAX_BARS = 40  # beyond this the smallest classes are summed into one "… N more" bar


class BarChart(QWidget):
    """One bar per label, longest first in the data's order; bars named in `highlighted` are drawn in amber."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._items: list[tuple[str, int]] = []
        self._highlighted: set[str] = set()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(160)

    def set_counts(self, counts: dict[str, int], highlighted: set[str] | None = None) -> None:
        items = list(counts.items())
        if len(items) > MAX_BARS:
            ranked = sorted(items, key=lambda kv: -kv[1])
            kept = {k for k, _ in ranked[: MAX_BARS - 1]}
            rest = [(k, v) for k, v in items if k not in kept]
            items = [(k, v) for k, v in items if k in kept] + [(f"… {len(rest)} more", sum(v for _, v in rest))]
        self._items = items
        self._highlighted = set(highlighted or ())
        self.updateGeometry()
        self.update()

    def bars(self) -> list[tuple[str, int]]:
        """The (label, count) pairs drawn, in order."""
        return list(self._items)

    def shown_labels(self) -> list[str]:
        """The labels as painted at the current width: whole, or cut with … where a third of the width is too little."""
        fm = QFontMetrics(self.font())
        label_w = self._label_width(fm)
        return [self._shown_label(fm, label, label_w) for label, _ in self._items]

    def _label_width(self, fm: QFontMetrics) -> int:
        return min(max(fm.horizontalAdvance(k) for k, _ in self._items) + 12, self.width() // 3)

    @staticmethod
    def _shown_label(fm: QFontMetrics, label: str, label_w: int) -> str:
        return fm.elidedText(label, Qt.TextElideMode.ElideRight, label_w - 8)  # 2 px slack: advances are fractional

    def sizeHint(self) -> QSize:
        return QSize(320, max(60, len(self._items) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP))

    def minimumSizeHint(self) -> QSize:
        return QSize(160, min(self.sizeHint().height(), 120))

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text_colour = pal.color(QPalette.ColorRole.WindowText)
        if not self._items:
            painter.setPen(pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no classes")
            return
        fm = QFontMetrics(self.font())
        label_w = self._label_width(fm)
        count_w = max(fm.horizontalAdvance(f"{v:,}") for _, v in self._items) + 10
        bar_w = max(10, self.width() - label_w - count_w - 8)
        top = max(v for _, v in self._items) or 1
        h = min(BAR_HEIGHT, max(8, (self.height() - BAR_GAP) // len(self._items) - BAR_GAP))
        normal = pal.color(QPalette.ColorRole.Highlight)
        amber = QColor("#e0a030")
        y = float(BAR_GAP)
        for label, value in self._items:
            painter.setPen(text_colour)
            shown = self._shown_label(fm, label, label_w)
            right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            painter.drawText(QRectF(0, y, label_w - 6, h), right, shown)
            length = bar_w * value / top
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(amber if label in self._highlighted else normal)
            painter.drawRoundedRect(QRectF(label_w, y, max(length, 1.0), h), 3, 3)
            painter.setPen(text_colour)
            painter.drawText(QRectF(label_w + length + 4, y, count_w, h), Qt.AlignmentFlag.AlignVCenter, f"{value:,}")
            y += h + BAR_GAP
