"""The whole flow through the main window, by widget, as a person would click it: choose data, pick a model,
set freezing in the layer tree, change knobs, train, watch the plots, read the evaluation and try the model;
for an image task, a text task and a causal LM, on tiny local models. Also: stop mid-run, a worker error
shown as a dialog, and the GUI's config matching the preset and the CLI command it offers."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QMessageBox, QSpinBox, QWidget

from finetune_gui.config import load_config
from finetune_gui.presets import builtin_presets_dir
from tests.conftest import make_image_folder, make_reviews_csv
from tests.factories import tiny_bert_dir, tiny_gpt2_dir, tiny_text_corpus
from tests.gui.driving import go, set_field, type_data_path, wait_model_tree

RUN_TIMEOUT_MS = 240_000


# ---------------------------------------------------------------- driving widgets


def train_and_wait(qtbot, window):
    """Press Start on the Train page and wait for the run to end; returns its RunFinished event."""
    page = go(qtbot, window, "monitor")
    finished, failed = [], []
    window.bridge.run_finished.connect(finished.append)
    window.bridge.run_failed.connect(failed.append)
    qtbot.mouseClick(page.findChild(QWidget, "monitor-start"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(finished or failed), timeout=RUN_TIMEOUT_MS)
    assert not failed, f"the run failed: {failed[0].message}\n{failed[0].details}"
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=30_000)
    return finished[0]


def wait_evaluate_filled(qtbot, window):
    page = window.pages["evaluate"]
    qtbot.waitUntil(lambda: page.run_dir is not None and not window.bridge.busy, timeout=120_000)
    qtbot.waitUntil(
        lambda: (
            page.findChild(QWidget, "evaluate-status").text() == ""
            or "reading" not in page.findChild(QWidget, "evaluate-status").text().lower()
        ),
        timeout=60_000,
    )
    return page


# ---------------------------------------------------------------- flows


def test_image_classification_by_mouse_from_folder_to_prediction(qtbot, window, tmp_path):
    data = make_image_folder(tmp_path / "shapes", per_class=10, size=32)
    window.show()
    window.state.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))

    data_page = type_data_path(qtbot, window, data)
    assert window.state.config.task.kind.value == "image-classification"
    assert data_page.findChild(QWidget, "classTable").rowCount() == 3

    model_page = go(qtbot, window, "model")
    set_field(qtbot, window, "model.pretrained", False)  # nothing can download here
    wait_model_tree(qtbot, model_page)
    model_page.findChild(QWidget, "headOnly").click()
    model_page.freezing.layer_tree.set_checked("layer4", True)  # the last block trains as well as the head
    model = window.state.config.model
    assert model.freeze == "modules" and "layer4" not in model.frozen_modules and "layer1" in model.frozen_modules
    trainable, total = model_page.trainable_count()
    assert 0 < trainable < total

    set_field(qtbot, window, "data.image_size", 32)
    go(qtbot, window, "setup")
    set_field(qtbot, window, "train.epochs", 2)
    set_field(qtbot, window, "train.batch_size", 8)
    set_field(qtbot, window, "train.log_every", 1)
    set_field(qtbot, window, "train.schedule", "constant")

    finished = train_and_wait(qtbot, window)
    assert finished.status == "completed"
    run_dir = Path(finished.run_dir)
    assert load_config(run_dir / "config.toml").model.frozen_modules == model.frozen_modules

    monitor = window.pages["monitor"]
    assert len(monitor.plots["loss"].series["train"]) > 0
    assert len(monitor.plots["lr"].series["lr"]) > 0
    assert monitor.findChild(QWidget, "monitor-progress").value() == 1000

    evaluate = wait_evaluate_filled(qtbot, window)
    go(qtbot, window, "evaluate")
    assert Path(evaluate.run_dir) == run_dir
    per_class = evaluate.findChild(QWidget, "evaluate-per-class")
    assert per_class.rowCount() == 3
    accuracy = evaluate.findChild(QWidget, "metric-accuracy")
    assert accuracy is not None and accuracy.isVisible()

    try_it = go(qtbot, window, "try_it")
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=60_000)
    image = next((data / "circle").iterdir())
    try_it.predict_file(str(image))
    qtbot.waitUntil(lambda: try_it.findChild(QWidget, "tryit-label").text() != "", timeout=60_000)
    assert try_it.findChild(QWidget, "tryit-label").text().split()[0] in {"circle", "square", "stripes"}


def test_text_classification_with_a_local_bert_folder(qtbot, window, tmp_path):
    csv = make_reviews_csv(tmp_path / "reviews.csv", n=40)
    bert = tiny_bert_dir(tmp_path / "bert")
    window.show()
    window.state.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))

    type_data_path(qtbot, window, csv)
    assert window.state.config.task.kind.value == "text-classification"
    assert window.state.config.data.text_column == "text"
    set_field(qtbot, window, "data.max_length", 16)

    model_page = go(qtbot, window, "model")
    model_page.catalog.open_local(str(bert))
    wait_model_tree(qtbot, model_page)
    model_page.findChild(QWidget, "unfreezeAll").click()
    assert window.state.config.model.freeze == "none"

    go(qtbot, window, "setup")
    set_field(qtbot, window, "train.epochs", 1)
    set_field(qtbot, window, "train.batch_size", 8)
    set_field(qtbot, window, "train.lr", 1e-3)

    finished = train_and_wait(qtbot, window)
    assert finished.status == "completed"
    evaluate = wait_evaluate_filled(qtbot, window)
    assert evaluate.findChild(QWidget, "evaluate-per-class").rowCount() == 2

    try_it = go(qtbot, window, "try_it")
    qtbot.waitUntil(lambda: not window.bridge.busy, timeout=60_000)
    text = try_it.findChild(QWidget, "tryit-text")
    text.setPlainText("a wonderful, warm film")
    qtbot.mouseClick(try_it.findChild(QWidget, "tryit-predict"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: try_it.findChild(QWidget, "tryit-label").text() != "", timeout=60_000)
    assert try_it.findChild(QWidget, "tryit-label").text().split()[0] in {"positive", "negative"}


def test_causal_lm_trains_and_generates(qtbot, window, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n%\n".join(tiny_text_corpus() * 3) + "\n", encoding="utf-8")
    gpt2 = tiny_gpt2_dir(tmp_path / "gpt2")
    window.show()
    window.state.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))

    type_data_path(qtbot, window, corpus)
    data_page = window.pages["data"]
    kind = data_page.findChild(QComboBox, "taskKind")
    kind.setCurrentIndex(kind.findData("causal-lm"))
    assert window.state.config.task.kind.value == "causal-lm"
    set_field(qtbot, window, "data.max_length", 16)
    set_field(qtbot, window, "data.val_fraction", 0.2)

    model_page = go(qtbot, window, "model")
    model_page.catalog.open_local(str(gpt2))
    wait_model_tree(qtbot, model_page)

    go(qtbot, window, "setup")
    set_field(qtbot, window, "train.epochs", 1)
    set_field(qtbot, window, "train.batch_size", 4)

    finished = train_and_wait(qtbot, window)
    assert finished.status == "completed"
    evaluate = wait_evaluate_filled(qtbot, window)
    go(qtbot, window, "evaluate")
    assert evaluate.findChild(QWidget, "metric-perplexity") is not None
    evaluate.findChild(QWidget, "evaluate-prompt").setPlainText("the film")
    evaluate.findChild(QSpinBox, "evaluate-max-tokens").setValue(5)
    qtbot.mouseClick(evaluate.findChild(QWidget, "evaluate-generate"), Qt.MouseButton.LeftButton)
    output = evaluate.findChild(QWidget, "evaluate-output")
    qtbot.waitUntil(lambda: output.toPlainText().strip() not in ("", "Generating…"), timeout=60_000)
    assert output.toPlainText().startswith("the film")


# ---------------------------------------------------------------- interruptions and errors


@pytest.fixture
def slow_image_setup(long_image_run):
    """An image run long enough to stop in the middle, reporting every step."""
    long_image_run.state.set_value("train", "log_every", 1)
    return long_image_run


def test_stop_mid_run_ends_within_a_step_with_a_checkpoint_that_resumes(qtbot, slow_image_setup):
    import json

    from finetune_gui.core.checkpoints import latest_usable_checkpoint
    from finetune_gui.core.runs import RunDir

    window = slow_image_setup
    window.show()
    monitor = go(qtbot, window, "monitor")
    steps = []
    window.bridge.step.connect(lambda e: steps.append(e.step))
    with qtbot.waitSignal(window.bridge.step, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(monitor.findChild(QWidget, "monitor-start"), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(
        window.bridge.training_changed, timeout=60_000, check_params_cb=lambda training: not training
    ):
        qtbot.mouseClick(monitor.findChild(QWidget, "monitor-stop"), Qt.MouseButton.LeftButton)
        seen = max(steps)
    run_dir = window.state.run_dir
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "stopped"
    assert status["step"] <= seen + 2  # the step under way, and at most one the throttle had not shown yet
    assert "stopped" in monitor.findChild(QWidget, "monitor-status").text().lower()
    checkpoint, *_ = latest_usable_checkpoint(RunDir(run_dir))
    assert checkpoint.step == status["step"]

    resume = monitor.findChild(QWidget, "monitor-resume-run")
    assert resume.isEnabled()
    with qtbot.waitSignal(window.bridge.run_started, timeout=RUN_TIMEOUT_MS) as started:
        qtbot.mouseClick(resume, Qt.MouseButton.LeftButton)
    assert started.args[0].resumed_from_step == status["step"]
    window.bridge.stop()
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=60_000)


def test_a_failing_run_is_said_on_the_train_page_without_a_dialog_and_the_window_stays_usable(qtbot, window, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    window.show()
    window.state.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))
    window.state.set_value("data", "path", str(empty))
    window.state.set_value("model", "pretrained", False)
    with qtbot.waitSignal(window.bridge.run_failed, timeout=RUN_TIMEOUT_MS):
        window.start_training()
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=30_000)
    status = window.pages["monitor"].status_label.text()
    assert "Run failed" in status and str(empty) in status
    assert window.statusBar().currentMessage().startswith("The run failed")
    assert not (window.findChild(QMessageBox, "errorDialog") or QWidget()).isVisible()  # said once, not twice
    assert window.train_action.isEnabled()  # ready for the next try


def test_a_fault_of_the_app_during_a_run_gets_the_error_dialog_with_its_details(qtbot, window):
    from finetune_gui.core.training.events import RunFailed

    window.show()
    window.bridge.run_failed.emit(RunFailed("", "ZeroDivisionError", "division by zero", "Traceback …"))
    dialog = window.findChild(QMessageBox, "errorDialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.windowTitle() == "Something went wrong" and dialog.detailedText() == "Traceback …"


# ---------------------------------------------------------------- one config for GUI, presets and CLI


def test_the_gui_config_equals_the_preset_and_the_copied_command_rebuilds_it(qtbot, window, tmp_path):
    preset = builtin_presets_dir() / "resnet18-quick-head.toml"
    window.show()
    start = window.pages["start"]
    card = start.findChild(QWidget, "presetCard-resnet18-quick-head")
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert window.state.config == load_config(preset)

    go(qtbot, window, "setup")
    set_field(qtbot, window, "train.epochs", 7)
    set_field(qtbot, window, "train.optimizer", "sgd")
    set_field(qtbot, window, "train.nesterov", True)
    go(qtbot, window, "augment")
    set_field(qtbot, window, "augment.rotation", 12.5)

    argv = shlex.split(window.cli_command())
    assert argv[:3] == ["finetune-gui", "train", str(preset)]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert load_config(preset, sets) == window.state.config
    assert argv[-2:] == ["--output", str(window.state.runs_folder)]  # the run lands where the app keeps runs
