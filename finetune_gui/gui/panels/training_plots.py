"""The Train page's four live plots: loss, the task's validation metric, learning rate and gradient norm.

The plots (pyqtgraph) are made by `ensure` the first time they are needed; one changed plot is redrawn per tick.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QGridLayout, QWidget

#: The task metric plotted per epoch: the first of these the run logs (val_ before train_).
METRIC_PREFERENCE = ("accuracy", "f1_macro", "f1_micro", "mae", "rmse", "r2", "perplexity")


def task_metric(metrics: dict[str, float]) -> str | None:
    """The metric worth plotting per epoch: val_<first of METRIC_PREFERENCE>, else its train_ twin."""
    for prefix in ("val_", "train_"):
        for name in METRIC_PREFERENCE:
            if f"{prefix}{name}" in metrics:
                return f"{prefix}{name}"
    return None


class TrainingPlots(QWidget):
    """A 2×2 grid of LivePlots, keyed "loss", "metric", "lr" and "grad" in `plots` once made."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plots: dict[str, Any] = {}
        self.refresher = None
        self._metric: str | None = None  # the metric plotted, chosen from the first epoch's metrics
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(8)

    def ensure(self) -> None:
        """Make the four plots (imports pyqtgraph) the first time they are needed."""
        if self.plots:
            return
        from finetune_gui.gui.widgets.live_plot import LivePlot, PlotRefresher

        self.refresher = PlotRefresher(parent=self)  # one changed plot redrawn per 60 ms tick
        loss = LivePlot(
            "Loss",
            "step",
            "loss",
            "Training and validation loss appear once a run starts.",
            refresher=self.refresher,
            log_toggle=True,
        )
        loss.setObjectName("monitor-plot-loss")
        loss.add_series("train")
        loss.add_series("train (epoch mean)", points=True, dashed=True)
        loss.add_series("validation", points=True)
        metric = LivePlot(
            "Validation metric",
            "epoch",
            "metric",
            "The task's metric appears after each epoch.",
            refresher=self.refresher,
        )
        metric.setObjectName("monitor-plot-metric")
        metric.add_series("metric", points=True, legend=False)
        for plot in (loss, metric):  # accuracy 0.64 reads as 0.64, not "640 (x0.001)"
            plot.plot.getAxis("left").enableAutoSIPrefix(False)
        lr = LivePlot(
            "Learning rate",
            "step",
            "learning rate",
            "The learning rate appears once a run starts.",
            refresher=self.refresher,
        )
        lr.setObjectName("monitor-plot-lr")
        lr.add_series("lr", legend=False)
        grad = LivePlot(
            "Gradient norm", "step", "norm", "Gradient norms appear while a run is going.", refresher=self.refresher
        )
        grad.setObjectName("monitor-plot-grad")
        grad.add_series("grad norm", legend=False)
        self.plots = {"loss": loss, "metric": metric, "lr": lr, "grad": grad}
        for i, plot in enumerate(self.plots.values()):
            self._grid.addWidget(plot, i // 2, i % 2)
        for i in range(2):  # four equal plots, whatever their axis labels ask for
            self._grid.setRowStretch(i, 1)
            self._grid.setColumnStretch(i, 1)

    def clear(self) -> None:
        """Empty every plot; the next run's first epoch chooses the metric again."""
        for plot in self.plots.values():
            plot.clear()
        if "metric" in self.plots:
            self.plots["metric"].plot.setLabel("left", "metric")
        self._metric = None

    def drop_after(self, step: int, steps_per_epoch: int) -> None:
        """A resumed run redoes what came after its checkpoint at `step`."""
        for name, plot in self.plots.items():
            done = step // max(1, steps_per_epoch) if name == "metric" else step
            for series in plot.series.values():
                series.drop_after(done)

    def add_step(self, e) -> None:
        """An engine StepMetrics event."""
        self.ensure()
        self.plots["loss"].series["train"].append(e.step, e.loss)
        self.plots["lr"].series["lr"].append(e.step, e.lr)
        self.plots["grad"].series["grad norm"].append(e.step, e.grad_norm)

    def set_steps(self, rows: list[dict[str, Any]]) -> None:
        """Plot the step rows of a run folder (steps.jsonl: step, loss, lr, grad_norm; a missing value is left out)."""
        self.ensure()
        for plot, name, key in (("loss", "train", "loss"), ("lr", "lr", "lr"), ("grad", "grad norm", "grad_norm")):
            have = [r for r in rows if r.get(key) is not None and "step" in r]
            self.plots[plot].series[name].set([r["step"] for r in have], [r[key] for r in have])

    def add_epoch(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        """One epoch's metrics (1-based `epoch`, at optimiser step `step`)."""
        self.ensure()
        loss = self.plots["loss"].series
        if "train_loss" in metrics:
            loss["train (epoch mean)"].append(step, metrics["train_loss"])
        if "val_loss" in metrics:
            loss["validation"].append(step, metrics["val_loss"])
        if self._metric is None:
            self._metric = task_metric(metrics)
            if self._metric:
                self.plots["metric"].plot.setLabel("left", self._metric)
        if self._metric in metrics:
            self.plots["metric"].series["metric"].append(epoch, metrics[self._metric])
            axis = self.plots["metric"].plot.getAxis("bottom")
            if epoch <= 20:
                axis.setTickSpacing(5, 1)  # whole epochs while there are few
            else:
                axis.setTickSpacing()
