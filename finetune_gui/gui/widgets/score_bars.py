"""Horizontal probability bars: label → probability, highest first (the Try it page's prediction)."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

MAX_BARS = 10


class ScoreBars(QWidget):
    """Horizontal bars of label → probability, highest first; a mark at the threshold for multi-label."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tryit-scores")
        self.scores: list[tuple[str, float]] = []
        self.threshold: float | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def set_scores(self, scores: dict[str, float], threshold: float | None = None) -> None:
        self.scores = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:MAX_BARS]
        self.threshold = threshold
        self.updateGeometry()
        self.update()

    def _row(self) -> int:
        return QFontMetrics(self.font()).height() + 12

    def sizeHint(self) -> QSize:
        return QSize(360, max(1, len(self.scores)) * self._row() + 8)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, len(self.scores) * self._row() + 8)

    def paintEvent(self, event) -> None:
        if not self.scores:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fm = QFontMetrics(self.font())
        row = self._row()
        name_w = min(max(fm.horizontalAdvance(n) for n, _ in self.scores) + 12, self.width() // 3)
        pct_w = fm.horizontalAdvance("100.0%") + 12
        track_x, track_w = name_w, max(20, self.width() - name_w - pct_w)
        highlight = pal.color(QPalette.ColorRole.Highlight)
        for i, (name, value) in enumerate(self.scores):
            y = 4 + i * row
            p.setPen(pal.color(QPalette.ColorRole.Text))
            p.drawText(
                QRect(0, y, name_w - 8, row - 4),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(name, Qt.TextElideMode.ElideRight, name_w - 8),
            )
            track = QRect(track_x, y + 3, track_w, row - 10)
            p.fillRect(track, pal.color(QPalette.ColorRole.AlternateBase))
            fill = QColor(highlight)
            if i > 0 and self.threshold is None:
                fill.setAlpha(150)
            p.fillRect(QRect(track.x(), track.y(), round(track_w * max(0.0, min(1.0, value))), track.height()), fill)
            p.drawText(
                QRect(track_x + track_w + 6, y, pct_w, row - 4),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{value:.1%}",
            )
        if self.threshold is not None:
            x = track_x + round(track_w * self.threshold)
            p.setPen(pal.color(QPalette.ColorRole.Text))
            p.drawLine(x, 2, x, 4 + len(self.scores) * row)
