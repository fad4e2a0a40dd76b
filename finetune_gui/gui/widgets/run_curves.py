"""One metric of several runs on one plot: a curve per run in the run's own colour, EMA smoothing (the raw values
faint behind), and step, epoch or elapsed time on the x axis. Importing this module loads pyqtgraph."""

from __future__ import annotations

import re

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from finetune_gui.core.run_compare import X_AXES, ema, metric_names
from finetune_gui.gui.widgets.live_plot import LOG_SPAN, positive_span, styled_plot

#: Run colours, taken in order by the runs selected; a run keeps its colour while it stays selected.
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
X_LABELS = {"step": "step", "epoch": "epoch", "time": "elapsed time (s)"}
_STAMP = re.compile(r"-\d{8}-\d{6}(-\d+)?$")  # what core/runs.py's new_run_dir appends


def assign_colours(previous: dict[str, str], paths: list[str]) -> dict[str, str]:
    """Colours for `paths`: those that had one keep it; new ones take the first colours free."""
    kept = {p: c for p, c in previous.items() if p in paths}
    free = [c for c in RUN_COLOURS if c not in kept.values()]
    return {p: kept[p] if p in kept else free.pop(0) for p in paths}


def short_names(names: list[str]) -> list[str]:
    """Run names without the date and time that new run folders end with, where that leaves them apart."""
    short = [_STAMP.sub("", n) or n for n in names]
    return [s if short.count(s) == 1 else n for s, n in zip(short, names)]


def metric_label(name: str) -> str:
    """ "val_accuracy" → "val accuracy", "lr" → "learning rate"."""
    return "learning rate" if name == "lr" else name.replace("_", " ")


class RunCurves(QWidget):
    """Controls (metric, x axis, smoothing, log scale, Save as PNG) above the plot of the runs given last."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.histories: list = []
        self.colours: dict[str, str] = {}
        self.metric_box = QComboBox()
        self.metric_box.setObjectName("compareMetric")
        self.metric_box.setMinimumContentsLength(12)
        self.x_box = QComboBox()
        self.x_box.setObjectName("compareX")
        for x in X_AXES:
            self.x_box.addItem(X_LABELS[x].capitalize(), x)
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("compareSmoothing")
        self.smoothing.setRange(0, 95)
        self.smoothing.setFixedWidth(110)
        self.smoothing.setToolTip("Exponential moving average, as TensorBoard's: 0 shows the values as logged")
        self.smoothing_label = QLabel("0.00")
        self.log_box = QCheckBox("Log scale")
        self.log_box.setObjectName("compareLog")
        self.log_box.setToolTip(f"Turns on by itself when the values span more than {LOG_SPAN:g}×; tick to choose")
        self.png_button = QPushButton("Save PNG…")
        self.png_button.setObjectName("comparePng")
        self.png_button.setToolTip("Save this plot as a PNG picture")
        self._log_chosen = False
        controls = QHBoxLayout()  # two rows, so the plot leaves room for the tables beside it
        for widget in (QLabel("Metric"), self.metric_box, QLabel("X axis"), self.x_box):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.png_button)
        more = QHBoxLayout()
        for widget in (QLabel("Smoothing"), self.smoothing, self.smoothing_label, self.log_box):
            more.addWidget(widget)
        more.addStretch(1)
        self.plot = styled_plot(self)
        self.plot.setMinimumHeight(180)
        item = self.plot.getPlotItem()
        text = self.palette().color(QPalette.ColorRole.Text)
        self.legend = pg.LegendItem(colCount=3, labelTextColor=text)
        item.layout.removeItem(item.getAxis("top"))  # the legend sits above the curves, never on them
        item.layout.addItem(self.legend, 1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(more)
        layout.addWidget(self.plot, 1)
        self.metric_box.currentIndexChanged.connect(self.redraw)
        self.x_box.currentIndexChanged.connect(self.redraw)
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self.log_box.clicked.connect(self._log_clicked)
        self.curves: dict[str, pg.PlotDataItem] = {}  # run path -> its (smoothed) curve

    @property
    def metric(self) -> str:
        return self.metric_box.currentData() or ""

    @property
    def x_axis(self) -> str:
        return self.x_box.currentData()

    @property
    def weight(self) -> float:
        return self.smoothing.value() / 100.0

    def set_runs(self, histories: list, colours: dict[str, str]) -> None:
        """Plot these runs (RunHistory) in these colours (by run path), keeping the chosen metric if they have it."""
        self.histories, self.colours = histories, colours
        current = self.metric
        self.metric_box.blockSignals(True)
        self.metric_box.clear()
        for name in metric_names(histories):
            self.metric_box.addItem(metric_label(name), name)
        index = self.metric_box.findData(current)
        self.metric_box.setCurrentIndex(max(index, 0))
        self.metric_box.blockSignals(False)
        self.redraw()

    def redraw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.curves = {}
        raw_values = []
        for h, label in zip(self.histories, short_names([h.name for h in self.histories])):
            xs, ys = h.curve(self.metric, self.x_axis) if self.metric else ([], [])
            colour = QColor(self.colours.get(h.summary.path, RUN_COLOURS[0]))
            if not xs:
                continue
            raw_values.append(ys)
            one_per_epoch = len(xs) <= 1 or self.metric != "train_loss" or not h.steps
            if self.weight > 0 and len(ys) > 1:
                faint = QColor(colour)
                faint.setAlpha(70)
                self.plot.plot(xs, ys, pen=pg.mkPen(faint, width=1))
                ys = ema(ys, self.weight)
            symbol = {"symbol": "o", "symbolSize": 6, "symbolBrush": colour, "symbolPen": None} if one_per_epoch else {}
            item = self.plot.plot(xs, ys, pen=pg.mkPen(colour, width=2), **symbol)
            self.legend.addItem(item, label)
            self.curves[h.summary.path] = item
        if not self._log_chosen:
            self.log_box.setChecked(positive_span(_arrays(raw_values)) > LOG_SPAN)
        self.plot.setLogMode(x=False, y=self.log_box.isChecked())
        self.plot.setLabel("bottom", X_LABELS.get(self.x_axis, ""))
        self.plot.setLabel("left", metric_label(self.metric))
        self.plot.enableAutoRange()

    def save_png(self, path: str) -> bool:
        """The plot as it is shown, legend included."""
        return self.plot.grab().save(path, "PNG")

    def _smoothing_changed(self, value: int) -> None:
        self.smoothing_label.setText(f"{value / 100:.2f}")
        self.redraw()

    def _log_clicked(self, _on: bool) -> None:
        self._log_chosen = True  # the user's choice holds from now on
        self.redraw()


def _arrays(values: list[list[float]]):
    import numpy as np

    return [np.asarray(v, dtype=float) for v in values]
