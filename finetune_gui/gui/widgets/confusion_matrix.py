"""A confusion-matrix heatmap drawn with QPainter: counts in the cells, class names on both axes, click a cell.

Rows are the true classes, columns the predicted ones. A cell's colour is its share of its row (the recall
of that class on the diagonal), so rare classes are as readable as common ones.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

MAX_LABEL_CHARS = 18
AXIS_GAP = 6


def _short(name: str) -> str:
    return name if len(name) <= MAX_LABEL_CHARS else name[: MAX_LABEL_CHARS - 1] + "…"


class ConfusionMatrixView(QWidget):
    """Click a cell to get `cell_clicked(true_index, predicted_index)`; the cell stays outlined."""

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.setMouseTracking(True)
        self.setMinimumSize(240, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.matrix: list[list[int]] = []
        self.labels: list[str] = []
        self.selected: tuple[int, int] | None = None

    # ------------------------------------------------------------ data

    def set_matrix(self, matrix: list[list[int]], labels: list[str]) -> None:
        self.matrix = [list(map(int, row)) for row in matrix]
        self.labels = [str(x) for x in labels][: len(self.matrix)]
        self.labels += [str(i) for i in range(len(self.labels), len(self.matrix))]
        self.selected = None
        self.update()

    def select(self, row: int, col: int) -> None:
        self.selected = (row, col)
        self.update()

    def sizeHint(self) -> QSize:
        n = max(2, len(self.matrix))
        return QSize(160 + 44 * n, 120 + 44 * n)

    # ------------------------------------------------------------ geometry

    def _geometry(self) -> tuple[int, int, int, bool]:
        """(left, top, cell side, rotate column labels) for the current size."""
        fm = QFontMetrics(self.font())
        n = max(1, len(self.matrix))
        names = [_short(x) for x in self.labels] or [""]
        label_w = max(fm.horizontalAdvance(x) for x in names)
        left = label_w + fm.height() + 3 * AXIS_GAP
        top = AXIS_GAP
        room_w = self.width() - left - AXIS_GAP
        side = max(4, room_w // n)
        rotate = label_w + 8 > side
        bottom = (int(label_w * 0.72) + fm.height() if rotate else fm.height()) + fm.height() + 3 * AXIS_GAP
        side = max(4, min(side, (self.height() - top - bottom) // n))
        rotate = label_w + 8 > side
        return left, top, side, rotate

    def cell_rect(self, row: int, col: int) -> QRect:
        left, top, side, _ = self._geometry()
        return QRect(left + col * side, top + row * side, side, side)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        if not self.matrix:
            return None
        left, top, side, _ = self._geometry()
        col, row = (pos.x() - left) // side, (pos.y() - top) // side
        if pos.x() < left or pos.y() < top or not (0 <= row < len(self.matrix) and 0 <= col < len(self.matrix)):
            return None
        return int(row), int(col)

    # ------------------------------------------------------------ events

    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.select(*cell)
            self.cell_clicked.emit(*cell)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is None:
            QToolTip.hideText()
            return
        r, c = cell
        count, total = self.matrix[r][c], sum(self.matrix[r])
        share = f" ({100 * count / total:.0f}% of {self.labels[r]})" if total else ""
        QToolTip.showText(
            event.globalPosition().toPoint(),
            f"true: {self.labels[r]}\npredicted: {self.labels[c]}\n{count} sample(s){share}\nclick to list them",
            self,
        )

    # ------------------------------------------------------------ drawing

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        if not self.matrix:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No confusion matrix")
            return
        left, top, side, rotate = self._geometry()
        n = len(self.matrix)
        base = pal.color(QPalette.ColorRole.Base)
        hot = pal.color(QPalette.ColorRole.Highlight)
        fm = QFontMetrics(self.font())
        count_font = QFont(self.font())
        count_font.setPointSizeF(max(6.0, min(self.font().pointSizeF(), side / 3.2)))
        for r in range(n):
            total = sum(self.matrix[r]) or 1
            for c in range(n):
                share = self.matrix[r][c] / total
                colour = _blend(base, hot, share)
                rect = QRect(left + c * side, top + r * side, side, side)
                p.fillRect(rect, colour)
                p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
                p.drawRect(rect)
                if side >= 14:
                    p.setFont(count_font)
                    p.setPen(_readable_on(colour))
                    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(self.matrix[r][c]))
        if self.selected is not None:
            r, c = self.selected
            p.setPen(QPen(text, 3))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRect(left + c * side, top + r * side, side, side).adjusted(1, 1, -1, -1))
        p.setFont(self.font())
        p.setPen(text)
        grid_w, grid_h = n * side, n * side
        # row names (true classes), right-aligned against the grid
        for r, name in enumerate(self.labels):
            rect = QRect(0, top + r * side, left - AXIS_GAP, side)
            p.drawText(rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _short(name))
        # column names (predicted classes), under the grid; slanted when they do not fit
        y0 = top + grid_h + AXIS_GAP
        for c, name in enumerate(self.labels):
            x_mid = left + c * side + side // 2
            if rotate:
                p.save()
                p.translate(x_mid + fm.ascent() // 3, y0)
                p.rotate(45)
                p.drawText(0, fm.ascent() // 2, _short(name))
                p.restore()
            else:
                p.drawText(QRect(left + c * side, y0, side, fm.height()), Qt.AlignmentFlag.AlignCenter, _short(name))
        # axis titles
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        names_h = fm.height()
        if rotate:
            names_h += int(max(fm.horizontalAdvance(_short(x)) for x in self.labels) * 0.72)
        title = QRect(left, y0 + names_h + AXIS_GAP, grid_w, fm.height())
        p.drawText(title, Qt.AlignmentFlag.AlignCenter, "predicted →")
        p.save()
        p.translate(fm.height() - 2, top + grid_h // 2)
        p.rotate(-90)
        p.drawText(QRect(-grid_h // 2, -fm.height(), grid_h, fm.height() + 2), Qt.AlignmentFlag.AlignCenter, "← true")
        p.restore()


def _blend(a: QColor, b: QColor, t: float) -> QColor:
    t = max(0.0, min(1.0, t))
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


def _readable_on(colour: QColor) -> QColor:
    luma = 0.299 * colour.red() + 0.587 * colour.green() + 0.114 * colour.blue()
    return QColor("black") if luma > 140 else QColor("white")
