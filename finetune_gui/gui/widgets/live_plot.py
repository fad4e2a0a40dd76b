"""A pyqtgraph plot whose curves grow point by point during training.

Each curve keeps its points in numpy buffers that double when full, so appending one point is one write and one
`setData` on views of the buffers; nothing is rebuilt. Curves downsample and clip to the view.
Plots that change often (the monitor page's) share a PlotRefresher: it redraws one changed plot per tick, so a
window frame paints one plot (~15 ms on 2 cores) rather than all of them at once, and fast steps cannot flood
the main thread with redraws.
A plot reads at any scale: its legend sits above the curves, never on them; a lone point is drawn as a dot with a
range around it; with a log toggle, the y axis turns logarithmic by itself once the values span more than
LOG_SPAN (one loss spike of 8e4 would flatten the rest), until the user sets the toggle.
Importing this module loads pyqtgraph: pages create these widgets the first time they need them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QCheckBox, QLabel, QStackedLayout, QVBoxLayout, QWidget

#: Colours of the curves, in the order they are added (readable on light and dark backgrounds).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
LOG_SPAN = 100.0  # max/min of the positive values beyond which a plot with a log toggle turns logarithmic


def positive_span(values: Iterable[np.ndarray]) -> float:
    """max/min of the positive values (1.0 when there are none)."""
    pos = [v[v > 0] for v in values]
    pos = [v for v in pos if len(v)]
    if not pos:
        return 1.0
    return float(max(v.max() for v in pos) / min(v.min() for v in pos))


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
        log_toggle: bool = False,
    ):
        super().__init__(parent)
        self.refresher = refresher
        self.plot = styled_plot(self)
        self.plot.setTitle(title, color=self.palette().color(QPalette.ColorRole.Text).name(), size="10pt")
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.setMinimumHeight(140)
        self._legend = None
        self._pinned = {"x": False, "y": False}  # a range set around a lone value, not by autorange
        self.log_auto = True  # the log toggle follows the data until the user sets it
        self.log_y = False
        self.log_box: QCheckBox | None = None
        if log_toggle:
            self.log_box = QCheckBox(
                "Log scale", self.plot
            )  # at the title row's right end (resizeEvent): no curve there
            self.log_box.setObjectName("logScale")
            self.log_box.setToolTip(
                f"A logarithmic y axis. It turns on by itself when the values span more than {LOG_SPAN:g}×, so one "
                "spike does not flatten the rest; tick or untick it to choose yourself."
            )
            self.log_box.clicked.connect(self._log_chosen)
            self.log_box.adjustSize()
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
        kwargs = {"symbol": "o", "symbolSize": 6, "symbolBrush": colour, "symbolPen": None} if points else {}
        item = self.plot.plot(pen=pen, **kwargs)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        if legend:
            self.legend().addItem(item, name)
        s = _WatchedSeries(item, self, dots=points)
        self.series[name] = s
        return s

    def legend(self) -> pg.LegendItem:
        """The legend: one row in the place of the (unused) top axis, above the curves, so it never hides one."""
        if self._legend is None:
            item = self.plot.getPlotItem()
            self._legend = pg.LegendItem(colCount=4, labelTextColor=self.palette().color(QPalette.ColorRole.Text))
            item.layout.removeItem(item.getAxis("top"))
            item.layout.addItem(self._legend, 1, 1)
        return self._legend

    def clear(self, hint: str | None = None) -> None:
        for s in self.series.values():
            s.clear()
        self.log_auto = True  # a new run's values choose again
        self._set_log(False)
        self.set_hint(hint or self._default_hint)
        self._refresh()

    def _set_log(self, on: bool) -> None:
        if self.log_box is not None:
            self.log_box.setChecked(on)
        if on != self.log_y:
            self.log_y = on
            self.plot.setLogMode(x=False, y=on)

    def _log_chosen(self, on: bool) -> None:
        """The user ticked or unticked "Log scale": that holds until the plot is cleared."""
        self.log_auto = False
        self._set_log(on)
        self.redraw()

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
            s.show_dots(len(s) == 1)
        if self.log_box is not None and self.log_auto:
            self._set_log(positive_span(s.y for s in self.series.values()) > LOG_SPAN)
        self._settle_ranges()
        self.plot.getViewBox().prepareForPaint()

    def _settle_ranges(self) -> None:
        """Autorange, except on an axis where every point has one value: there, a range around that value."""
        view = self.plot.getViewBox()
        xs = [s.x for s in self.series.values() if len(s)]
        ys = [s.y for s in self.series.values() if len(s)]
        if self.log_y:
            ys = [np.log10(y[y > 0]) for y in ys]
            ys = [y for y in ys if len(y)]
        for axis, values in (("x", xs), ("y", ys)):
            low = min((float(v.min()) for v in values), default=math.nan)
            high = max((float(v.max()) for v in values), default=math.nan)
            if low == high:  # one value (NaN when none: nothing to settle)
                if axis == "x":  # steps or epochs: one either side, not below 0
                    low, high = max(low - 1.0, min(low, 0.0)), low + 1.0
                else:  # ±10% (half a decade on a log axis)
                    pad = 0.5 if self.log_y else abs(low) * 0.1 or 1.0
                    low, high = low - pad, low + pad
                (view.setXRange if axis == "x" else view.setYRange)(low, high, padding=0)
                self._pinned[axis] = True
            elif self._pinned[axis]:
                view.enableAutoRange(axis=axis, enable=True)
                self._pinned[axis] = False

    def changed(self) -> None:
        """A curve got new points: switch from the hint to the plot at once, draw the points now or soon."""
        if self.refresher is None:
            self.redraw()
        else:
            self.refresher.mark(self)
        self._refresh()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.log_box is not None:
            self.log_box.move(self.plot.width() - self.log_box.width() - 8, 4)

    def _refresh(self) -> None:
        want = self.plot if self.point_count() else self.hint
        if self._stack.currentWidget() is not want:
            self._stack.setCurrentWidget(want)


class _WatchedSeries(Series):
    """A Series of a LivePlot: its changes go through the plot (hint switching, deferred redraws)."""

    def __init__(self, item: pg.PlotDataItem, owner: LivePlot, dots: bool = False):
        super().__init__(item)
        self._owner = owner
        self._dots = dots  # drawn with dots always; a line alone gets one while it has a single point

    def show_dots(self, lone: bool) -> None:
        if not self._dots:
            want = "o" if lone else None
            if self.item.opts["symbol"] != want:
                pen = self.item.opts["pen"]
                self.item.setSymbol(want)
                self.item.setSymbolSize(7)
                self.item.setSymbolBrush(pg.mkPen(pen).color())
                self.item.setSymbolPen(None)

    def _show(self) -> None:
        self._owner.changed()
