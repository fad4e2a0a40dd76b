"""What a new user hit, driving the main window with the mouse (issue 13). Each test failed on the app before
its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSettings, Qt
from PySide6.QtWidgets import QDoubleSpinBox, QFileDialog, QLabel, QMessageBox, QPushButton

from tests.conftest import make_image_folder, make_reviews_csv
from tests.factories import image_sections, train_run
from tests.gui.driving import go, set_field, show_active, type_data_path, wait_model_tree

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first-use-image")
    make_image_folder(root / "images")
    return train_run(root, image_sections())


def choose_file(qtbot, monkeypatch, button, path: Path) -> None:
    """Click a "Choose…" button and pick `path` in the file dialog it opens."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_try_it_never_shows_the_last_prediction_under_a_file_that_cannot_be_read(
    qtbot, window, image_run, tmp_path, monkeypatch
):
    window.show()
    window.state.set_run_dir(image_run)  # what File → Open run folder does
    page = go(qtbot, window, "try_it")
    qtbot.waitUntil(lambda: page.predictor is not None and not page._busy, timeout=60_000)
    good = next((image_run.parents[1] / "images" / "circle").glob("*.png"))
    choose_file(qtbot, monkeypatch, page.image_input.choose_button, good)
    qtbot.waitUntil(lambda: page.last_prediction is not None and not page._busy, timeout=60_000)
    assert not page.image_input.drop_area.pixmap().isNull()  # the picture is shown

    broken = tmp_path / "holiday.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 20)
    choose_file(qtbot, monkeypatch, page.image_input.choose_button, broken)
    qtbot.waitUntil(lambda: not page._busy, timeout=60_000)

    assert page.image_input.path_label.text() == "holiday.png"
    assert page.image_input.drop_area.pixmap().isNull(), "the last image still stands under the new name"
    assert page.last_prediction is None
    assert page.result.label.text() == "No prediction"
    assert "holiday.png" in page.result.note.text() and "not a readable image" in page.result.note.text()
    assert page.result.bars.scores == []
    assert window.findChild(QMessageBox, "errorDialog") is None  # said once, inline; no dialog on top


def test_pause_reads_continue_and_the_status_bar_says_paused(qtbot, long_image_run):
    window = long_image_run
    window.show()
    page = go(qtbot, window, "monitor")
    with qtbot.waitSignal(window.bridge.step, timeout=240_000):
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    try:
        with qtbot.waitSignal(window.bridge.paused_changed, timeout=10_000):
            qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
        # "Resume" would read like "Resume run", the button beside it that continues a stopped run
        assert page.pause_button.text() == "Continue"
        assert window.statusBar().currentMessage().startswith("Paused")
        assert "Continue" in page.status_label.text()
        with qtbot.waitSignal(window.bridge.paused_changed, timeout=10_000):
            qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
        assert page.pause_button.text() == "Pause"
        assert window.statusBar().currentMessage() == "Training…"
    finally:
        window.bridge.stop()
        qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=60_000)


def test_a_new_run_that_fails_at_once_shows_nothing_of_the_run_before(qtbot, window, tmp_path):
    images = make_image_folder(tmp_path / "shapes")
    s = window.state
    s.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))
    s.set_value("data", "path", str(images))
    s.set_value("data", "image_size", 32)
    s.set_value("model", "pretrained", False)
    s.set_value("train", "epochs", 1)
    window.show()
    page = go(qtbot, window, "monitor")
    with qtbot.waitSignal(window.bridge.run_finished, timeout=240_000):
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=60_000)
    first_run = page.run_label.toolTip()
    assert first_run and page.progress.value() == 1000
    assert len(page.plot_area.plots["loss"].series["train"]) > 0

    empty = tmp_path / "empty"
    empty.mkdir()
    s.set_value("data", "path", str(empty))  # the next try: a folder with nothing in it
    with qtbot.waitSignal(window.bridge.run_failed, timeout=240_000):
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=60_000)
    assert page.progress.value() == 0
    assert first_run not in page.run_label.text() and "failed" in page.run_label.text()
    assert len(page.plot_area.plots["loss"].series["train"]) == 0
    assert page.status_label.text().startswith("Run failed (DataError)")


