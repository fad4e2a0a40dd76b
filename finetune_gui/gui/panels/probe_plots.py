"""The Train page's look inside the model: gradient flow (RMS gradient per trainable block, log scale, input side
on the left) and dead units (share of ReLU outputs that are zero for a whole batch, per layer), from the newest
logged step's probes. Made on first use (pyqtgraph)."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

HINT = "Gradient flow and dead units appear at the run's logged steps."


class ProbePlots(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.flow = self.dead = None
        self.last: Any = None
        self._layout = QHBoxLayout(self)
        self._hint = QLabel(HINT)
        self._hint.setStyleSheet("color: palette(dark);")
        self._layout.addWidget(self._hint)

    def _ensure(self) -> None:
        if self.flow is not None:
            return
        import pyqtgraph as pg

        self._hint.hide()
        self.flow = pg.PlotWidget(background=None)
        self.flow.setObjectName("gradientFlowPlot")
        self.flow.setTitle("Gradient flow (RMS gradient per block)")
        self.flow.setLogMode(y=True)
        self.flow.setLabel("bottom", "block (input side → head)")
        self.dead = pg.PlotWidget(background=None)
        self.dead.setObjectName("deadUnitPlot")
        self.dead.setTitle("Dead units (share of ReLU units always zero)")
        self.dead.setYRange(0, 1)
        self.dead.setLabel("bottom", "ReLU layer")
        for plot in (self.flow, self.dead):
            plot.showGrid(y=True, alpha=0.2)
            self._layout.addWidget(plot, 1)

    def clear(self) -> None:
        self.last = None
        if self.flow is not None:
            self.flow.clear()
            self.dead.clear()

    def show_probes(self, event: Any) -> None:
        """An events.Probed."""
        import pyqtgraph as pg

        self._ensure()
        self.last = event
        points = [(i, g) for i, g in enumerate(event.block_grad) if math.isfinite(g) and g > 0]
        self.flow.clear()
        if points:
            xs, ys = zip(*points)
            self.flow.plot(list(xs), list(ys), pen=pg.mkPen("#2a6fb0", width=2), symbol="o", symbolSize=6)
            ticks = [(i, _short(event.blocks[i])) for i in xs if i < len(event.blocks)]
            self.flow.getAxis("bottom").setTicks([ticks])
        self.dead.clear()
        if event.dead:
            names = list(event.dead)
            bars = pg.BarGraphItem(x=list(range(len(names))), height=[event.dead[n] for n in names], width=0.6)
            bars.setOpts(brush="#c0392b")
            self.dead.addItem(bars)
            self.dead.getAxis("bottom").setTicks([[(i, _short(n)) for i, n in enumerate(names)]])


def _short(name: str) -> str:
    return name if len(name) <= 12 else "…" + name[-11:]
