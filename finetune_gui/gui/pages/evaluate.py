"""The Evaluate page: how the finished run does on its test split.

Overall metrics, the per-class table and the confusion matrix come from the run's evaluation.json; clicking a
cell lists the samples in it and the top-loss list shows the worst ones (both from core.inference's
sample_predictions, computed in a worker). Regression shows true against predicted values; a causal LM shows
its perplexity and a generation panel. Every read, prediction and generation runs through bridge.run_task.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.widgets.confusion_matrix import ConfusionMatrixView
from finetune_gui.gui.widgets.generation_knobs import max_tokens_box, temperature_box

THUMB = 56
MAX_LISTED = 200
TOP_LOSS = 50
#: Overall metrics in the order they are shown; others follow.
METRIC_ORDER = (
    "accuracy",
    "top5_accuracy",
    "f1_macro",
    "precision_macro",
    "recall_macro",
    "f1_micro",
    "hamming_accuracy",
    "mae",
    "rmse",
    "r2",
    "perplexity",
    "loss",
)
TAB_PER_CLASS, TAB_CELL, TAB_TOP_LOSS = 0, 1, 2


# ---------------------------------------------------------------- worker jobs (off the main thread)


def read_run_evaluation(run_dir: str) -> dict[str, Any]:
    """evaluation.json with the run's task and labels."""
    from finetune_gui.core.run_model import read_evaluation, read_labels
    from finetune_gui.core.runs import RunDir

    task, labels = read_labels(RunDir(Path(run_dir)))
    return {"run_dir": run_dir, "task": task.value, "labels": labels, "evaluation": read_evaluation(run_dir)}


def score_split(run_dir: str):
    from finetune_gui.core.samples import sample_predictions

    return sample_predictions(run_dir)


