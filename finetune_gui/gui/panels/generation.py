"""The text-generation panel of a causal LM run (Evaluate and Try it show the same one): a prompt, temperature,
max new tokens, Generate, and the text the model wrote on from the prompt."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)


def generate_text(predictor, prompt: str, max_new_tokens: int, temperature: float) -> str:
    """Worker job: what the model writes after `prompt`."""
    return predictor.generate(prompt, max_new_tokens, temperature)


class GenerationPanel(QWidget):
    """Generates with the model of `set_run`'s run, in a worker, through the shared PredictorCache.

    Object names start with `name` ("evaluate", "tryit"). While it generates its inputs are disabled and
    `busy_changed` tells the page, which may disable its own inputs too.
    """

    busy_changed = Signal(bool)
    error = Signal(str, str, str)  # error type, message, details

    def __init__(self, bridge, predictors, name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge, self.predictors = bridge, predictors
        self.run_dir: str | None = None
        self.busy = False
        self._token = 0  # a generation for an earlier run is dropped
        self.prompt = QPlainTextEdit()
        self.prompt.setObjectName(f"{name}-prompt")
        self.prompt.setPlaceholderText("Type the start of a text; the model writes on from there.")
        self.prompt.setMaximumHeight(120)
        self.temperature = QDoubleSpinBox()
        self.temperature.setObjectName(f"{name}-temperature")
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.8)
        self.temperature.setToolTip("0 always picks the likeliest next token; higher values write more freely")
        self.max_tokens = QSpinBox()
        self.max_tokens.setObjectName(f"{name}-max-tokens")
        self.max_tokens.setRange(1, 2048)
        self.max_tokens.setValue(60)
        self.max_tokens.setToolTip("How many tokens (word pieces) to write at most")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName(f"{name}-generate")
        self.generate_button.clicked.connect(self.generate)
        self.output = QPlainTextEdit()
        self.output.setObjectName(f"{name}-output")
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("The generated text appears here.")
        knobs = QHBoxLayout()
        knobs.addWidget(QLabel("Temperature"))
        knobs.addWidget(self.temperature)
        knobs.addSpacing(16)
        knobs.addWidget(QLabel("Max new tokens"))
        knobs.addWidget(self.max_tokens)
        knobs.addStretch(1)
        knobs.addWidget(self.generate_button)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(QLabel("Prompt"))
        v.addWidget(self.prompt)
        v.addLayout(knobs)
        v.addWidget(QLabel("Generated text"))
        v.addWidget(self.output, 1)

    def set_run(self, run_dir: str | None) -> None:
        """The run whose model writes; None: nothing to generate with. A generation still going is dropped."""
        self._token += 1
        self.run_dir = str(run_dir) if run_dir else None
        if self.busy:
            self._set_busy(False)

    def set_inputs_enabled(self, enabled: bool) -> None:
        for w in (self.prompt, self.temperature, self.max_tokens, self.generate_button):
            w.setEnabled(enabled)

    def generate(self) -> None:
        if self.busy or not self.run_dir:
            return
        prompt = self.prompt.toPlainText()
        self._set_busy(True)
        self.output.setPlainText("Generating…")
        self.bridge.run_task(
            self.predictors.use,
            self.run_dir,
            generate_text,
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
        self.output.setPlainText(prompt + text if text.strip() else prompt + "\n[the model ended the text here]")

    def _failed(self, token: int, error_type: str, message: str, details: str) -> None:
        if token != self._token:
            return
        self._set_busy(False)
        self.output.setPlainText("")
        self.error.emit(error_type, message, details)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.set_inputs_enabled(not busy)
        self.busy_changed.emit(busy)
