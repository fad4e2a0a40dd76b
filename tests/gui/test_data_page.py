"""The data page: background scans, what they found (classes, splits, samples, problems), columns and task."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QTableWidget

from finetune_gui.config import TaskKind, validate_dict
from finetune_gui.gui.pages import data as data_page
from finetune_gui.gui.panels.data_samples import THUMBS_PER_CLASS
from tests.conftest import make_image_folder, make_reviews_csv


@pytest.fixture
def make_page(qtbot, state, bridge):
    from finetune_gui.gui.pages.data import DataPage

    def make():
        page = DataPage(state, bridge)
        qtbot.addWidget(page)
        page.resize(1110, 760)
        page.show()
        return page

    return make


def settle(qtbot, page, bridge):
    """Wait until the scan and the samples it asked for have arrived."""
    qtbot.waitUntil(lambda: not page.scanning and not bridge.busy, timeout=30000)


def image_config(path, **data):
    return validate_dict(
        {"data": {"path": str(path), "val_fraction": 0.25, "test_fraction": 0.25, "image_size": 32, **data}}
    )


def table_texts(table: QTableWidget, column: int) -> list[str]:
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_an_image_folder_scan_shows_classes_chart_splits_and_thumbnails(qtbot, make_page, state, bridge, tmp_path):
    make_image_folder(tmp_path / "images", per_class=8)
    state.set_config(image_config(tmp_path / "images"))
    page = make_page()
    assert page.scanning  # a path is set: the page scans by itself, off the main thread
    settle(qtbot, page, bridge)
    assert state.scan is not None and state.scan.num_samples == 24
    assert "24 images" in page.findChild(QLabel, "dataSummary").text()
    table = page.findChild(QTableWidget, "classTable")
    assert table_texts(table, 0) == ["circle", "square", "stripes"] and table_texts(table, 1) == ["8", "8", "8"]
    assert page.results.chart.bars() == [("circle", 8), ("square", 8), ("stripes", 8)]
    assert "train 12 · val 6 · test 6" in page.findChild(QLabel, "splitSizes").text()  # stratified 2+2 per class
    assert page.results.thumbnails.image_count() == 3 * THUMBS_PER_CLASS
    assert page.results.thumbnails.row_captions() == ["circle", "square", "stripes"]
    assert not page.findChild(QLabel, "imbalanceWarning").isVisible()
    assert not page.error_banner.isVisible()


def test_changing_the_split_fractions_updates_the_sizes_without_a_rescan(
    qtbot, make_page, state, bridge, tmp_path, monkeypatch
):
    make_image_folder(tmp_path / "images", per_class=8)
    state.set_config(image_config(tmp_path / "images"))
    page = make_page()
    settle(qtbot, page, bridge)
    calls = []
    monkeypatch.setattr(data_page, "scan_job", lambda config: calls.append(config))
    assert state.set_value("data", "test_fraction", 0.0) is None
    assert "train 18 · val 6 · test 0" in page.findChild(QLabel, "splitSizes").text()
    qtbot.wait(data_page.SCAN_DEBOUNCE_MS + 100)
    assert calls == [] and not page.scanning


def test_imbalanced_classes_are_named_and_balanced_weights_are_one_click_away(
    qtbot, make_page, state, bridge, tmp_path
):
    root = tmp_path / "images"
    make_image_folder(root, classes=("cat", "dog"), per_class=12)
    make_image_folder(root, classes=("fox", "owl", "emu"), per_class=2)
    state.set_config(image_config(root))
    page = make_page()
    settle(qtbot, page, bridge)
    warning = page.findChild(QLabel, "imbalanceWarning")
    assert warning.isVisible()
    text = warning.text()
    assert "'cat' has 12" in text and "only 2" in text and "6×" in text
    assert all(name in text for name in ("fox", "owl", "emu"))
    button = page.findChild(QPushButton, "useBalancedWeights")
    assert button.isVisible()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert state.config.train.class_weights == "balanced"
    assert not button.isVisible()


def test_problems_separate_skipped_files_from_warnings(qtbot, make_page, state, bridge, tmp_path):
    root = make_image_folder(tmp_path / "images", per_class=4)
    (root / "circle" / "broken.png").write_bytes(b"not a png at all")
    (root / "empty_class").mkdir()
    (root / "loose.png").write_bytes((root / "square" / "000.png").read_bytes())
    state.set_config(image_config(root))
    page = make_page()
    settle(qtbot, page, bridge)
    errors = page.findChild(QTableWidget, "problemErrors")
    warnings = page.findChild(QTableWidget, "problemWarnings")
    assert table_texts(errors, 0) == ["circle/broken.png"]  # where it is inside the data folder
    assert "not a readable image" in errors.item(0, 2).text()
    assert sorted(table_texts(warnings, 0)) == ["empty_class", "images"]
    assert page.results.tabs.tabText(page.results.tabs.indexOf(page.results.problems_tab)) == "Problems (3)"
    assert "1 error(s), 2 warning(s)" in page.findChild(QLabel, "dataSummary").text()
    assert state.scan.num_samples == 12  # the broken file is left out


def test_a_missing_path_shows_the_error_on_the_page_without_a_dialog(qtbot, make_page, state, bridge, tmp_path):
    state.set_config(image_config(tmp_path / "nowhere"))
    page = make_page()
    with qtbot.assertNotEmitted(page.error):
        settle(qtbot, page, bridge)
    assert page.error_banner.isVisible()
    message = page.findChild(QLabel, "dataErrorMessage").text()
    assert "nowhere" in message and "data path not found" in message and "Rescan" in message
    assert state.scan is None


def test_a_file_that_is_not_utf8_names_the_line(qtbot, make_page, state, bridge, tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("text,label\ncaf\u00e9 ok,positive\n".encode("latin-1"))
    state.set_config(validate_dict({"task": {"kind": "text-classification"}, "data": {"path": str(bad)}}))
    page = make_page()
    settle(qtbot, page, bridge)
    message = page.findChild(QLabel, "dataErrorMessage").text()
    assert page.error_banner.isVisible() and "line 2" in message and "UTF-8" in message


def test_an_unexpected_failure_is_reported_as_an_error(qtbot, make_page, state, bridge, tmp_path, monkeypatch):
    def broken(config):
        raise RuntimeError("scanner bug")

    monkeypatch.setattr(data_page, "scan_job", broken)
    state.set_config(image_config(make_image_folder(tmp_path / "images")))
    page = make_page()
    with qtbot.waitSignal(page.error, timeout=10000) as err:
        pass
    assert err.args[0] == "RuntimeError" and err.args[1] == "scanner bug" and "Traceback" in err.args[2]
    settle(qtbot, page, bridge)
    assert page.error_banner.isVisible()


def test_a_csv_gets_its_task_detected_its_columns_mapped_and_its_first_rows_shown(
    qtbot, make_page, state, bridge, tmp_path
):
    csv = tmp_path / "reviews.csv"
    csv.write_text(
        "review,sentiment,notes\n"
        + "".join(
            f"{'good fun film' if i % 2 else 'dull slow film'} {i},{'pos' if i % 2 else 'neg'},n{i}\n"
            for i in range(20)
        ),
        encoding="utf-8",
    )
    page = make_page()
    page.set_data_path(str(csv))  # a fresh setup: image classification by default
    settle(qtbot, page, bridge)
    assert state.scan is not None and state.scan.columns == ["review", "sentiment", "notes"]
    # no 'text'/'label' columns: the contents say which is the text (the long one) and which the label
    assert (state.config.data.text_column, state.config.data.label_columns) == ("review", ["sentiment"])
    text_combo = page.findChild(QComboBox, "textColumn")
    assert {"review", "sentiment", "notes"} <= {text_combo.itemData(i) for i in range(text_combo.count())}
    assert page.columns_box.isVisible()  # the guess can be changed by hand
    assert state.config.task.kind == TaskKind.TEXT_CLASSIFICATION  # detected and applied: nothing was chosen
    assert "detected: text classification" in page.findChild(QLabel, "detectedKind").text()
    assert state.scan.labels == {"neg": 10, "pos": 10}
    rows = page.findChild(QTableWidget, "firstRows")
    assert rows.columnCount() == 3 and rows.rowCount() == 20 and rows.item(0, 0).text() == "dull slow film 0"
    assert page.findChild(QComboBox, "taskKind").currentData() == "text-classification"


def test_a_kind_chosen_by_hand_is_kept_and_the_detected_one_is_offered(qtbot, make_page, state, bridge, tmp_path):
    csv = tmp_path / "scores.csv"
    csv.write_text("text,label\n" + "".join(f"review {i},{i / 4:.2f}\n" for i in range(12)), encoding="utf-8")
    page = make_page()
    page.path_edit.setText(str(csv))
    page.path_edit.editingFinished.emit()
    settle(qtbot, page, bridge)
    assert state.config.task.kind == TaskKind.TEXT_REGRESSION  # detected and applied
    combo = page.findChild(QComboBox, "taskKind")
    combo.setCurrentIndex(combo.findData("text-classification"))
    combo.activated.emit(combo.currentIndex())
    settle(qtbot, page, bridge)
    assert state.config.task.kind == TaskKind.TEXT_CLASSIFICATION  # the user's choice stands
    assert len(state.scan.labels) == 12
    use = page.findChild(QPushButton, "useDetected")
    assert use.isVisible() and "text regression" in page.findChild(QLabel, "detectedKind").text()
    qtbot.mouseClick(use, Qt.MouseButton.LeftButton)
    settle(qtbot, page, bridge)
    assert state.config.task.kind == TaskKind.TEXT_REGRESSION and not use.isVisible()
    assert not page.findChild(QLabel, "noClasses").isHidden() and page.results.class_table.isHidden()
    combo.setCurrentIndex(combo.findData("text-classification"))
    combo.activated.emit(combo.currentIndex())  # chosen by hand again, then other data is dropped on the window
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one fortune\n\nanother one\n", encoding="utf-8")
    state.set_value("data", "path", str(corpus))
    settle(qtbot, page, bridge)
    assert state.config.task.kind == TaskKind.CAUSAL_LM  # new data: the detected task applies again


def test_a_preset_keeps_its_related_task_but_data_of_another_kind_switches_it(
    qtbot, make_page, state, bridge, tmp_path
):
    csv = make_reviews_csv(tmp_path / "reviews.csv")
    config = validate_dict({"task": {"kind": "text-regression"}, "data": {"path": str(csv)}})
    state.set_config(config, tmp_path / "preset.toml")
    page = make_page()
    settle(qtbot, page, bridge)
    assert state.config.task.kind == TaskKind.TEXT_REGRESSION  # same modality: the preset's choice stands
    assert page.findChild(QPushButton, "useDetected").isVisible() is False  # labels are words: no suggestion
    page.set_data_path(str(make_image_folder(tmp_path / "images")))
    settle(qtbot, page, bridge)
    assert state.config.task.kind == TaskKind.IMAGE_CLASSIFICATION


def test_a_text_file_for_a_language_model_shows_documents_and_no_classes(qtbot, make_page, state, bridge, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("first fortune\n%\nsecond fortune\nover two lines\n%\nthird\n", encoding="utf-8")
    page = make_page()
    page.set_data_path(str(corpus))
    settle(qtbot, page, bridge)
    assert state.config.task.kind == TaskKind.CAUSAL_LM
    assert "3 documents" in page.findChild(QLabel, "dataSummary").text()
    assert not page.findChild(QLabel, "noClasses").isHidden() and page.results.class_table.isHidden()
    assert page.results.tabs.currentWidget() is page.results.samples_tab  # nothing to see under Classes
    rows = page.findChild(QTableWidget, "firstRows")
    assert rows.rowCount() == 3 and "over two lines" in rows.item(1, 0).text()
    assert not page.columns_box.isVisible()


def test_quick_changes_scan_once_after_a_pause(qtbot, make_page, state, bridge, tmp_path, monkeypatch):
    folders = [make_image_folder(tmp_path / f"images{i}", per_class=2) for i in range(3)]
    page = make_page()
    seen: list[str] = []
    real = data_page.scan_job
    monkeypatch.setattr(data_page, "scan_job", lambda config: (seen.append(config.data.path), real(config))[1])
    for folder in folders:
        page.set_data_path(str(folder))
    settle(qtbot, page, bridge)
    assert seen == [str(folders[-1])]
    assert state.scan.source == str(folders[-1])


def test_a_late_answer_from_an_older_scan_is_ignored(qtbot, make_page, state, bridge, tmp_path, monkeypatch):
    slow = make_image_folder(tmp_path / "slow", classes=("a", "b"), per_class=2)
    fast = make_image_folder(tmp_path / "fast", classes=("x", "y", "z"), per_class=2)
    real = data_page.scan_job

    def scan(config):
        if config.data.path == str(slow):
            time.sleep(1.0)
        return real(config)

    monkeypatch.setattr(data_page, "scan_job", scan)
    page = make_page()
    page.set_data_path(str(slow))
    page.rescan()
    page.set_data_path(str(fast))
    page.rescan()
    settle(qtbot, page, bridge)
    assert state.scan.source == str(fast) and list(state.scan.labels) == ["x", "y", "z"]
    assert table_texts(page.results.class_table, 0) == ["x", "y", "z"]
