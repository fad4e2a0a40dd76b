"""The Evaluate page: how the finished run does on its test split.

Overall metrics, the per-class table and the confusion matrix come from the run's evaluation.json; clicking a
cell lists the samples in it and the top-loss list shows the worst ones (both from core.inference's
sample_predictions, computed in a worker with the run's model from the shared PredictorCache). Regression shows
true against predicted values; a causal LM shows its perplexity and a generation panel. Every read, prediction
and generation runs through bridge.run_task.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.dialogs import is_expected
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.panels.diagnosis import DiagnosisPanel, offer_remedy
from finetune_gui.gui.panels.generation import GenerationPanel
from finetune_gui.gui.panels.per_class_table import PerClassTable
from finetune_gui.gui.panels.sample_list import SampleList
from finetune_gui.gui.widgets.confusion_matrix import ConfusionMatrixView
from finetune_gui.gui.widgets.metric_cards import MetricCards

MAX_LISTED = 200
TOP_LOSS = 50
TAB_PER_CLASS, TAB_CELL, TAB_TOP_LOSS, TAB_DIAGNOSIS = 0, 1, 2, 3
CELL_HINT = "Click a cell of the confusion matrix to list its samples."


# ---------------------------------------------------------------- worker jobs (off the main thread)


def read_run_evaluation(run_dir: str) -> dict[str, Any]:
    """evaluation.json with the run's task and labels."""
    from finetune_gui.core.diagnostics.checks import diagnose_run
    from finetune_gui.core.errors import RunStateError
    from finetune_gui.core.run_model import read_evaluation, read_labels
    from finetune_gui.core.runs import RunDir

    task, labels = read_labels(RunDir(Path(run_dir)))
    try:
        findings = [f.to_dict() for f in diagnose_run(run_dir)]
    except RunStateError:  # a run from before diagnostics
        findings = None
    evaluation = read_evaluation(run_dir)
    return {"run_dir": run_dir, "task": task.value, "labels": labels, "evaluation": evaluation, "findings": findings}


def score_split(predictor):
    """Every test sample of the predictor's run with its prediction and loss."""
    from finetune_gui.core.samples import sample_predictions

    return sample_predictions(predictor.run_dir, predictor=predictor)