def make_thumbnails(paths: list[str], size: int) -> list[QImage]:
    """Scaled QImages (safe to make outside the GUI thread); a null image for a file that cannot be read."""
    out = []
    for p in paths:
        image = QImage(p)
        if not image.isNull():
            image = image.scaled(
                size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        out.append(image)
    return out


class PredictorSlot:
    """Holds one run's Predictor. Only worker tasks touch it, one at a time (the page disables its inputs)."""

    def __init__(self) -> None:
        self.run_dir: str | None = None
        self.predictor: Any = None

    def get(self, run_dir: str):
        if self.predictor is None or self.run_dir != run_dir:
            from finetune_gui.core.inference import load_predictor

            self.predictor, self.run_dir = None, None
            self.predictor, self.run_dir = load_predictor(run_dir), run_dir
        return self.predictor


def generate_text(slot: PredictorSlot, run_dir: str, prompt: str, max_new_tokens: int, temperature: float) -> str:
    return slot.get(run_dir).generate(prompt, max_new_tokens, temperature)


def metric_title(name: str) -> str:
    return {
        "f1_macro": "F1 (macro)",
        "f1_micro": "F1 (micro)",
        "precision_macro": "precision (macro)",
        "recall_macro": "recall (macro)",
        "top5_accuracy": "top-5 accuracy",
        "hamming_accuracy": "label accuracy",
        "mae": "MAE",
        "rmse": "RMSE",
        "r2": "R²",
    }.get(name, name.replace("_", " "))


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
        self._slot = PredictorSlot()
        self._fills: dict[str, int] = {}  # list name -> how many times it was filled (stale thumbnails are dropped)
        self._build()
        bridge.run_finished.connect(lambda e: self.load(e.run_dir))
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

        self.metrics_row = QHBoxLayout()
        self.metrics_row.setSpacing(8)
        metrics_box = QWidget()
        metrics_box.setObjectName("evaluate-metrics")
        metrics_box.setLayout(self.metrics_row)
        self.metrics_row.setContentsMargins(0, 0, 0, 0)
        self.metrics_box = metrics_box

        self.body = QStackedWidget()
        self.body.setObjectName("evaluate-body")
        self.body.addWidget(QWidget())  # nothing loaded
        self.body.addWidget(self._build_analysis())
        self.body.addWidget(self._build_generation())

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addWidget(metrics_box)
        layout.addWidget(self.body, 1)

    def _build_analysis(self) -> QWidget:
        self.matrix = ConfusionMatrixView()
        self.matrix.cell_clicked.connect(self.show_cell)
        self.left = QStackedWidget()
        self.left.addWidget(self.matrix)
        self.left.setMinimumWidth(360)

        self.per_class = QTableWidget(0, 5)
        self.per_class.setObjectName("evaluate-per-class")
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Support"])
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.per_class.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, 5):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # class order until a header is clicked
        self.per_class.setToolTip("Click a column header to sort by it")

        cell_page = QWidget()
        self.cell_title = QLabel("Click a cell of the confusion matrix to list its samples.")
        self.cell_title.setObjectName("evaluate-cell-title")
        self.cell_title.setWordWrap(True)
        self.cell_list = self._sample_list("evaluate-cell-samples")
        v = QVBoxLayout(cell_page)
        v.setContentsMargins(4, 4, 4, 4)
        v.addWidget(self.cell_title)
        v.addWidget(self.cell_list, 1)

        loss_page = QWidget()
        self.top_loss_title = QLabel("The samples the model gets most wrong (highest loss) appear here.")
        self.top_loss_title.setWordWrap(True)
        self.top_loss_list = self._sample_list("evaluate-top-loss")
        v = QVBoxLayout(loss_page)
        v.setContentsMargins(4, 4, 4, 4)
        v.addWidget(self.top_loss_title)
        v.addWidget(self.top_loss_list, 1)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("evaluate-tabs")
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(cell_page, "Samples in cell")
        self.tabs.addTab(loss_page, "Highest loss")

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        return self.splitter

    def _sample_list(self, name: str) -> QListWidget:
        w = QListWidget()
        w.setObjectName(name)
        w.setIconSize(QSize(THUMB, THUMB))
        w.setWordWrap(True)
        w.setSpacing(2)
        w.setUniformItemSizes(False)
        return w

    def _build_generation(self) -> QWidget:
        page = QWidget()
        self.prompt = QPlainTextEdit()
        self.prompt.setObjectName("evaluate-prompt")
        self.prompt.setPlaceholderText("Type the start of a text; the model writes on from there.")
        self.prompt.setMaximumHeight(110)
        self.temperature = temperature_box("evaluate-temperature")
        self.max_tokens = max_tokens_box("evaluate-max-tokens")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("evaluate-generate")
        self.generate_button.clicked.connect(self.generate)
        knobs = QHBoxLayout()
        knobs.addWidget(QLabel("Temperature"))
        knobs.addWidget(self.temperature)
        knobs.addSpacing(16)
        knobs.addWidget(QLabel("Max new tokens"))
        knobs.addWidget(self.max_tokens)
        knobs.addStretch(1)
        knobs.addWidget(self.generate_button)
        self.output = QPlainTextEdit()
        self.output.setObjectName("evaluate-output")
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("The generated text appears here.")
        form = QFormLayout()
        form.addRow("Prompt", self.prompt)
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 8, 0, 0)
        v.addLayout(form)
        v.addLayout(knobs)
        v.addWidget(QLabel("Generated text"))
        v.addWidget(self.output, 1)
        return page

    # ------------------------------------------------------------ loading

    def _on_run_changed(self, path: str) -> None:
        if path:
            self.load(path)
        else:
            self._reset("No run")

    def load(self, run_dir: str) -> None:
        """Read a run's evaluation (in a worker); then score its test split for the sample lists."""
        run_dir = str(run_dir)
        self._token += 1
        self.run_dir = run_dir
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
        self.run_label.setText(title)
        self._fill_metrics({})
        self.body.setCurrentIndex(0)

    def _load_failed(self, token: int, error_type: str, message: str, details: str) -> None:
        if token != self._token:
            return
        self._reset(self.run_label.text())
        self.status_label.setText(message)
        if error_type != "RunStateError":  # a run that has not finished is not an error worth a dialog
            self.error.emit(error_type, message, details)

    def _show_evaluation(self, token: int, result: dict[str, Any]) -> None:
        if token != self._token:
            return
        self.task, self.labels, self.evaluation = result["task"], result["labels"], result["evaluation"]
        self.samples, self._pending_cell = None, None
        ev = self.evaluation
        self._fill_metrics(ev)
        split = ev.get("split", "test")
        n = ev.get("num_samples", 0)
        if self.task == "causal-lm":
            self.body.setCurrentIndex(2)
            self.status_label.setText(
                f"Perplexity on the {split} split ({ev.get('tokens', 0):,} tokens). "
                "Lower is better. Try the model below."
            )
            return
        self.body.setCurrentIndex(1)
        self._show_task_views(ev)
        self.cell_list.clear()
        self.top_loss_list.clear()
        self.cell_title.setText("Click a cell of the confusion matrix to list its samples.")
        self.status_label.setText(f"{n} {split} samples. Scoring them one by one for the sample lists…")
        self.bridge.run_task(
            score_split,
            self.run_dir,
            on_result=partial(self._show_samples, token),
            on_error=partial(self._samples_failed, token),
        )

    def _show_task_views(self, ev: dict[str, Any]) -> None:
        classification = self.task in ("image-classification", "text-classification")
        regression = self.task in ("image-regression", "text-regression")
        rows = ev.get("per_class") or ev.get("per_label") or []
        self._fill_per_class(rows)
        self.tabs.setTabVisible(TAB_PER_CLASS, bool(rows))
        self.tabs.setTabVisible(TAB_CELL, classification)
        multilabel = self.task == "image-multilabel"
        self.tabs.setTabText(TAB_PER_CLASS, "Per label" if multilabel else "Per class")
        self.per_class.setHorizontalHeaderItem(0, QTableWidgetItem("Label" if multilabel else "Class"))
        if classification:
            self.matrix.set_matrix(ev.get("confusion_matrix", []), ev.get("labels", self.labels))
            self.left.setCurrentWidget(self.matrix)
        elif regression:
            self._show_scatter(ev.get("scatter", []))
        self.left.setVisible(classification or regression)
        self.tabs.setCurrentIndex(TAB_PER_CLASS if rows else TAB_TOP_LOSS)

    def _fill_metrics(self, ev: dict[str, Any]) -> None:
        while self.metrics_row.count():
            item = self.metrics_row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        names = [k for k in METRIC_ORDER if isinstance(ev.get(k), (int, float))]
        for name in names:
            self.metrics_row.addWidget(self._card(metric_title(name), f"{ev[name]:.4g}"))
        if names:
            self.metrics_row.addWidget(self._card("samples", f"{ev.get('num_samples', 0):,}"))
            self.metrics_row.addWidget(self._card("split", str(ev.get("split", "test"))))
        self.metrics_row.addStretch(1)
        self.metrics_box.setVisible(bool(names))

    def _card(self, title: str, value: str) -> QFrame:
        card = QFrame()
        card.setObjectName(f"metric-{title}")
        card.setFrameShape(QFrame.Shape.StyledPanel)
        card.setStyleSheet("QFrame { border: 1px solid palette(mid); border-radius: 6px; }QLabel { border: none; }")
        v = QVBoxLayout(card)
        v.setContentsMargins(10, 4, 10, 4)
        v.setSpacing(0)
        big = QLabel(value)
        big.setObjectName("value")
        big.setStyleSheet("font-size: 16pt; font-weight: 600;")
        small = QLabel(title)
        small.setStyleSheet("color: palette(dark);")
        v.addWidget(big)
        v.addWidget(small)
        return card

    def _fill_per_class(self, rows: list[dict[str, Any]]) -> None:
        self.per_class.setSortingEnabled(False)
        self.per_class.setRowCount(len(rows))
        for r, row in enumerate(rows):
            self.per_class.setItem(r, 0, QTableWidgetItem(str(row.get("label", r))))
            for c, key in enumerate(("precision", "recall", "f1"), start=1):
                self.per_class.setItem(r, c, _number_item(float(row.get(key, 0.0)), f"{row.get(key, 0.0):.3f}"))
            self.per_class.setItem(r, 4, _number_item(int(row.get("support", 0)), str(row.get("support", 0))))
        self.per_class.setSortingEnabled(True)

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
        if error_type not in ("RunStateError", "DataError"):
            self.error.emit(error_type, message, details)

    def _show_samples(self, token: int, samples) -> None:
        if token != self._token:
            return
        self.samples = samples
        worst = samples.top_loss(TOP_LOSS)
        self.top_loss_title.setText(f"The {len(worst)} {samples.split} samples with the highest loss, worst first.")
        self._fill_list(self.top_loss_list, worst)
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

    def show_cell(self, true_index: int, pred_index: int) -> None:
        """List the samples whose true class is row `true_index` and predicted class column `pred_index`."""
        self.tabs.setCurrentIndex(TAB_CELL)
        self.matrix.select(true_index, pred_index)
        names = self.matrix.labels
        what = f"true {names[true_index]}, predicted {names[pred_index]}"
        if self.samples is None:
            self._pending_cell = (true_index, pred_index)
            self.cell_title.setText(f"{what}: the samples are still being scored…")
            self.cell_list.clear()
            return
        self._pending_cell = None
        records = self.samples.in_cell(true_index, pred_index)
        shown = records[:MAX_LISTED]
        more = f" (first {MAX_LISTED} shown)" if len(records) > MAX_LISTED else ""
        self.cell_title.setText(f"{what}: {len(records)} sample(s){more}")
        self._fill_list(self.cell_list, shown)

    def _fill_list(self, widget: QListWidget, records: list) -> None:
        widget.clear()
        images = self.task is not None and self.task.startswith("image-")
        for r in records:
            item = QListWidgetItem(_describe(r, images))
            item.setToolTip(r.source)
            item.setData(Qt.ItemDataRole.UserRole, r.index)
            widget.addItem(item)
        fill = self._fills[widget.objectName()] = self._fills.get(widget.objectName(), 0) + 1
        if images and records:
            self.bridge.run_task(
                make_thumbnails, [r.source for r in records], THUMB, on_result=partial(self._set_icons, widget, fill)
            )

    def _set_icons(self, widget: QListWidget, fill: int, images: list[QImage]) -> None:
        if fill != self._fills.get(widget.objectName()) or widget.count() != len(images):
            return  # the list was refilled meanwhile
        for i, image in enumerate(images):
            if not image.isNull():
                widget.item(i).setIcon(QIcon(QPixmap.fromImage(image)))

    # ------------------------------------------------------------ generation

    def generate(self) -> None:
        if not self.run_dir or self.task != "causal-lm":
            return
        self._set_generating(True)
        self.output.setPlainText("Generating…")
        self.bridge.run_task(
            generate_text,
            self._slot,
            self.run_dir,
            self.prompt.toPlainText(),
            self.max_tokens.value(),
            self.temperature.value(),
            on_result=self._generated,
            on_error=self._generate_failed,
        )

    def _generated(self, text: str) -> None:
        self._set_generating(False)
        prompt = self.prompt.toPlainText()
        self.output.setPlainText(prompt + text if text.strip() else prompt + "\n[the model ended the text here]")

    def _generate_failed(self, error_type: str, message: str, details: str) -> None:
        self._set_generating(False)
        self.output.setPlainText("")
        self.error.emit(error_type, message, details)

    def _set_generating(self, busy: bool) -> None:
        for w in (self.generate_button, self.prompt, self.temperature, self.max_tokens, self.refresh_button):
            w.setEnabled(not busy)


class _NumberItem(QTableWidgetItem):
    """A table cell that shows formatted text and sorts by its number."""

    def __init__(self, value: float, text: str):
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other) -> bool:
        return self.value < other.value if isinstance(other, _NumberItem) else super().__lt__(other)


def _number_item(value: float, text: str) -> QTableWidgetItem:
    return _NumberItem(value, text)


def _describe(r, images: bool) -> str:
    """Two lines for a sample: what it is, and what the model made of it."""
    if images:
        name = "/".join(Path(r.source).parts[-2:])  # class folder / file
    else:
        name = "“" + (r.source if len(r.source) <= 160 else r.source[:159] + "…") + "”"
    if r.pred_value is not None:
        return f"{name}\ntrue {r.true} · predicted {r.predicted} · error {abs(r.pred_value - r.true_value):.3g}"
    confidence = r.scores.get(r.predicted)
    conf = f" ({confidence:.0%})" if confidence is not None else ""
    return f"{name}\ntrue {r.true or '–'} → predicted {r.predicted or '–'}{conf} · loss {r.loss:.3g}"
