"""The Export page: a tiny run is exported in a worker, progress lines arrive, the verification table fills."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl

from finetune_gui.gui.pages.export import ExportPage
from tests.conftest import make_image_folder
from tests.factories import image_sections, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-page")
    make_image_folder(root / "images")
    return train_run(root, image_sections())


@pytest.fixture
def page(qtbot, state, bridge):
    p = ExportPage(state, bridge)
    qtbot.addWidget(p)
    p.resize(1110, 740)
    p.show()
    yield p
    qtbot.waitUntil(lambda: not bridge.busy, timeout=120000)


def offered(page) -> list[str]:
    return [fmt for fmt, box in page.boxes.items() if box.isVisible()]


def fake_run(root: Path, task: str) -> Path:
    root.mkdir(parents=True)
    (root / "config.toml").write_text("")
    (root / "labels.json").write_text(json.dumps({"task": task, "labels": []}))
    return root


def test_only_the_formats_of_the_runs_task_are_offered(page, tmp_path):
    assert offered(page) == [] and not page.export_button.isEnabled()
    page.state.set_run_dir(fake_run(tmp_path / "text", "text-classification"))
    assert offered(page) == ["torchscript", "onnx", "onnx-int8", "pt2", "safetensors", "hf"]
    assert page.selected_formats() == ["onnx", "safetensors", "hf"]  # int8 only when ticked
    page.state.set_run_dir(fake_run(tmp_path / "image", "image-regression"))
    assert offered(page) == ["torchscript", "onnx", "pt2", "safetensors"] and "hf" not in page.selected_formats()
    assert page.export_button.isEnabled()
    page.state.set_run_dir(tmp_path / "nothing-here")
    assert offered(page) == [] and "not a run folder" in page.status_label.text()


def test_exporting_a_run_fills_the_verification_table(qtbot, page, image_run, tmp_path, monkeypatch):
    opened: list[QUrl] = []
    monkeypatch.setattr("finetune_gui.gui.pages.export.QDesktopServices.openUrl", opened.append)
    page.state.set_run_dir(image_run)
    for fmt, box in page.boxes.items():
        box.setChecked(fmt in ("torchscript", "safetensors"))
    page.output_edit.setText(str(tmp_path / "out"))
    assert page.start_export()
    assert not page.export_button.isEnabled() and not page.boxes["onnx"].isEnabled()  # the thread is not blocked
    assert page.start_export() is False  # one export at a time
    qtbot.waitUntil(lambda: page.report is not None, timeout=120000)

    table = page.table
    rows = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]
    assert [r[0] for r in rows] == ["torchscript", "safetensors"]
    assert [r[1] for r in rows] == ["model.torchscript.pt", "model.safetensors"]
    assert all(r[3] == "100.0%" and r[4] == "1, 8" and r[7] == "pass" for r in rows)
    assert all(r[5].endswith(("MB", "kB")) and r[6] == "-" for r in rows)  # only ONNX files are timed
    assert all(float(r[2]) <= 1e-5 for r in rows)
    assert "matches the trained model" in table.item(0, 7).toolTip()
    assert "verifying torchscript" in page.log.toPlainText()
    assert "All 2 file(s) give the trained model's outputs" in page.summary_label.text()
    assert page.export_button.isEnabled() and page.output_edit.text() == ""

    page.open_button.click()
    assert [u.toLocalFile() for u in opened] == [str(tmp_path / "out")]
    assert (tmp_path / "out" / "verification.json").exists()

    if os.environ.get("EXPORT_PAGE_SCREENSHOT"):
        page.resize(1280, 800)
        qtbot.wait(50)
        page.grab().save(os.environ["EXPORT_PAGE_SCREENSHOT"])


def test_a_failed_verification_is_shown_in_red(qtbot, page, image_run, tmp_path, monkeypatch):
    from finetune_gui.core.export import verify

    real = verify.reference_outputs
    monkeypatch.setattr(verify, "reference_outputs", lambda source: [t + 1.0 for t in real(source)])
    page.state.set_run_dir(image_run)
    for fmt, box in page.boxes.items():
        box.setChecked(fmt == "safetensors")
    page.output_edit.setText(str(tmp_path / "bad"))
    assert page.start_export()
    qtbot.waitUntil(lambda: page.report is not None, timeout=120000)
    assert page.table.item(0, 7).text() == "FAIL"
    assert page.table.item(0, 7).foreground().color().name() == "#c62828"
    assert "Verification FAILED for safetensors" in page.summary_label.text()


def test_a_folder_with_files_is_refused_in_words_without_a_dialog(qtbot, page, image_run, tmp_path):
    dialogs = []
    page.error.connect(lambda *a: dialogs.append(a))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    page.state.set_run_dir(image_run)
    page.output_edit.setText(str(taken))
    assert page.start_export()
    qtbot.waitUntil(lambda: page.export_button.isEnabled(), timeout=60000)
    assert "already holds files" in page.status_label.text() and page.report is None
    assert dialogs == [] and [p.name for p in taken.iterdir()] == ["keep.txt"]


def test_a_text_run_exports_its_hugging_face_folder_from_the_page(qtbot, page, tmp_path_factory):
    from tests.unit.test_export import text_run

    run = text_run(tmp_path_factory.mktemp("export-page-text"))
    page.state.set_run_dir(run)
    for fmt, box in page.boxes.items():
        box.setChecked(fmt in ("hf", "onnx-int8"))
    assert page.start_export()
    qtbot.waitUntil(lambda: page.report is not None, timeout=120000)
    rows = [
        [page.table.item(r, c).text() for c in range(page.table.columnCount())] for r in range(page.table.rowCount())
    ]
    assert [(r[0], r[1], r[3], r[7]) for r in rows] == [
        ("onnx-int8", "model.int8.onnx", "100.0%", "pass"),
        ("hf", "hf", "100.0%", "pass"),
    ]
    assert rows[0][6].endswith("x") and rows[1][6] == "-"  # int8 is timed against the PyTorch model
    assert "6 of 6 validation samples; needs >= 99%" in page.table.item(0, 7).toolTip()
    assert page.report.folder.parent == run / "exports" and (page.report.folder / "hf" / "config.json").exists()
    if os.environ.get("EXPORT_PAGE_SCREENSHOT_TEXT"):
        page.resize(1280, 800)
        qtbot.wait(50)
        page.grab().save(os.environ["EXPORT_PAGE_SCREENSHOT_TEXT"])
