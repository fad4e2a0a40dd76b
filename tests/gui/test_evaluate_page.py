"""The Evaluate page on real tiny runs: metrics, per-class table, a clickable confusion matrix, scatter, generation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel

from finetune_gui.gui.pages.evaluate import TAB_CELL, TAB_PER_CLASS, EvaluatePage
from tests.conftest import make_image_folder
from tests.factories import TINY_TRAIN, image_sections, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval-image")
    make_image_folder(root / "images")
    return train_run(root, image_sections())


@pytest.fixture
def page(qtbot, state, bridge):
    p = EvaluatePage(state, bridge)
    qtbot.addWidget(p)
    p.resize(1110, 740)
    p.show()
    yield p
    qtbot.waitUntil(lambda: not bridge.busy, timeout=60000)  # tasks end before the bridge shuts down


def card_value(page, title: str) -> str | None:
    card = page.findChild(QFrame, f"metric-{title}")
    return card.findChild(QLabel, "value").text() if card is not None else None


def loaded(qtbot, page, run, scored=True):
    errors = []
    page.error.connect(lambda *a: errors.append(a))
    page.state.set_run_dir(run)
    qtbot.waitUntil(lambda: page.evaluation != {} and (page.samples is not None or not scored), timeout=60000)
    assert errors == []
    return json.loads((Path(run) / "evaluation.json").read_text())


def test_an_image_run_fills_metrics_table_and_matrix(qtbot, page, image_run):
    evaluation = loaded(qtbot, page, image_run)
    assert page.matrix.matrix == evaluation["confusion_matrix"]
    assert page.matrix.labels == ["circle", "square", "stripes"]
    table = page.per_class
    assert table.rowCount() == 3
    for r, row in enumerate(evaluation["per_class"]):
        assert table.item(r, 0).text() == row["label"]
        assert table.item(r, 1).text() == f"{row['precision']:.3f}"
        assert table.item(r, 4).text() == str(row["support"])
    assert card_value(page, "accuracy") == f"{evaluation['accuracy']:.4g}"
    assert card_value(page, "F1 (macro)") == f"{evaluation['f1_macro']:.4g}"
    assert page.tabs.isTabVisible(TAB_PER_CLASS) and page.tabs.isTabVisible(TAB_CELL)
    worst = page.top_loss.list
    assert worst.count() == evaluation["num_samples"]  # fewer than 50 samples: all of them, worst first
    assert "loss" in worst.item(0).text()


def test_clicking_a_cell_lists_exactly_the_samples_with_that_true_and_predicted_class(qtbot, page, image_run):
    evaluation = loaded(qtbot, page, image_run)
    labels, cm = evaluation["labels"], evaluation["confusion_matrix"]
    for r in range(3):
        for c in range(3):
            qtbot.mouseClick(page.matrix, Qt.MouseButton.LeftButton, pos=page.matrix.cell_rect(r, c).center())
            assert page.tabs.currentIndex() == TAB_CELL and page.matrix.selected == (r, c)
            items = [page.cell_samples.list.item(i) for i in range(page.cell_samples.list.count())]
            assert len(items) == cm[r][c], (r, c)  # the engine's own count for that cell
            for item in items:
                assert Path(item.toolTip()).parent.name == labels[r]  # truly of class r (its folder)
                assert f"predicted {labels[c]}" in item.text()
            assert f"true {labels[r]}, predicted {labels[c]}: {cm[r][c]} sample" in page.cell_samples.title.text()
    diagonal = max(range(3), key=lambda k: cm[k][k])
    qtbot.mouseClick(page.matrix, Qt.MouseButton.LeftButton, pos=page.matrix.cell_rect(diagonal, diagonal).center())
    qtbot.waitUntil(lambda: not page.cell_samples.list.item(0).icon().isNull(), timeout=20000)  # thumbnails arrive


def test_regression_shows_true_against_predicted(qtbot, page, tmp_path):
    make_image_folder(tmp_path / "images")
    pics = sorted((tmp_path / "images").rglob("*.png"))
    lines = ["path,value"] + [f"{p.relative_to(tmp_path).as_posix()},{(i % 7) / 7:.3f}" for i, p in enumerate(pics)]
    (tmp_path / "reg.csv").write_text("\n".join(lines) + "\n")
    run = train_run(
        tmp_path,
        {
            "task": {"kind": "image-regression"},
            "data": {"path": "reg.csv", "image_size": 32, "label_columns": ["value"]},
            "model": {"name": "resnet18", "allow_random_init": True, "freeze": "head-only"},
            "train": dict(TINY_TRAIN, epochs=1),
        },
    )
    evaluation = loaded(qtbot, page, run)
    xs, ys = page.scatter_points.getData()
    shown = [v for pair in sorted(zip(xs.tolist(), ys.tolist())) for v in pair]
    assert shown == pytest.approx([v for pair in sorted(evaluation["scatter"]) for v in pair])
    assert page.left.currentWidget() is page.scatter and page.left.isVisible()
    for name, key in (("MAE", "mae"), ("RMSE", "rmse"), ("R²", "r2")):
        assert card_value(page, name) == f"{evaluation[key]:.4g}"
    assert not page.tabs.isTabVisible(TAB_CELL) and not page.tabs.isTabVisible(TAB_PER_CLASS)
    assert page.top_loss.list.count() == evaluation["num_samples"] and "error" in page.top_loss.list.item(0).text()


def test_a_language_model_run_shows_perplexity_and_generates_text(qtbot, page, tmp_path):
    from tests.factories import tiny_gpt2_dir, tiny_text_corpus

    model_dir = tiny_gpt2_dir(tmp_path / "gpt2")
    (tmp_path / "corpus.txt").write_text("\n%\n".join(tiny_text_corpus() * 3) + "\n", encoding="utf-8")
    run = train_run(
        tmp_path,
        {
            "task": {"kind": "causal-lm"},
            "data": {"path": "corpus.txt", "max_length": 16, "val_fraction": 0.2, "test_fraction": 0.1},
            "model": {"name": str(model_dir), "freeze": "none"},
            "train": dict(TINY_TRAIN, lr=5e-3),
        },
    )
    evaluation = loaded(qtbot, page, run, scored=False)
    assert page.body.currentIndex() == 2
    assert card_value(page, "perplexity") == f"{evaluation['perplexity']:.4g}"
    assert "Perplexity" in page.status_label.text()
    page.generation.prompt.setPlainText("the cat")
    page.generation.temperature.setValue(0.0)
    page.generation.max_tokens.setValue(6)
    qtbot.mouseClick(page.generation.generate_button, Qt.MouseButton.LeftButton)
    assert not page.generation.generate_button.isEnabled()  # one generation at a time
    qtbot.waitUntil(page.generation.generate_button.isEnabled, timeout=60000)
    text = page.generation.output.toPlainText()
    assert text.startswith("the cat") and len(text) > len("the cat")


def test_an_unfinished_run_says_so_without_an_error_dialog(qtbot, page, image_run, tmp_path):
    copy = Path(shutil.copytree(image_run, tmp_path / "stopped"))
    (copy / "evaluation.json").unlink()
    errors = []
    page.error.connect(lambda *a: errors.append(a))
    page.state.set_run_dir(copy)
    qtbot.waitUntil(lambda: "has not finished" in page.status_label.text(), timeout=20000)
    assert errors == [] and page.body.currentIndex() == 0