def test_a_learning_rate_out_of_range_is_not_changed_silently(qtbot, window):
    show_active(qtbot, window)
    go(qtbot, window, "setup")
    lr = window.findChild(QDoubleSpinBox, "train.lr")
    qtbot.mouseClick(lr.lineEdit(), Qt.MouseButton.LeftButton)
    lr.lineEdit().selectAll()
    qtbot.keyClicks(lr.lineEdit(), "1000")
    qtbot.keyClick(lr.lineEdit(), Qt.Key.Key_Tab)  # leave the field, as a person does
    form = lr.parentWidget()
    while not hasattr(form, "errors"):
        form = form.parentWidget()
    message = form.errors["lr"]
    assert message.isVisible(), "the value was changed without a word"
    assert "1000" in message.text() and "largest" in message.text() and "10" in message.text()
    assert window.state.config.train.lr == lr.value() <= 10


def test_the_model_follows_the_task_from_images_to_text_and_back(qtbot, window, tmp_path):
    window.show()
    assert window.state.config.model.name == "resnet18"  # a fresh app starts with images in mind
    page = type_data_path(qtbot, window, make_reviews_csv(tmp_path / "reviews.csv"))
    assert window.state.config.task.kind.value == "text-classification"
    assert window.state.config.model.name == "distilbert-base-uncased"  # not resnet18 looked up on the Hub
    notice = page.findChild(QLabel, "taskNotice")
    assert notice.isVisible() and "distilbert-base-uncased" in notice.text() and "resnet18" in notice.text()
    window.resize(1280, 800)
    qtbot.wait(50)  # the layout settles
    flags = Qt.TextFlag.TextWordWrap
    needed = notice.fontMetrics().boundingRect(QRect(0, 0, notice.width(), 10_000), flags, notice.text())
    assert needed.height() <= notice.height(), "the notice is cut off"

    type_data_path(qtbot, window, make_image_folder(tmp_path / "images"))
    assert window.state.config.task.kind.value == "image-classification"
    assert window.state.config.model.name == "resnet18"
    assert "resnet18" in notice.text()


def test_a_model_that_still_fits_the_new_task_stays(qtbot, window, tmp_path):
    window.show()
    window.state.set_value("model", "name", "resnet50")
    type_data_path(qtbot, window, make_image_folder(tmp_path / "images"))  # images again: same family
    assert window.state.config.model.name == "resnet50"


def test_without_pretrained_weights_every_layer_trains_and_the_page_says_why(qtbot, window, tmp_path):
    window.show()
    type_data_path(qtbot, window, make_image_folder(tmp_path / "images"))
    page = go(qtbot, window, "model")
    set_field(qtbot, window, "model.pretrained", False)  # untick Pretrained: the backbone starts random
    wait_model_tree(qtbot, page)
    assert window.state.config.model.freeze == "none"  # not head-only: 0.05% of a random network
    trainable, total = page.trainable_count()
    assert trainable == total
    assert "No pretrained weights, so every layer trains" in page.freezing.warnings_label.text()


def test_head_only_on_random_weights_stays_when_chosen_with_a_warning(qtbot, window, tmp_path):
    window.show()
    type_data_path(qtbot, window, make_image_folder(tmp_path / "images"))
    page = go(qtbot, window, "model")
    set_field(qtbot, window, "model.pretrained", False)
    wait_model_tree(qtbot, page)
    qtbot.mouseClick(page.freezing.head_only_button, Qt.MouseButton.LeftButton)  # the user's own choice
    set_field(qtbot, window, "model.head_dropout", 0.1)  # any change that builds the model again
    wait_model_tree(qtbot, page)
    assert window.state.config.model.freeze == "head-only"
    assert "usually stays near chance accuracy" in page.freezing.warnings_label.text()


