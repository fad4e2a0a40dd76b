"""The Try it page: give the trained model a new image or text and see what it predicts, with probabilities.

The run's Predictor (core.inference) is loaded in a worker for state.run_dir and reloaded when the run changes
or finishes. It is only ever used inside bridge.run_task calls, one at a time: the inputs are disabled while a
prediction runs. A causal LM gets a prompt box and writes on from it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage, QKeySequence, QPainter, QPalette, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.widgets.generation_knobs import max_tokens_box, temperature_box

#: A cheap check of a dropped file's name; the predictor itself reads the image with Pillow.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
PREVIEW = 320
MAX_BARS = 10
INPUT_NONE, INPUT_IMAGE, INPUT_TEXT, INPUT_PROMPT = range(4)


# ---------------------------------------------------------------- worker jobs (off the main thread)


def load_run_predictor(run_dir: str):
    from finetune_gui.core.inference import load_predictor

    return load_predictor(run_dir)


def predict_image(predictor, path: str) -> tuple[Any, QImage]:
    """The prediction for one image file and a preview of it (a QImage is safe to make off the GUI thread)."""
    [prediction] = predictor.predict_images([path])
    preview = QImage(path)
    if not preview.isNull():
        preview = preview.scaled(
            PREVIEW, PREVIEW, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    return prediction, preview


def predict_text(predictor, text: str):
    return predictor.predict_texts([text])[0]


def generate(predictor, prompt: str, max_new_tokens: int, temperature: float) -> str:
    return predictor.generate(prompt, max_new_tokens, temperature)


# ---------------------------------------------------------------- widgets


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


class DropArea(QLabel):
    """Shows the image being predicted, or an invitation to drop one (the page handles the drop)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tryit-drop")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setMinimumSize(280, 280)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet(
            "QLabel#tryit-drop { border: 2px dashed palette(mid); border-radius: 8px; color: palette(dark); }"
        )
        self.invite()

    def invite(self) -> None:
        self.clear()
        self.setText("Drop an image here\nor use “Choose image…”")


# ---------------------------------------------------------------- the page


