"""The Try it page: a trained run's model predicts a dropped image, typed text, and writes on from a prompt."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from finetune_gui.core.inference import load_predictor
from finetune_gui.gui.pages.try_it import INPUT_IMAGE, INPUT_NONE, INPUT_PROMPT, INPUT_TEXT, TryItPage
from tests.conftest import make_image_folder, make_reviews_csv
from tests.factories import TINY_TRAIN, image_sections, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("try-image")
    make_image_folder(root / "images")
    return train_run(root, image_sections())


@pytest.fixture
def page(qtbot, state, bridge):
    p = TryItPage(state, bridge)
    qtbot.addWidget(p)
    p.resize(1110, 740)
    p.show()
    yield p
    qtbot.waitUntil(lambda: not bridge.busy, timeout=60000)  # tasks end before the bridge shuts down


def open_run(qtbot, page, run):
    errors = []
    page.error.connect(lambda *a: errors.append(a))
    page.state.set_run_dir(run)
    qtbot.waitUntil(lambda: page.predictor is not None and not page._busy, timeout=60000)
    assert errors == []


def drop(page, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    page.dropEvent(event)


def test_a_dropped_image_is_predicted_with_sorted_probabilities(qtbot, page, image_run):
    open_run(qtbot, page, image_run)
    assert page.inputs.currentIndex() == INPUT_IMAGE and "model.safetensors" in page.status_label.text()
    picture = sorted((image_run.parent.parent / "images" / "square").glob("*.png"))[0]
    drop(page, picture)
    assert not page.image_input.choose_button.isEnabled()  # one prediction at a time
    qtbot.waitUntil(lambda: page.last_prediction is not None, timeout=30000)
    expected = load_predictor(image_run).predict_images([picture])[0]
    assert page.result.label.text() == expected.label
    values = [v for _, v in page.result.bars.scores]
    assert [n for n, _ in page.result.bars.scores] == list(expected.scores)  # highest first
    assert values == pytest.approx(list(expected.scores.values()), abs=1e-5)
    assert math.fsum(values) == pytest.approx(1.0, abs=1e-5)
    assert not page.image_input.drop_area.pixmap().isNull() and page.image_input.choose_button.isEnabled()


def test_images_dropped_while_busy_wait_their_turn(qtbot, page, image_run):
    pictures = sorted((image_run.parent.parent / "images" / "circle").glob("*.png"))[:2]
    page.state.set_run_dir(image_run)  # the model starts loading
    assert page.predict_file(pictures[0]) is True
    assert "next" in page.result.note.text()
    qtbot.waitUntil(lambda: page.last_prediction is not None, timeout=60000)
    assert page.image_input.path_label.text() == pictures[0].name
    drop(page, pictures[0])
    assert page.predict_file(pictures[1]) is True  # while the first prediction runs
    qtbot.waitUntil(lambda: page.image_input.path_label.text() == pictures[1].name and not page._busy, timeout=60000)
    expected = load_predictor(image_run).predict_images([pictures[1]])[0]
    assert page.result.label.text() == expected.label


def test_typed_text_is_classified(qtbot, page, tmp_path):
    from tests.factories import tiny_bert_dir

    model_dir = tiny_bert_dir(tmp_path / "bert")
    make_reviews_csv(tmp_path / "reviews.csv")
    run = train_run(
        tmp_path,
        {
            "task": {"kind": "text-classification"},
            "data": {"path": "reviews.csv", "max_length": 16},
            "model": {"name": str(model_dir), "freeze": "none"},
            "train": dict(TINY_TRAIN),
        },
    )
    open_run(qtbot, page, run)
    assert page.inputs.currentIndex() == INPUT_TEXT
    qtbot.keyClicks(page.text_edit, "the film was great and lovely")
    qtbot.mouseClick(page.predict_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.last_prediction is not None, timeout=30000)
    expected = load_predictor(run).predict_texts(["the film was great and lovely"])[0]
    assert page.result.label.text() == expected.label
    assert sorted(n for n, _ in page.result.bars.scores) == ["negative", "positive"]


def test_a_language_model_writes_on_from_the_prompt(qtbot, page, tmp_path):
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
    open_run(qtbot, page, run)
    assert page.inputs.currentIndex() == INPUT_PROMPT and not page.result.isVisible()
    page.generation.prompt.setPlainText("the dog")
    page.generation.temperature.setValue(0.0)
    page.generation.max_tokens.setValue(6)
    qtbot.mouseClick(page.generation.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(page.generation.generate_button.isEnabled, timeout=30000)
    text = page.generation.output.toPlainText()
    assert text.startswith("the dog") and len(text) > len("the dog")


def test_a_run_without_weights_says_so_and_the_next_run_loads(qtbot, page, image_run, tmp_path):
    empty = Path(shutil.copytree(image_run, tmp_path / "no-weights"))
    (empty / "model.safetensors").unlink()
    shutil.rmtree(empty / "checkpoints")
    (empty / "checkpoints").mkdir()
    errors = []
    page.error.connect(lambda *a: errors.append(a))
    page.state.set_run_dir(empty)
    qtbot.waitUntil(lambda: "No model to try" in page.status_label.text(), timeout=30000)
    assert "no trained weights" in page.status_label.text() and errors == []
    assert page.inputs.currentIndex() == INPUT_NONE
    open_run(qtbot, page, image_run)  # another run: its model replaces the failed attempt
    assert page.inputs.currentIndex() == INPUT_IMAGE