def test_offline_text_models_wait_for_a_model_on_disk_and_the_error_opens_a_local_folder(
    qtbot, window, tmp_path, monkeypatch, no_network
):
    from tests.factories import tiny_bert_dir

    window.show()
    type_data_path(qtbot, window, make_reviews_csv(tmp_path / "reviews.csv"))
    assert window.state.config.task.kind.value == "text-classification"

    train = go(qtbot, window, "monitor")  # the text model is not here and cannot come: Start waits, and says why
    qtbot.waitUntil(lambda: window.state.model_ready is False, timeout=30_000)
    assert not train.start_button.isEnabled()
    assert train.blocked.isVisible() and "not on this computer" in train.blocked_label.text()

    model = go(qtbot, window, "model")
    qtbot.waitUntil(lambda: model.freezing.error_frame.isVisible(), timeout=60_000)
    qtbot.waitUntil(lambda: not model.catalog.busy, timeout=30_000)
    assert "Offline" in model.catalog.status.text()
    assert model.freezing.open_local_button.isVisible()
    assert window.findChild(QMessageBox, "errorDialog") is None  # said once, beside the layers
    assert all(port == 443 for _, port in no_network)  # quick tries of the hosts, no retries of a download

    folder = tiny_bert_dir(tmp_path / "copied-here", num_labels=None)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    qtbot.mouseClick(model.freezing.open_local_button, Qt.MouseButton.LeftButton)
    assert window.state.config.model.name == str(folder.resolve())
    wait_model_tree(qtbot, model)
    assert not model.freezing.error_frame.isVisible()
    qtbot.waitUntil(lambda: window.state.model_ready is True, timeout=30_000)

    go(qtbot, window, "monitor")
    assert train.start_button.isEnabled() and not train.blocked.isVisible()
    assert str(folder.resolve()) in window.settings.value("recent/modelFolders")

    model = go(qtbot, window, "model")  # the opened folder is offered again, among the models on disk, first
    model.catalog.refresh()
    qtbot.waitUntil(lambda: not model.catalog.busy, timeout=30_000)
    assert model.catalog.visible_names()[0] == str(folder.resolve())


def test_the_second_recent_run_is_listed_whole_beside_the_first(qtbot, tmp_path):
    """Found on the walk-through: with one run remembered from the last session, opening a second listed the
    first one's path letter by letter (the settings file gives a one-item list back as a lone string)."""
    from finetune_gui.gui.main_window import MainWindow

    first, second = tmp_path / "run-one", tmp_path / "run-two"
    first.mkdir()
    second.mkdir()
    settings_file = tmp_path / "last-session.ini"
    settings_file.write_text(f"[recent]\nruns={first}\n")  # as the last session left it
    window = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.state.set_run_dir(second)
    start = go(qtbot, window, "start")
    start.refresh_recent()
    listed = [b.text() for b in start.findChildren(QPushButton) if b.objectName().startswith("recentRuns-")]
    assert listed == ["run-two", "run-one"]
    assert window.bridge.shutdown(10_000)


def test_recent_lists_split_up_by_an_older_version_show_only_real_paths(qtbot, tmp_path):
    from finetune_gui.gui.main_window import MainWindow

    setup = tmp_path / "mine.toml"
    setup.write_text("")
    settings_file = tmp_path / "older-version.ini"
    settings_file.write_text(f"[recent]\nconfigs={setup}, /, t, m, p\n")
    window = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    start = go(qtbot, window, "start")
    listed = [b.text() for b in start.findChildren(QPushButton) if b.objectName().startswith("recentConfigs-")]
    assert listed == ["mine"]
    assert window.bridge.shutdown(10_000)


