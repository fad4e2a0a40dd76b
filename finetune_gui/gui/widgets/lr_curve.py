"""pyqtgraph plots for the training setup: the planned learning rate over the run, and an LR-finder sweep.

Importing this module loads pyqtgraph; pages create these widgets the first time they are shown.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QStackedLayout, QVBoxLayout, QWidget

from finetune_gui.gui.widgets.live_plot import styled_plot


class _WithHint(QWidget):
    """A plot with a centred hint in its place while it has nothing to show."""

    def __init__(self, hint: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = styled_plot(self)
        self.plot.setMinimumHeight(160)
        self.hint = QLabel(hint)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(dark); border: 1px dashed palette(mid); border-radius: 4px;")
        self.hint.setMinimumHeight(160)
        self._stack = QStackedLayout()
        self._stack.addWidget(self.hint)
        self._stack.addWidget(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._stack)

    def show_hint(self, text: str | None = None) -> None:
        if text is not None:
            self.hint.setText(text)
        self._stack.setCurrentWidget(self.hint)

    def show_plot(self) -> None:
        self._stack.setCurrentWidget(self.plot)

    @property
    def showing_plot(self) -> bool:
        return self._stack.currentWidget() is self.plot


class LRCurve(_WithHint):
    """The learning rate at every planned optimiser step, against the epoch."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("The learning-rate plan appears here.", parent)
        self.setObjectName("lrCurve")
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        self.curve = self.plot.plot(pen=pg.mkPen(colour, width=2))
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "learning rate")

    def set_lrs(self, lrs, steps_per_epoch: int) -> None:
        """Plot `lrs` (one per optimiser step); x is the step divided by the steps per epoch."""
        y = np.asarray(lrs, dtype=float)
        if not len(y):
            self.curve.clear()
            self.show_hint("No optimiser steps are planned.")
            return
        # step s holds its LR from s to s + 1 (in epochs: divided by the steps per epoch)
        x = np.arange(len(y) + 1, dtype=float) / max(1, steps_per_epoch)
        self.curve.setData(x, y, stepMode="center")
        top = float(y.max()) if y.max() > 0 else 1.0
        self.plot.setYRange(0.0, top * 1.05, padding=0)
        self.plot.setXRange(0.0, float(x[-1]), padding=0.02)
        self.show_plot()

    def lrs(self) -> np.ndarray:
        """The values plotted, one per planned step."""
        y = self.curve.yData
        return np.zeros(0) if y is None else np.array(y)


class LRFinderPlot(_WithHint):
    """Loss against learning rate (log x axis) from an LR-finder sweep, with the suggested LR marked."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Press “Find learning rate” to try a sweep of learning rates on your data.", parent)
        self.setObjectName("lrFinderPlot")
        pal = self.palette()
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "learning rate (log scale)")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)  # 1e-4 reads as 1e-4, not "100 (x1e-06)"
        self.plot.setLabel("left", "loss")
        self.raw = self.plot.plot(pen=pg.mkPen(pal.color(QPalette.ColorRole.Mid), width=1))
        self.smooth = self.plot.plot(pen=pg.mkPen(pal.color(QPalette.ColorRole.Highlight), width=2))
        self.marker = self.plot.plot(
            pen=None, symbol="o", symbolSize=10, symbolBrush=pg.mkBrush("#e0a030"), symbolPen=pg.mkPen("#e0a030")
        )
        self.line = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen("#e0a030", width=1, style=Qt.PenStyle.DashLine),
            label="",
            labelOpts={"position": 0.92, "color": "#e0a030"},
        )
        self.plot.addItem(self.line)
        self.line.hide()
        self.suggested: float | None = None

    def set_result(self, lrs, losses, raw_losses=None, suggested: float | None = None) -> None:
        x = np.asarray(lrs, dtype=float)
        y = np.asarray(losses, dtype=float)
        if not len(x):
            self.show_hint("The sweep recorded no points.")
            return
        self.smooth.setData(x, y)
        if raw_losses is not None and len(raw_losses) == len(x):
            self.raw.setData(x, np.asarray(raw_losses, dtype=float))
        else:
            self.raw.setData([], [])
        self.suggested = suggested
        if suggested is not None and suggested > 0:
            at = int(np.argmin(np.abs(np.log(x) - math.log(suggested))))
            self.marker.setData([suggested], [y[at]])
            self.line.setPos(math.log10(suggested))
            self.line.label.setFormat(f"suggested {suggested:.2g}")
            self.line.show()
        else:
            self.marker.setData([], [])
            self.line.hide()
        finite = y[np.isfinite(y)]
        if len(finite):  # the divergence at the end would squash the interesting part
            low, high = (
                float(finite.min()),
                float(min(finite.max(), finite[0] * 1.5 if finite[0] > 0 else finite.max())),
            )
            pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
            self.plot.setYRange(low - pad, high + pad, padding=0)
        self.plot.setXRange(math.log10(x[0]), math.log10(x[-1]), padding=0.02)
        self.show_plot()

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(learning rates, smoothed losses) as plotted."""
        x, y = self.smooth.xData, self.smooth.yData  # the data as given (getData() is log-mapped)
        return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))
