"""ONNX int8 export and the ONNX Runtime session settings: an int8 classifier is verified by top-1 agreement with
the trained model on validation samples (figures reported), one that disagrees fails with its figures, and every
ONNX Runtime session the app makes gets the chosen options."""

from __future__ import annotations

import json
import shutil

import onnx
import onnxruntime as ort
import pytest

from finetune_gui.core.errors import ExportError
from finetune_gui.core.export import export_run, int8, verify_export
from finetune_gui.core.export.formats import default_formats, parse_formats, supported_formats
from finetune_gui.core.export.onnx import plain_attention, session
from finetune_gui.core.export.runtime import SPINNING_KEY, cpu_threads, session_options
from finetune_gui.core.export.source import load_source
from tests.unit.test_export import text_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    run = text_run(tmp_path_factory.mktemp("export-int8"))
    return run, export_run(run, ["onnx", "onnx-int8"])


def test_an_int8_text_classifier_is_verified_by_top1_agreement_and_reports_accuracy_size_and_speed(int8_export):
    run, report = int8_export
    fp32, q = report.results
    assert q.format == "onnx-int8" and q.path.name == "model.int8.onnx"
    assert q.passed, q.message
    figures = q.agreement
    assert figures["samples"] == 6  # the whole validation split of the tiny run (fewer than 256)
    assert figures["agreeing"] == 6 and q.top1_agreement == 1.0 >= int8.MIN_AGREEMENT
    assert figures["accuracy_int8"] - figures["accuracy_pytorch"] == pytest.approx(figures["accuracy_delta"])
    assert "6 of 6 validation samples; needs >= 99%" in q.message and "PyTorch" in q.message
    assert 0 < q.max_abs_diff < 0.05  # rounding to 8 bits moves the logits a little, not the predictions
    assert q.size_bytes < fp32.size_bytes == (report.folder / "model.onnx").stat().st_size
    assert q.ms > 0 and q.eager_ms > 0 and fp32.ms > 0
    saved = json.loads((report.folder / "verification.json").read_text())["results"][1]
    assert saved["agreement"]["samples"] == 6 and saved["size_bytes"] == q.size_bytes
    table = report.table()
    assert "onnx-int8" in table and "vs eager" in table and "kB" in table
    assert (
        "int8: model.int8.onnx (onnxruntime, int8 weights): top-1 agreement"
        in (report.folder / "MODEL_CARD.md").read_text()
    )


def test_an_int8_model_that_disagrees_with_the_trained_one_fails_verification_with_its_figures(int8_export, tmp_path):
    run, report = int8_export
    folder = tmp_path / "tampered"
    shutil.copytree(report.folder, folder)
    source = load_source(run)
    head = source.model.classifier
    head.weight.data.neg_()  # a two-class head with its sign flipped: every prediction swaps class
    head.bias.data.neg_()
    (folder / "model.int8.onnx").unlink()
    (folder / "model.onnx").unlink()
    int8.save(source, folder / "model.int8.onnx")
    again = verify_export(folder, save=False)
    bad = next(r for r in again.results if r.format == "onnx-int8")
    assert not bad.passed and not again.ok
    assert bad.agreement["agreeing"] < 6 and bad.top1_agreement < int8.MIN_AGREEMENT
    assert "does NOT keep the trained model's predictions" in bad.message and "needs >= 99%" in bad.message


def test_a_stricter_agreement_threshold_fails_the_same_int8_file(int8_export, monkeypatch):
    _, report = int8_export
    monkeypatch.setattr(int8, "MIN_AGREEMENT", 1.01)
    again = verify_export(report.folder, save=False)
    q = next(r for r in again.results if r.format == "onnx-int8")
    assert not q.passed and "100.0% (6 of 6 validation samples; needs >= 101%)" in q.message


def test_the_agreement_verdict_fails_below_the_threshold_and_gives_the_numbers():
    figures = {"agreement": 0.985, "agreeing": 197, "samples": 200}
    figures |= {"accuracy_pytorch": 0.9, "accuracy_int8": 0.885, "accuracy_delta": -0.015}
    passed, message = int8.verdict(figures, 0.2)
    assert not passed
    assert "98.5% (197 of 200" in message and "88.5% int8 vs 90.0% PyTorch (-1.5 points)" in message
    assert int8.verdict(dict(figures, agreement=0.99, agreeing=198), 0.2)[0]
    assert not int8.verdict({"agreement": 0.0, "agreeing": 0, "samples": 0}, 0.0)[0]  # nothing checked: no pass


def test_int8_is_offered_to_classifiers_only_and_never_made_unasked():
    assert "onnx-int8" in supported_formats("image-classification")
    assert "onnx-int8" in supported_formats("text-classification")
    assert "onnx-int8" not in default_formats("text-classification")
    for task in ("image-regression", "image-multilabel", "text-regression", "causal-lm"):
        assert "onnx-int8" not in supported_formats(task)
        with pytest.raises(ExportError, match="verified by top-1 agreement"):
            parse_formats("onnx,onnx-int8", task)


def test_session_options_use_every_usable_core_full_graph_optimisation_and_no_spinning_threads():
    options = session_options()
    assert options.intra_op_num_threads == cpu_threads() >= 1
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry(SPINNING_KEY) == "0"
    assert session_options(3).intra_op_num_threads == 3


def test_the_sessions_that_verify_and_predict_get_those_options(int8_export):
    _, report = int8_export
    for name in ("model.onnx", "model.int8.onnx"):
        used = session(report.folder / name).get_session_options()
        assert used.intra_op_num_threads == cpu_threads()
        assert used.get_session_config_entry(SPINNING_KEY) == "0"


def test_a_bert_graph_is_traced_with_plain_attention_and_the_model_keeps_its_own(int8_export):
    run, report = int8_export
    ops = {node.op_type for node in onnx.load(str(report.folder / "model.onnx")).graph.node}
    assert "Softmax" in ops and "IsNaN" not in ops  # no SDPA NaN guard in the graph
    source = load_source(run)
    model = source.model
    assert model.config._attn_implementation == "sdpa"
    with plain_attention(source.deployable):
        assert model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == "sdpa"


def test_predict_runs_the_int8_file_when_asked(int8_export):
    from finetune_gui.core.export.predict import load_export

    _, report = int8_export
    model = load_export(report.folder, "onnx-int8")
    assert model.backend == "onnx-int8" and model.describe().endswith("model.int8.onnx (onnxruntime, int8)")
    assert len(model.predict_texts(["a fine film", "dull"])) == 2