def test_runs_go_to_one_per_user_folder_shown_and_changeable_on_the_start_page(qtbot, window, tmp_path, monkeypatch):
    start = go(qtbot, window, "start")
    per_user = tmp_path / "data" / "finetune-gui" / "runs"  # the platform's data folder (XDG_DATA_HOME here)
    assert start.runs_folder_label.text() == str(per_user)
    started = []
    monkeypatch.setattr(
        window.bridge, "start_training", lambda config, output_dir=None, **_: started.append(output_dir)
    )
    window.start_training()
    assert started == [per_user]  # not runs/ under the folder the app was started from

    mine = tmp_path / "my-experiments"
    mine.mkdir()
    asked = []

    def choose(parent, caption, folder):
        asked.append(folder)
        return str(mine)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(choose))
    go(qtbot, window, "start")
    qtbot.mouseClick(start.findChild(QPushButton, "changeRunsFolder"), Qt.MouseButton.LeftButton)
    assert asked == [str(per_user)] and start.runs_folder_label.text() == str(mine)
    window.start_training()
    assert started[-1] == mine
    qtbot.mouseClick(start.findChild(QPushButton, "openRun"), Qt.MouseButton.LeftButton)
    assert asked[-1] == str(mine)  # Open previous run… looks where the runs are

    window.state.set_value("checkpoint", "output_dir", str(tmp_path / "elsewhere"))  # a config's own absolute folder
    window.start_training()
    assert started[-1] is None  # as the config says


def test_the_model_folder_dialog_opens_beside_the_data(qtbot, window, tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    data = make_reviews_csv(tmp_path / "project" / "reviews.csv")
    type_data_path(qtbot, window, data)
    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda p, c, folder: asked.append(folder)))
    model = go(qtbot, window, "model")
    model.catalog.choose_folder()
    assert asked == [str(tmp_path / "project")]  # not a system folder


def test_a_table_with_its_own_column_names_is_read_as_its_contents_suggest(qtbot, window, tmp_path):
    """Found on the walk-through with Rotten Tomatoes reviews: columns "review" and "kind" left the page at
    "Image classification, 0 images" with the fix buried in the Problems tab."""
    rows = [
        (f"Review number {i}: the film was {'great fun' if i % 2 else 'a long bore'}.", "fresh rotten".split()[i % 2])
        for i in range(40)
    ]
    table = tmp_path / "critics.csv"
    table.write_text("review,kind\n" + "".join(f'"{t}",{k}\n' for t, k in rows), encoding="utf-8")
    window.show()
    page = type_data_path(qtbot, window, table)
    qtbot.waitUntil(
        lambda: window.state.config.task.kind.value == "text-classification" and not page.scanning, timeout=60_000
    )
    data = window.state.config.data
    assert (data.text_column, data.label_columns) == ("review", ["kind"])
    assert window.state.scan.num_samples == 40 and set(window.state.scan.labels) == {"fresh", "rotten"}
    notice = page.findChild(QLabel, "taskNotice")
    assert notice.isVisible() and "text “review”, label “kind”" in notice.text()


def test_unfreezing_a_transformer_brings_its_learning_rate_down_unless_one_was_chosen(qtbot, window, tmp_path):
    """Found on the walk-through: "Unfreeze all" on MiniLM kept the head's LR of 1e-3, and the fine-tuned model
    never predicted one of three classes."""
    from tests.factories import tiny_bert_dir

    window.show()
    type_data_path(qtbot, window, make_reviews_csv(tmp_path / "reviews.csv"))
    window.state.set_value("model", "name", str(tiny_bert_dir(tmp_path)))
    model = go(qtbot, window, "model")
    wait_model_tree(qtbot, model)
    qtbot.mouseClick(model.freezing.head_only_button, Qt.MouseButton.LeftButton)
    assert window.state.config.train.lr == 1e-3  # a new head's usual LR
    qtbot.mouseClick(model.freezing.all_button, Qt.MouseButton.LeftButton)
    assert window.state.config.train.lr == 5e-5
    assert "Learning rate set to 5e-05" in window.statusBar().currentMessage()

    qtbot.mouseClick(model.freezing.head_only_button, Qt.MouseButton.LeftButton)
    assert window.state.config.train.lr == 1e-3
    go(qtbot, window, "setup")
    set_field(qtbot, window, "train.lr", 3e-3)  # chosen: it stays whatever the layers
    go(qtbot, window, "model")
    qtbot.mouseClick(model.freezing.all_button, Qt.MouseButton.LeftButton)
    assert window.state.config.train.lr == 3e-3
