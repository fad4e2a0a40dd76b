"""The Try it page: give the trained model a new image or text and see what it predicts, with probabilities.

The run's Predictor comes from the shared PredictorCache (state.predictors), loaded in a worker for
state.run_dir, so a model Evaluate loaded is not loaded again; a finished run's final weights replace it. The
predictor is only ever used inside bridge.run_task calls, one at a time: the inputs are disabled while a
prediction runs. A causal LM gets the generation panel and writes on from a prompt.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from finetune_gui.gui.dialogs import is_expected
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.panels.generation import GenerationPanel
from finetune_gui.gui.panels.image_input import IMAGE_SUFFIXES, ImageInput
from finetune_gui.gui.panels.prediction_result import PredictionResult

PREVIEW = 320
INPUT_NONE, INPUT_IMAGE, INPUT_TEXT, INPUT_PROMPT = range(4)


# ---------------------------------------------------------------- worker jobs (off the main thread)


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


# ---------------------------------------------------------------- the page


class TryItPage(Page):
    key = "try_it"
    title = "Try it"

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.predictor = None  # for its task and labels here; predictions go through state.predictors
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

        self.image_input = ImageInput()
        self.image_input.chosen.connect(self.predict_file)
        self.generation = GenerationPanel(self.bridge, self.state.predictors, "tryit")
        self.generation.busy_changed.connect(self._set_busy)
        self.generation.error.connect(self.error)
        self.inputs = QStackedWidget()
        self.inputs.setObjectName("tryit-input")
        hint = QLabel("Nothing to try yet: a finished run's model appears here.")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setStyleSheet("color: palette(dark);")
        self.inputs.addWidget(hint)
        self.inputs.addWidget(self.image_input)
        self.inputs.addWidget(self._build_text_input())
        self.inputs.addWidget(self.generation)

        self.result = PredictionResult()
        body = QHBoxLayout()
        body.addWidget(self.inputs, 1)
        body.addWidget(self.result, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(self.run_label)
        layout.addWidget(self.status_label)
        layout.addSpacing(6)
        layout.addLayout(body, 1)

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

    # ------------------------------------------------------------ the model

    def _on_run_changed(self, path: str) -> None:
        self._stale = True
        if self.isVisible():
            self.load()

    def _on_run_finished(self, event) -> None:
        if self.state.run_dir is not None and Path(event.run_dir) == Path(self.state.run_dir):
            self.state.predictors.forget(event.run_dir)  # its final weights replace the checkpoint loaded before
            self._on_run_changed(event.run_dir)

    def on_shown(self) -> None:
        if self._stale:
            self.load()

    def load(self) -> None:
        """Get the predictor of state.run_dir from the shared cache, in a worker (it loads there if need be)."""
        self._stale = False
        self._token += 1
        self.predictor = None
        self.generation.set_run(None)
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
            self.state.predictors.get,
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
            self.generation.set_run(self._run)
            what = "Type a prompt and press Generate."
        else:
            self.inputs.setCurrentIndex(INPUT_TEXT)
            what = "Type a text and press Predict."
        self.result.setVisible(task != "causal-lm")
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
        if not is_expected(error_type):  # said above; only a fault of the app gets the dialog
            self.error.emit(error_type, message, details)

    # ------------------------------------------------------------ predicting

    def predict_file(self, path: str) -> bool:
        """Predict an image file; while the model loads or another prediction runs, it waits its turn.
        False when there is no image model to predict with."""
        if self._busy and self._run is not None:
            self._pending_image = str(path)
            self.result.note.setText(f"{Path(path).name} is next: predicted as soon as the model is ready.")
            return True
        if self.predictor is None or self.inputs.currentIndex() != INPUT_IMAGE:
            return False
        self._clear_result()  # the last image's picture and prediction never stand under the new file's name
        self.image_input.set_path(str(path))
        self.image_input.drop_area.setText(f"Reading {Path(path).name}…")
        self._run_prediction(predict_image, str(path))
        return True

    def predict_typed_text(self) -> None:
        text = self.text_edit.toPlainText().strip()
        if self._busy or self.predictor is None or not text:
            return
        self._run_prediction(predict_text, text)

    def _run_prediction(self, job, *args) -> None:
        self._set_busy(True)
        self.result.note.setText("Predicting…")
        self.bridge.run_task(
            self.state.predictors.use,
            self._run,
            job,
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
            self.image_input.drop_area.setPixmap(QPixmap.fromImage(preview))
        self.show_prediction(prediction)
        self._predict_pending()

    def show_prediction(self, prediction) -> None:
        self.last_prediction = prediction
        self.result.show_prediction(prediction, self.predictor.task.value if self.predictor is not None else "")

    def _failed(self, token: int, error_type: str, message: str, details: str) -> None:
        if token != self._token:
            return
        self._set_busy(False)
        if error_type in ("RunStateError", "DataError"):  # the input cannot be used: said here, where it was given
            self.result.show_problem(message)
            if self.inputs.currentIndex() == INPUT_IMAGE:
                self.image_input.drop_area.setText("This file cannot be shown.\nChoose or drop another image.")
        else:
            self.result.note.setText("")
            self.error.emit(error_type, message, details)
        self._predict_pending()

    def _clear_result(self) -> None:
        self.last_prediction = None
        self.result.clear()
        self.image_input.clear()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for w in (self.image_input.choose_button, self.text_edit, self.predict_button):
            w.setEnabled(not busy)
        self.generation.set_inputs_enabled(not busy)

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