class TryItPage(Page):
    key = "try_it"
    title = "Try it"

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.predictor = None  # used only inside run_task calls
        self.last_prediction = None
        self._run: str | None = None  # the run whose predictor is loaded or loading
        self._stale = True
        self._busy = False
        self._pending_image: str | None = None  # dropped while the model loaded or another prediction ran
        self._token = 0
        self.setAcceptDrops(True)
        self._build()
        state.run_changed.connect(self._on_run_changed)
        bridge.run_finished.connect(self._on_run_finished)
        self._set_busy(False)

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        self.run_label = QLabel("No model yet")
        self.run_label.setObjectName("tryit-run")
        self.run_label.setStyleSheet("font-weight: 600;")
        self.status_label = QLabel("Train a model or open a run folder (File → Open run folder) to try it here.")
        self.status_label.setObjectName("tryit-status")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: palette(dark);")

        self.inputs = QStackedWidget()
        self.inputs.setObjectName("tryit-input")
        hint = QLabel("Nothing to try yet: a finished run's model appears here.")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setStyleSheet("color: palette(dark);")
        self.inputs.addWidget(hint)
        self.inputs.addWidget(self._build_image_input())
        self.inputs.addWidget(self._build_text_input())
        self.inputs.addWidget(self._build_prompt_input())

        self.result_label = QLabel("")
        self.result_label.setObjectName("tryit-label")
        self.result_label.setStyleSheet("font-size: 20pt; font-weight: 600;")
        self.result_label.setWordWrap(True)
        self.result_note = QLabel("")
        self.result_note.setObjectName("tryit-note")
        self.result_note.setStyleSheet("color: palette(dark);")
        self.result_note.setWordWrap(True)
        self.bars = ScoreBars()
        self.results = QWidget()
        v = QVBoxLayout(self.results)
        v.setContentsMargins(12, 0, 0, 0)
        v.addWidget(QLabel("Prediction"))
        v.addWidget(self.result_label)
        v.addWidget(self.result_note)
        v.addSpacing(8)
        v.addWidget(self.bars)
        v.addStretch(1)

        body = QHBoxLayout()
        body.addWidget(self.inputs, 1)
        body.addWidget(self.results, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(self.run_label)
        layout.addWidget(self.status_label)
        layout.addSpacing(6)
        layout.addLayout(body, 1)

    def _build_image_input(self) -> QWidget:
        page = QWidget()
        self.drop_area = DropArea()
        self.choose_button = QPushButton("Choose image…")
        self.choose_button.setObjectName("tryit-choose")
        self.choose_button.clicked.connect(self.choose_image)
        self.image_path_label = QLabel("")
        self.image_path_label.setObjectName("tryit-image-path")
        self.image_path_label.setStyleSheet("color: palette(dark);")
        row = QHBoxLayout()
        row.addWidget(self.choose_button)
        row.addWidget(self.image_path_label, 1)
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.drop_area, 1)
        v.addLayout(row)
        return page

    def _build_text_input(self) -> QWidget:
        page = QWidget()
        self.text_edit = QPlainTextEdit()
        self.text_edit.setObjectName("tryit-text")
        self.text_edit.setPlaceholderText("Type or paste a text to classify…")
        self.predict_button = QPushButton("Predict")
        self.predict_button.setObjectName("tryit-predict")
        self.predict_button.setToolTip("Predict (Ctrl+Enter)")
        self.predict_button.clicked.connect(self.predict_typed_text)
        QShortcut(QKeySequence("Ctrl+Return"), self.text_edit, activated=self.predict_typed_text)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.predict_button)
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(QLabel("Text"))
        v.addWidget(self.text_edit, 1)
        v.addLayout(row)
        return page

    def _build_prompt_input(self) -> QWidget:
        page = QWidget()
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setObjectName("tryit-prompt")
        self.prompt_edit.setPlaceholderText("Type the start of a text; the model writes on from there.")
        self.prompt_edit.setMaximumHeight(120)
        self.temperature = temperature_box("tryit-temperature")
        self.max_tokens = max_tokens_box("tryit-max-tokens")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("tryit-generate")
        self.generate_button.clicked.connect(self.generate_text)
        self.generated = QPlainTextEdit()
        self.generated.setObjectName("tryit-output")
        self.generated.setReadOnly(True)
        self.generated.setPlaceholderText("The generated text appears here.")
        knobs = QHBoxLayout()
        knobs.addWidget(QLabel("Temperature"))
        knobs.addWidget(self.temperature)
        knobs.addSpacing(16)
        knobs.addWidget(QLabel("Max new tokens"))
        knobs.addWidget(self.max_tokens)
        knobs.addStretch(1)
        knobs.addWidget(self.generate_button)
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(QLabel("Prompt"))
        v.addWidget(self.prompt_edit)
        v.addLayout(knobs)
        v.addWidget(QLabel("Generated text"))
        v.addWidget(self.generated, 1)
        return page

    # ------------------------------------------------------------ the model

    def _on_run_changed(self, path: str) -> None:
        self._stale = True
        if self.isVisible():
            self.load()

    def _on_run_finished(self, event) -> None:
        if self.state.run_dir is not None and Path(event.run_dir) == Path(self.state.run_dir):
            self._on_run_changed(event.run_dir)  # its final weights replace the checkpoint that was loaded

    def on_shown(self) -> None:
        if self._stale:
            self.load()

    def load(self) -> None:
        """Load the predictor of state.run_dir in a worker."""
        self._stale = False
        self._token += 1
        self.predictor = None
        self._clear_result()
        run = self.state.run_dir
        if run is None:
            self._run = None
            self.run_label.setText("No model yet")
            self.status_label.setText("Train a model or open a run folder (File → Open run folder) to try it here.")
            self.inputs.setCurrentIndex(INPUT_NONE)
            return
        self._run = str(run)
        self.run_label.setText(f"Model of run {Path(run).name}")
        self.run_label.setToolTip(str(run))
        self.status_label.setText("Loading the trained model…")
        self._set_busy(True)
        self.bridge.run_task(
            load_run_predictor,
            self._run,
            on_result=partial(self._loaded, self._token),
            on_error=partial(self._load_failed, self._token),
        )

    def _loaded(self, token: int, predictor) -> None:
        if token != self._token:
            return
        self.predictor = predictor
        task = predictor.task.value
        if task.startswith("image-"):
            self.inputs.setCurrentIndex(INPUT_IMAGE)
            what = "Drop an image on this page, or choose one."
        elif task == "causal-lm":
            self.inputs.setCurrentIndex(INPUT_PROMPT)
            what = "Type a prompt and press Generate."
        else:
            self.inputs.setCurrentIndex(INPUT_TEXT)
            what = "Type a text and press Predict."
        self.results.setVisible(task != "causal-lm")
        self.status_label.setText(
            f"{task} model with the weights in {predictor.weights_source}, on {predictor.device}. {what}"
        )
        self._set_busy(False)
        self._predict_pending()

    def _predict_pending(self) -> None:
        path, self._pending_image = self._pending_image, None
        if path:
            self.predict_file(path)

    def _load_failed(self, token: int, error_type: str, message: str, details: str) -> None:
        if token != self._token:
            return
        self._set_busy(False)
        self._pending_image = None
        self.inputs.setCurrentIndex(INPUT_NONE)
        self.status_label.setText(f"No model to try: {message}")
        if error_type != "RunStateError":  # an unfinished run has no weights yet: said above, no dialog
            self.error.emit(error_type, message, details)

    # ------------------------------------------------------------ predicting

    def choose_image(self) -> None:
        start = str(Path(self.image_path_label.toolTip()).parent) if self.image_path_label.toolTip() else ""
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose an image", start, "Images (" + " ".join("*" + s for s in IMAGE_SUFFIXES) + ")"
        )
        if path:
            self.predict_file(path)

    def predict_file(self, path: str) -> bool:
        """Predict an image file; while the model loads or another prediction runs, it waits its turn.
        False when there is no image model to predict with."""
        if self._busy and self._run is not None:
            self._pending_image = str(path)
            self.result_note.setText(f"{Path(path).name} is next: predicted as soon as the model is ready.")
            return True
        if self.predictor is None or self.inputs.currentIndex() != INPUT_IMAGE:
            return False
        self.image_path_label.setText(Path(path).name)
        self.image_path_label.setToolTip(str(path))
        self._run_prediction(predict_image, str(path))
        return True

    def predict_typed_text(self) -> None:
        text = self.text_edit.toPlainText().strip()
        if self._busy or self.predictor is None or not text:
            return
        self._run_prediction(predict_text, text)

    def _run_prediction(self, job, *args) -> None:
        self._set_busy(True)
        self.result_note.setText("Predicting…")
        self.bridge.run_task(
            job,
            self.predictor,
            *args,
            on_result=partial(self._predicted, self._token),
            on_error=partial(self._failed, self._token),
        )

    def _predicted(self, token: int, result) -> None:
        if token != self._token:
            return
        self._set_busy(False)
        prediction, preview = result if isinstance(result, tuple) else (result, None)
        if preview is not None and not preview.isNull():
            self.drop_area.setPixmap(QPixmap.fromImage(preview))
        self.show_prediction(prediction)
        self._predict_pending()

    def show_prediction(self, prediction) -> None:
        self.last_prediction = prediction
        task = self.predictor.task.value if self.predictor is not None else ""
        if prediction.value is not None:
            self.result_label.setText(prediction.label)
            self.result_note.setText("predicted value")
            self.bars.set_scores({})
        elif task == "image-multilabel":
            self.result_label.setText(prediction.label or "no label")
            self.result_note.setText("labels at 50% or more (the line marks 50%)")
            self.bars.set_scores(prediction.scores, threshold=0.5)
        else:
            best = prediction.scores.get(prediction.label, 0.0)
            self.result_label.setText(prediction.label)
            self.result_note.setText(f"{best:.1%} sure; every class's probability:")
            self.bars.set_scores(prediction.scores)

    def generate_text(self) -> None:
        if self._busy or self.predictor is None:
            return
        self._set_busy(True)
        self.generated.setPlainText("Generating…")
        prompt = self.prompt_edit.toPlainText()
        self.bridge.run_task(
            generate,
            self.predictor,
            prompt,
            self.max_tokens.value(),
            self.temperature.value(),
            on_result=partial(self._generated, self._token, prompt),
            on_error=partial(self._failed, self._token),
        )

    def _generated(self, token: int, prompt: str, text: str) -> None:
        if token != self._token:
            return
        self._set_busy(False)
        self.generated.setPlainText(prompt + text if text.strip() else prompt + "\n[the model ended the text here]")

    def _failed(self, token: int, error_type: str, message: str, details: str) -> None:
        if token != self._token:
            return
        self._set_busy(False)
        self.result_note.setText("")
        if self.generated.toPlainText() == "Generating…":
            self.generated.setPlainText("")
        self.error.emit(error_type, message, details)

    def _clear_result(self) -> None:
        self.last_prediction = None
        self.result_label.setText("")
        self.result_note.setText("")
        self.bars.set_scores({})
        self.drop_area.invite()
        self.image_path_label.setText("")

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for w in (
            self.choose_button,
            self.text_edit,
            self.predict_button,
            self.prompt_edit,
            self.temperature,
            self.max_tokens,
            self.generate_button,
        ):
            w.setEnabled(not busy)

    # ------------------------------------------------------------ drag and drop

    @staticmethod
    def _dropped_image(event) -> str | None:
        mime = event.mimeData()
        urls = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        return next((u for u in urls if Path(u).suffix.lower() in IMAGE_SUFFIXES), None)

    def dragEnterEvent(self, event) -> None:
        if self.inputs.currentIndex() == INPUT_IMAGE and not self._busy and self._dropped_image(event):
            event.acceptProposedAction()
        else:
            event.ignore()  # the main window takes folders, configs and data files

    def dropEvent(self, event) -> None:
        path = self._dropped_image(event)
        if path and self.predict_file(path):
            event.acceptProposedAction()
        else:
            event.ignore()
