"""The Runs page (issue 14, part 3): every run of the runs folder in a table to sort and search; selected runs
compared (curves in stable colours, config differences, findings); the table saved as CSV; open and delete (to
the trash, after asking, never a run that is training) from the table."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from tests.compared_runs import train_three_runs
from tests.gui.driving import go

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> list[Path]:
    return train_three_runs(tmp_path_factory.mktemp("runs-page"))


@pytest.fixture
def runs_folder(trained, tmp_path) -> Path:
    """A copy of the three runs (a test may delete one)."""
    folder = tmp_path / "my-runs"
    for run in trained:
        shutil.copytree(run, folder / run.name)
    return folder


def open_runs_page(qtbot, window, folder: Path):
    window.state.runs_folder = folder
    window.show()
    page = go(qtbot, window, "runs")
    qtbot.waitUntil(lambda: not page.loading and page.model.rowCount() > 0, timeout=30_000)
    return page


def shown_names(page) -> list[str]:
    return [Path(p).name for p in page.proxy.paths()]


def click_row(qtbot, page, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    rect = page.table.visualRect(page.proxy.index(row, 0))
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def click_header(qtbot, page, column: int) -> None:
    header = page.table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def wait_compared(qtbot, page, count: int) -> None:
    qtbot.waitUntil(
        lambda: page.compare is not None and not page.comparing and len(page.compare.curves.curves) == count,
        timeout=30_000,
    )


def test_the_runs_page_lists_sorts_compares_exports_and_deletes_runs(qtbot, window, runs_folder, tmp_path, monkeypatch):
    page = open_runs_page(qtbot, window, runs_folder)
    assert window.sidebar.count() == 10 and window.sidebar.item(9).text() == "Runs"
    assert sorted(shown_names(page)) == sorted(p.name for p in runs_folder.iterdir())

    click_header(qtbot, page, 4)  # "Best validation": by the number, not the text
    best = [page.model.runs[page.proxy.mapToSource(page.proxy.index(r, 0)).row()].best_value for r in range(3)]
    assert best in (sorted(best), sorted(best, reverse=True)) and len(set(best)) == 3
    click_header(qtbot, page, 4)
    again = [page.model.runs[page.proxy.mapToSource(page.proxy.index(r, 0)).row()].best_value for r in range(3)]
    assert again == best[::-1]

    click_row(qtbot, page, 0)
    click_row(qtbot, page, 2, Qt.KeyboardModifier.ControlModifier)
    wait_compared(qtbot, page, 2)
    first_two = dict(page.compare.colours)
    assert len(set(first_two.values())) == 2
    table = page.compare.config_table
    keys = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert "train.lr" in keys and "train.epochs" not in keys  # only what differs
    page.compare.differences_only.setChecked(False)
    assert table.rowCount() > 50
    click_row(qtbot, page, 1, Qt.KeyboardModifier.ControlModifier)
    wait_compared(qtbot, page, 3)
    assert {p: page.compare.colours[p] for p in first_two} == first_two  # a run keeps its colour

    target = tmp_path / "table.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "CSV (*.csv)"))
    qtbot.mouseClick(page.csv_button, Qt.MouseButton.LeftButton)
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [r["name"] for r in rows] == shown_names(page)
    assert all(float(r["best_value"]) > 0 and r["test_metric"] == "test_accuracy" for r in rows)

    png = tmp_path / "curves.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(png), "PNG (*.png)"))
    qtbot.mouseClick(page.compare.curves.png_button, Qt.MouseButton.LeftButton)
    assert png.read_bytes()[:4] == b"\x89PNG"

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    doomed = runs_folder / shown_names(page)[1]
    click_row(qtbot, page, 1)
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and doomed.name in asked[0][2]
    assert not doomed.exists() and doomed.name not in shown_names(page) and page.model.rowCount() == 2
    trash = Path(window.state.runs_folder).parent / "data" / "Trash" / "files"  # XDG_DATA_HOME in tests
    assert (trash / doomed.name / "config.toml").is_file()


def test_a_run_that_is_training_is_never_deleted_and_nothing_is_asked(qtbot, window, runs_folder, monkeypatch):
    going = sorted(runs_folder.iterdir())[0]
    status = json.loads((going / "status.json").read_text(encoding="utf-8"))
    (going / "status.json").write_text(json.dumps({**status, "state": "running"}), encoding="utf-8")
    page = open_runs_page(qtbot, window, runs_folder)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    click_row(qtbot, page, shown_names(page).index(going.name))
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert not asked and going.is_dir() and page.model.rowCount() == 3
    assert "still training" in page.message.text()


def test_the_search_box_filters_and_open_shows_the_run_on_the_train_page(qtbot, window, runs_folder):
    page = open_runs_page(qtbot, window, runs_folder)
    qtbot.keyClicks(page.search, "batch-8")
    assert len(shown_names(page)) == 1 and "lr-low-batch-8" in shown_names(page)[0]
    click_row(qtbot, page, 0)
    qtbot.mouseClick(page.open_button, Qt.MouseButton.LeftButton)
    assert window.current_page_key() == "monitor"
    assert Path(window.state.run_dir).name == shown_names(page)[0]
    monitor = window.pages["monitor"]
    qtbot.waitUntil(lambda: "Previous run" in monitor.status_label.text(), timeout=30_000)


def test_numeric_columns_sort_as_numbers_with_missing_values_after_them(qapp):
    from finetune_gui.core.run_index import RunSummary
    from finetune_gui.gui.panels.run_table import RunFilter, RunTableModel

    def run(name: str, epochs: int, best: float | None) -> RunSummary:
        return RunSummary(
            name,
            f"/runs/{name}",
            "completed",
            "image-classification",
            "resnet18",
            "val_loss",
            best,
            1,
            "test_accuracy",
            None,
            epochs,
            61.0,
            "2026-01-01 10:00:00",
            None,
        )

    model = RunTableModel()
    model.set_runs([run("a", 10, 0.5), run("b", 9, None), run("c", 100, 12.0)])
    proxy = RunFilter()
    proxy.setSourceModel(model)
    proxy.sort(6, Qt.SortOrder.AscendingOrder)  # Epochs: as text, "10" < "100" < "9"
    assert proxy.paths() == ["/runs/b", "/runs/a", "/runs/c"]
    proxy.sort(4, Qt.SortOrder.AscendingOrder)  # Best validation: "val_loss 12" < "val_loss 0.5" as text
    assert proxy.paths() == ["/runs/a", "/runs/c", "/runs/b"]
    assert proxy.index(1, 7).data() == "1:01" and proxy.index(2, 4).data() == "–"


def test_resume_continues_a_stopped_run_on_the_train_page(qtbot, window, runs_folder, tinynet):
    stopped = sorted(runs_folder.iterdir())[0]
    status = json.loads((stopped / "status.json").read_text(encoding="utf-8"))
    (stopped / "status.json").write_text(json.dumps({**status, "state": "stopped"}), encoding="utf-8")
    page = open_runs_page(qtbot, window, runs_folder)
    click_row(qtbot, page, shown_names(page).index(stopped.name))
    assert page.resume_button.isEnabled()
    click_row(qtbot, page, (shown_names(page).index(stopped.name) + 1) % 3)
    assert not page.resume_button.isEnabled()  # a completed run
    click_row(qtbot, page, shown_names(page).index(stopped.name))
    with qtbot.waitSignal(window.bridge.run_finished, timeout=60_000):
        qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
        assert window.current_page_key() == "monitor" and window.bridge.is_training
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=30_000)
    assert json.loads((stopped / "status.json").read_text(encoding="utf-8"))["state"] == "completed"