class EvaluatePage(Page):
    key = "evaluate"
    title = "Evaluate"

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.run_dir: str | None = None
        self.task: str | None = None
        self.labels: list[str] = []
        self.evaluation: dict[str, Any] = {}
        self.samples = None  # core.inference.SampleSet once scored
        self.scatter = None  # pyqtgraph plot, made for the first regression run
        self._token = 0
        self._pending_cell: tuple[int, int] | None = None
        self._build()
        bridge.run_finished.connect(self._on_run_finished)
        state.run_changed.connect(self._on_run_changed)

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        self.run_label = QLabel("No run")
        self.run_label.setObjectName("evaluate-run")
        self.run_label.setStyleSheet("font-weight: 600;")
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.refresh_button = QPushButton("Reload")
        self.refresh_button.setObjectName("evaluate-refresh")
        self.refresh_button.setToolTip("Read the run's evaluation again and re-score its test samples")
        self.refresh_button.clicked.connect(lambda: self.run_dir and self.load(self.run_dir))
        self.refresh_button.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.run_label, 1)
        top.addWidget(self.refresh_button)
        self.status_label = QLabel(
            "Finish a run, or open a run folder (File → Open run folder), to see how the "
            "model does on data it did not train on."
        )
        self.status_label.setObjectName("evaluate-status")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: palette(dark);")

        self.metrics = MetricCards()
        self.metrics.setObjectName("evaluate-metrics")

        self.generation = GenerationPanel(self.bridge, self.state.predictors, "evaluate")
        self.generation.layout().setContentsMargins(0, 8, 0, 0)
        self.generation.error.connect(self.error)
        self.generation.busy_changed.connect(lambda busy: self.refresh_button.setEnabled(not busy))

        self.body = QStackedWidget()
        self.body.setObjectName("evaluate-body")
        self.body.addWidget(QWidget())  # nothing loaded
        self.body.addWidget(self._build_analysis())
        self.body.addWidget(self.generation)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addWidget(self.metrics)
        layout.addWidget(self.body, 1)

    def _build_analysis(self) -> QWidget:
        self.matrix = ConfusionMatrixView()
        self.matrix.cell_clicked.connect(self.show_cell)
        self.left = QStackedWidget()
        self.left.addWidget(self.matrix)
        self.left.setMinimumWidth(360)

        self.per_class = PerClassTable()
        self.cell_samples = SampleList(self.bridge, "evaluate-cell-samples", CELL_HINT)
        self.cell_samples.title.setObjectName("evaluate-cell-title")
        self.top_loss = SampleList(
            self.bridge, "evaluate-top-loss", "The samples the model gets most wrong (highest loss) appear here."
        )
        self.tabs = QTabWidget()
        self.tabs.setObjectName("evaluate-tabs")
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(self.cell_samples, "Samples in cell")
        self.tabs.addTab(self.top_loss, "Highest loss")
        self.diagnosis = DiagnosisPanel("Nothing wrong found in this run.")
        self.diagnosis.apply.connect(lambda remedy: offer_remedy(self, self.state, remedy))
        self.tabs.addTab(self.diagnosis, "Diagnosis")

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        return self.splitter

    # ------------------------------------------------------------ loading

    def _on_run_changed(self, path: str) -> None:
        if path:
            self.load(path)
        else:
            self._reset("No run")

    def _on_run_finished(self, event) -> None:
        self.state.predictors.forget(event.run_dir)  # its final weights replace a checkpoint loaded before
        self.load(event.run_dir)

    def load(self, run_dir: str) -> None:
        """Read a run's evaluation (in a worker); then score its test split for the sample lists."""
        run_dir = str(run_dir)
        self._token += 1
        self.run_dir = run_dir
        self.generation.set_run(None)
        self.refresh_button.setEnabled(True)
        self.run_label.setText(f"Run: {Path(run_dir).name}")
        self.run_label.setToolTip(run_dir)
        self.status_label.setText("Reading the run's evaluation…")
        self.bridge.run_task(
            read_run_evaluation,
            run_dir,
            on_result=partial(self._show_evaluation, self._token),
            on_error=partial(self._load_failed, self._token),
        )

    def _reset(self, title: str) -> None:
        self.task, self.labels, self.evaluation, self.samples = None, [], {}, None
        self.generation.set_run(None)
        self.run_label.setText(title)
        self.metrics.set_metrics({})
        self.body.setCurrentIndex(0)

    def _load_failed(self, token: int, error_type: str, message: str, details: str) -> None:
        if token != self._token:
            return
        self._reset(self.run_label.text())
        self.status_label.setText(message)
        if not is_expected(error_type):  # said above; only a fault of the app gets the dialog
            self.error.emit(error_type, message, details)

    def _show_evaluation(self, token: int, result: dict[str, Any]) -> None:
        if token != self._token:
            return
        self.task, self.labels, self.evaluation = result["task"], result["labels"], result["evaluation"]
        self.samples, self._pending_cell = None, None
        ev = self.evaluation
        self.metrics.set_metrics(ev)
        split = ev.get("split", "test")
        n = ev.get("num_samples", 0)
        if self.task == "causal-lm":
            self.generation.set_run(self.run_dir)
            self.body.setCurrentIndex(2)
            self.status_label.setText(
                f"Perplexity on the {split} split ({ev.get('tokens', 0):,} tokens). "
                "Lower is better. Try the model below."
            )
            return
        self.body.setCurrentIndex(1)
        findings = result["findings"] or []
        said = "This run was trained before diagnostics were kept." if result["findings"] is None else None
        self.diagnosis.set_findings(findings, said)
        self.tabs.setTabText(TAB_DIAGNOSIS, f"Diagnosis ({len(findings)})" if findings else "Diagnosis")
        self._show_task_views(ev)
        self.cell_samples.clear()
        self.top_loss.clear()
        self.cell_samples.title.setText(CELL_HINT)
        self.status_label.setText(f"{n} {split} samples. Scoring them one by one for the sample lists…")
        self.bridge.run_task(
            self.state.predictors.use,
            self.run_dir,
            score_split,
            on_result=partial(self._show_samples, token),
            on_error=partial(self._samples_failed, token),
        )

    def _show_task_views(self, ev: dict[str, Any]) -> None:
        classification = self.task in ("image-classification", "text-classification")
        regression = self.task in ("image-regression", "text-regression")
        rows = ev.get("per_class") or ev.get("per_label") or []
        multilabel = self.task == "image-multilabel"
        self.per_class.set_rows(rows, "Label" if multilabel else "Class")
        self.tabs.setTabVisible(TAB_PER_CLASS, bool(rows))
        self.tabs.setTabVisible(TAB_CELL, classification)
        self.tabs.setTabText(TAB_PER_CLASS, "Per label" if multilabel else "Per class")
        if classification:
            self.matrix.set_matrix(ev.get("confusion_matrix", []), ev.get("labels", self.labels))
            self.left.setCurrentWidget(self.matrix)
        elif regression:
            self._show_scatter(ev.get("scatter", []))
        self.left.setVisible(classification or regression)
        self.tabs.setCurrentIndex(TAB_PER_CLASS if rows else TAB_TOP_LOSS)

    def _show_scatter(self, points: list[list[float]]) -> None:
        if self.scatter is None:
            import pyqtgraph as pg

            from finetune_gui.gui.widgets.live_plot import styled_plot

            self.scatter = styled_plot(self)
            self.scatter.setObjectName("evaluate-scatter")
            self.scatter.setLabel("bottom", "true value")
            self.scatter.setLabel("left", "predicted value")
            for side in ("left", "bottom"):
                self.scatter.getAxis(side).enableAutoSIPrefix(False)  # the values as they are in the data
            self.scatter_points = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(31, 119, 180, 160), pen=None)
            self.scatter_line = pg.PlotCurveItem(pen=pg.mkPen((150, 150, 150), width=1, style=Qt.PenStyle.DashLine))
            self.scatter.addItem(self.scatter_line)
            self.scatter.addItem(self.scatter_points)
            self.left.addWidget(self.scatter)
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        self.scatter_points.setData(xs, ys)
        if xs:
            lo, hi = min(xs + ys), max(xs + ys)
            self.scatter_line.setData([lo, hi], [lo, hi])  # where a perfect model's points would lie
        self.scatter.setTitle(f"{len(xs)} test samples: predicted against true (dashed: perfect)")
        self.left.setCurrentWidget(self.scatter)

    # ------------------------------------------------------------ samples

    def _samples_failed(self, token: int, error_type: str, message: str, details: str) -> None:
        if token != self._token:
            return
        self.status_label.setText(f"The evaluation is shown, but its samples could not be listed: {message}")
        if not is_expected(error_type):
            self.error.emit(error_type, message, details)

    def _show_samples(self, token: int, samples) -> None:
        if token != self._token:
            return
        self.samples = samples
        worst = samples.top_loss(TOP_LOSS)
        self.top_loss.title.setText(f"The {len(worst)} {samples.split} samples with the highest loss, worst first.")
        self.top_loss.fill(worst, self._images)
        self.status_label.setText(
            f"{len(samples.records)} {samples.split} samples scored"
            + (
                ". Click a cell of the matrix to see its samples."
                if self.task and self.task.endswith("classification")
                else "."
            )
        )
        if self._pending_cell is not None:
            self.show_cell(*self._pending_cell)

    @property
    def _images(self) -> bool:
        return self.task is not None and self.task.startswith("image-")

    def show_cell(self, true_index: int, pred_index: int) -> None:
        """List the samples whose true class is row `true_index` and predicted class column `pred_index`."""
        self.tabs.setCurrentIndex(TAB_CELL)
        self.matrix.select(true_index, pred_index)
        names = self.matrix.labels
        what = f"true {names[true_index]}, predicted {names[pred_index]}"
        if self.samples is None:
            self._pending_cell = (true_index, pred_index)
            self.cell_samples.title.setText(f"{what}: the samples are still being scored…")
            self.cell_samples.clear()
            return
        self._pending_cell = None
        records = self.samples.in_cell(true_index, pred_index)
        more = f" (first {MAX_LISTED} shown)" if len(records) > MAX_LISTED else ""
        self.cell_samples.title.setText(f"{what}: {len(records)} sample(s){more}")
        self.cell_samples.fill(records[:MAX_LISTED], self._images)
