"""core.inference: a trained run predicts new inputs and re-scores its own test split exactly as it was evaluated."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from finetune_gui.core.errors import RunStateError
from finetune_gui.core.inference import load_predictor
from finetune_gui.core.samples import sample_predictions
from tests.conftest import make_image_folder, make_reviews_csv
from tests.factories import TINY_TRAIN, image_sections, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("image")
    make_image_folder(root / "images")
    return train_run(root, image_sections())


@pytest.fixture(scope="module")
def manifest_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("manifests")
    make_image_folder(root / "images")
    pics = sorted((root / "images").rglob("*.png"))
    ml, reg = ["path,label,label2"], ["path,value"]
    for i, p in enumerate(pics):
        rel = p.relative_to(root).as_posix()
        ml.append(f"{rel},{p.parent.name},{'odd' if i % 2 else ''}")
        reg.append(f"{rel},{(i % 7) / 7:.3f}")
    (root / "ml.csv").write_text("\n".join(ml) + "\n")
    (root / "reg.csv").write_text("\n".join(reg) + "\n")
    return root


def test_image_predictions_reproduce_the_runs_confusion_matrix_and_accuracy(image_run):
    evaluation = json.loads((image_run / "evaluation.json").read_text())
    samples = sample_predictions(image_run, "test")
    assert samples.split == "test" and samples.labels == ["circle", "square", "stripes"]
    assert len(samples.records) == evaluation["num_samples"]
    assert samples.confusion_matrix() == evaluation["confusion_matrix"]
    correct = sum(r.true == r.predicted for r in samples.records)
    assert correct / len(samples.records) == pytest.approx(evaluation["accuracy"])
    for r in samples.records:
        assert Path(r.source).is_file() and Path(r.source).parent.name == r.true
        assert math.fsum(r.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert list(r.scores.values()) == sorted(r.scores.values(), reverse=True)
        assert r.loss >= 0
    cell = samples.in_cell(0, samples.records[0].pred_index)
    assert cell and all(r.true_index == 0 and r.pred_index == samples.records[0].pred_index for r in cell)
    losses = [r.loss for r in samples.top_loss(5)]
    assert losses == sorted(losses, reverse=True) and losses[0] == max(r.loss for r in samples.records)


def test_predicting_files_and_pil_images_gives_the_same_answer_as_the_split(image_run):
    from PIL import Image

    samples = sample_predictions(image_run, "test")
    predictor = load_predictor(image_run)
    assert predictor.weights_source == "model.safetensors"
    paths = [r.source for r in samples.records]
    by_path = predictor.predict_images(paths)
    assert [p.label for p in by_path] == [r.predicted for r in samples.records]
    pil = predictor.predict_images([Image.open(paths[0]).convert("RGBA")])  # any mode is turned into RGB
    assert pil[0].label == by_path[0].label
    assert pil[0].scores == pytest.approx(by_path[0].scores, abs=1e-4)


def test_multilabel_scores_are_one_sigmoid_per_label(manifest_root):
    run = train_run(
        manifest_root,
        {
            "task": {"kind": "image-multilabel"},
            "data": {"path": "ml.csv", "image_size": 32, "label_columns": ["label", "label2"]},
            "model": {"name": "resnet18", "allow_random_init": True, "freeze": "head-only"},
            "train": dict(TINY_TRAIN, epochs=1),
        },
    )
    predictor = load_predictor(run)
    pics = sorted((manifest_root / "images").rglob("*.png"))[:3]
    preds = predictor.predict_images(pics)
    for p in preds:
        assert sorted(p.scores) == ["circle", "odd", "square", "stripes"]
        assert all(0.0 <= v <= 1.0 for v in p.scores.values())
        assert set(p.labels) == {k for k, v in p.scores.items() if v >= 0.5}
    samples = sample_predictions(run, "test")
    assert samples.records and all(r.true for r in samples.records)  # every image has at least one true label


def test_regression_predicts_a_value_and_the_split_matches_the_runs_mae(manifest_root):
    run = train_run(
        manifest_root,
        {
            "task": {"kind": "image-regression"},
            "data": {"path": "reg.csv", "image_size": 32, "label_columns": ["value"]},
            "model": {"name": "resnet18", "allow_random_init": True, "freeze": "head-only"},
            "train": dict(TINY_TRAIN, epochs=1),
        },
    )
    predictor = load_predictor(run)
    [pred] = predictor.predict_images([sorted((manifest_root / "images").rglob("*.png"))[0]])
    assert pred.scores == {} and isinstance(pred.value, float) and pred.label == f"{pred.value:.4g}"
    samples = sample_predictions(run, "test")
    evaluation = json.loads((run / "evaluation.json").read_text())
    mae = sum(abs(r.pred_value - r.true_value) for r in samples.records) / len(samples.records)
    assert mae == pytest.approx(evaluation["mae"], rel=1e-4)
    ours = [
        v
        for r in sorted(samples.records, key=lambda r: (r.true_value, r.pred_value))
        for v in (r.true_value, r.pred_value)
    ]
    theirs = [v for pair in sorted(evaluation["scatter"]) for v in pair]
    assert ours == pytest.approx(theirs, rel=1e-4)  # the same (true, predicted) points as the run's scatter


def test_text_classification_shows_the_original_texts_and_matches_the_run(tmp_path):
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
    evaluation = json.loads((run / "evaluation.json").read_text())
    samples = sample_predictions(run)
    assert samples.confusion_matrix() == evaluation["confusion_matrix"]
    originals = (tmp_path / "reviews.csv").read_text().splitlines()
    for r in samples.records:
        assert f"{r.source},{r.true}" in originals  # the text as written in the file, with its true label
    predictor = load_predictor(run)
    preds = predictor.predict_texts([r.source for r in samples.records])
    assert [p.label for p in preds] == [r.predicted for r in samples.records]
    assert all(math.fsum(p.scores.values()) == pytest.approx(1.0, abs=1e-5) for p in preds)
    with pytest.raises(RunStateError, match="not images"):
        predictor.predict_images([tmp_path / "x.png"])


def test_causal_lm_generates_text_and_reports_the_runs_perplexity(tmp_path):
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
    predictor = load_predictor(run)
    text = predictor.generate("the cat", max_new_tokens=8, temperature=0)
    assert isinstance(text, str) and text.strip()
    assert predictor.generate("the cat", 8, 0) == text  # greedy is repeatable
    assert isinstance(predictor.generate("", 5, 1.0, seed=1), str)
    samples = sample_predictions(run)
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert samples.records == [] and samples.perplexity == pytest.approx(evaluation["perplexity"])
    with pytest.raises(RunStateError, match="generate"):
        predictor.predict_texts(["hello"])


def test_a_missing_or_damaged_run_gives_a_clear_error(image_run, tmp_path):
    with pytest.raises(RunStateError, match="not a run folder"):
        load_predictor(tmp_path / "nowhere")

    copy = Path(shutil.copytree(image_run, tmp_path / "copy"))
    (copy / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(RunStateError, match="damaged"):
        load_predictor(copy)

    (copy / "model.safetensors").unlink()  # a stopped run: the best checkpoint is used
    assert load_predictor(copy).weights_source == "checkpoints/best.safetensors"

    shutil.rmtree(copy / "checkpoints")
    (copy / "checkpoints").mkdir()
    with pytest.raises(RunStateError, match="no trained weights"):
        load_predictor(copy)

    (copy / "labels.json").unlink()
    with pytest.raises(RunStateError, match="labels.json"):
        load_predictor(copy)


def test_loading_a_runs_model_leaves_the_temp_files_of_a_write_under_way(image_run):
    from finetune_gui.core.run_model import load_run_model
    from finetune_gui.files import TMP_PREFIX

    live = image_run / f"{TMP_PREFIX}data_problems.json.being-written"  # a resume writing in the same folder
    live.write_text("[]")
    try:
        load_run_model(image_run)  # what Evaluate and Try it do while the run goes on
        assert live.exists(), "a reader removed a file the run was about to rename into place"
    finally:
        live.unlink(missing_ok=True)
