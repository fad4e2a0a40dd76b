"""A pyqtgraph plot whose curves grow point by point during training.

Each curve keeps its points in numpy buffers that double when full, so appending one point is one write and one
`setData` on views of the buffers; nothing is rebuilt. Curves downsample and clip to the view.
Plots that change often (the monitor page's) share a PlotRefresher: it redraws one changed plot per tick, so a
window frame paints one plot (~15 ms on 2 cores) rather than all of them at once, and fast steps cannot flood
the main thread with redraws.
Importing this module loads pyqtgraph: pages create these widgets the first time they need them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QStackedLayout, QVBoxLayout, QWidget

#: Colours of the curves, in the order they are added (readable on light and dark backgrounds).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


class Series:
    """The points of one curve: x/y numpy buffers that grow by doubling, shown through `setData`."""

    def __init__(self, item: pg.PlotDataItem, capacity: int = 256):
        self.item = item
        self._x = np.empty(capacity, dtype=float)
        self._y = np.empty(capacity, dtype=float)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]

    def _room(self, extra: int) -> None:
        need = self._n + extra
        if need > len(self._x):
            size = max(need, 2 * len(self._x))
            for name in ("_x", "_y"):
                grown = np.empty(size, dtype=float)
                grown[: self._n] = getattr(self, name)[: self._n]
                setattr(self, name, grown)

    def append(self, x: float, y: float) -> None:
        """Add one point; a NaN or infinite y (a value not measured this step) is skipped."""
        if not math.isfinite(y):
            return
        self._room(1)
        self._x[self._n], self._y[self._n] = x, y
        self._n += 1
        self._show()

    def set(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        """Replace every point (non-finite y values are left out)."""
        x = np.asarray(list(xs), dtype=float)
        y = np.asarray(list(ys), dtype=float)
        keep = np.isfinite(y)
        x, y = x[keep], y[keep]
        self._n = 0
        self._room(len(x))
        self._x[: len(x)], self._y[: len(y)] = x, y
        self._n = len(x)
        self._show()

    def drop_after(self, x_max: float) -> None:
        """Forget points beyond x_max (a resumed run redoes them)."""
        keep = int(np.searchsorted(self.x, x_max, side="right")) if self._n else 0
        if keep != self._n:
            self._n = keep
            self._show()

    def clear(self) -> None:
        self._n = 0
        self._show()

    def _show(self) -> None:
        self.item.setData(self.x, self.y)


def styled_plot(parent: QWidget) -> pg.PlotWidget:
    """A PlotWidget in the window's colours (light or dark), with faint horizontal grid lines."""
    pal = parent.palette()
    plot = pg.PlotWidget(background=pal.color(QPalette.ColorRole.Base))
    text = pal.color(QPalette.ColorRole.Text)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))
        axis.setTextPen(pg.mkPen(text))
    plot.showGrid(x=False, y=True, alpha=0.15)  # horizontal lines to read values by; a full grid paints ~25% slower
    plot.setMenuEnabled(False)
    return plot


class PlotRefresher(QObject):
    """Redraws the plots that changed, one per tick, oldest change first."""

    def __init__(self, interval_ms: int = 60, parent: QObject | None = None):
        super().__init__(parent)
        self._waiting: list[LivePlot] = []
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._redraw_next)

    def mark(self, plot: LivePlot) -> None:
        """Redraw `plot` on a coming tick (once, however many points it got meanwhile)."""
        if plot not in self._waiting:
            self._waiting.append(plot)
        if not self._timer.isActive():
            self._timer.start()

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def flush(self) -> None:
        """Redraw every waiting plot now."""
        while self._waiting:
            self._waiting.pop(0).redraw()
        self._timer.stop()

    def _redraw_next(self) -> None:
        if self._waiting:
            self._waiting.pop(0).redraw()
        if not self._waiting:
            self._timer.stop()


class LivePlot(QWidget):
    """A titled plot with named curves; shows a hint instead while no curve has a point.

    With a `refresher`, new points are drawn on its next tick; without one, at once.
    """

    def __init__(
        self,
        title: str,
        x_label: str,
        y_label: str,
        hint: str,
        parent: QWidget | None = None,
        refresher: PlotRefresher | None = None,
    ):
        super().__init__(parent)
        self.refresher = refresher
        self.plot = styled_plot(self)
        self.plot.setTitle(title, color=self.palette().color(QPalette.ColorRole.Text).name(), size="10pt")
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.setMinimumHeight(140)
        self._legend = None
        self._title, self._default_hint = title, hint
        self.hint = QLabel()
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(dark); border: 1px dashed palette(mid); border-radius: 4px;")
        self.hint.setMinimumHeight(140)
        self.set_hint(hint)
        self._stack = QStackedLayout()
        self._stack.addWidget(self.hint)
        self._stack.addWidget(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._stack)
        self.series: dict[str, Series] = {}

    def add_series(self, name: str, *, points: bool = False, dashed: bool = False, legend: bool = True) -> Series:
        """A new curve called `name` (drawn as a line, or as a line with dots for per-epoch values)."""
        colour = QColor(PALETTE[len(self.series) % len(PALETTE)])
        pen = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
        if legend and self._legend is None:
            pal = self.palette()
            backdrop = QColor(pal.color(QPalette.ColorRole.Base))
            backdrop.setAlpha(210)
            self._legend = self.plot.addLegend(
                offset=(-10, 10),
                labelTextColor=pal.color(QPalette.ColorRole.Text),
                brush=pg.mkBrush(backdrop),
                pen=pg.mkPen(pal.color(QPalette.ColorRole.Mid)),
            )
        kwargs = {"symbol": "o", "symbolSize": 6, "symbolBrush": colour, "symbolPen": None} if points else {}
        item = self.plot.plot(pen=pen, name=name if legend else None, **kwargs)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        s = _WatchedSeries(item, self)
        self.series[name] = s
        return s

    def clear(self, hint: str | None = None) -> None:
        for s in self.series.values():
            s.clear()
        self.set_hint(hint or self._default_hint)
        self._refresh()

    def set_hint(self, text: str) -> None:
        """What the plot says while it has no points."""
        self.hint.setText(f"<b>{self._title}</b><br>{text}")

    def point_count(self) -> int:
        return sum(len(s) for s in self.series.values())

    @property
    def showing_plot(self) -> bool:
        return self._stack.currentWidget() is self.plot

    def redraw(self) -> None:
        """Hand every curve its points and settle the axes' ranges now, so the next frame paints the plot once
        (left to itself, pyqtgraph finds the new range while painting and paints a second time)."""
        for s in self.series.values():
            s.item.setData(s.x, s.y)
        self.plot.getViewBox().prepareForPaint()

    def changed(self) -> None:
        """A curve got new points: switch from the hint to the plot at once, draw the points now or soon."""
        if self.refresher is None:
            self.redraw()
        else:
            self.refresher.mark(self)
        self._refresh()

    def _refresh(self) -> None:
        want = self.plot if self.point_count() else self.hint
        if self._stack.currentWidget() is not want:
            self._stack.setCurrentWidget(want)


class _WatchedSeries(Series):
    """A Series of a LivePlot: its changes go through the plot (hint switching, deferred redraws)."""

    def __init__(self, item: pg.PlotDataItem, owner: LivePlot):
        super().__init__(item)
        self._owner = owner

    def _show(self) -> None:
        self._owner.changed()
