"""core.export: every format of an image classifier, a BERT text classifier and a GPT-2 causal LM (LoRA) loads
back and gives the trained model's outputs on real validation samples; tampering is caught; nothing is
overwritten; no export file carries pickled code."""

from __future__ import annotations

import json
import pickletools
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from finetune_gui.core.errors import ExportError, RunStateError
from finetune_gui.core.export import FILES, export_run, verify_export
from finetune_gui.core.export.formats import default_formats
from finetune_gui.core.export.verify import TOLERANCES
from finetune_gui.core.inference import load_predictor
from tests.conftest import make_image_folder, make_reviews_csv
from tests.factories import TINY_TRAIN, image_sections, train_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def text_run(root: Path) -> Path:
    from tests.factories import tiny_bert_dir

    make_reviews_csv(root / "reviews.csv")
    model = tiny_bert_dir(root / "bert")
    return train_run(
        root,
        {
            "task": {"kind": "text-classification"},
            "data": {"path": "reviews.csv", "max_length": 16},
            "model": {"name": str(model), "freeze": "none"},
            "train": dict(TINY_TRAIN),
        },
    )


def lm_run(root: Path) -> Path:
    from tests.factories import tiny_gpt2_dir, tiny_text_corpus

    model = tiny_gpt2_dir(root / "gpt2")
    (root / "corpus.txt").write_text("\n%\n".join(tiny_text_corpus() * 3) + "\n", encoding="utf-8")
    return train_run(
        root,
        {
            "task": {"kind": "causal-lm"},
            "data": {"path": "corpus.txt", "max_length": 16, "val_fraction": 0.2, "test_fraction": 0.1},
            "model": {"name": str(model), "freeze": "none", "lora": {"enabled": True, "r": 4}},
            "train": dict(TINY_TRAIN, lr=5e-3),
        },
    )


def _exported(tmp_path_factory, name: str, make_run) -> tuple[Path, object, list[str]]:
    root = tmp_path_factory.mktemp(name)
    run = make_run(root)
    lines: list[str] = []
    report = export_run(
        run, default_formats(json.loads((run / "labels.json").read_text())["task"]), progress=lines.append
    )
    return run, report, lines


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    def make(root):
        make_image_folder(root / "images")
        return train_run(root, image_sections())

    return _exported(tmp_path_factory, "export-image", make)


@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    return _exported(tmp_path_factory, "export-text", text_run)


@pytest.fixture(scope="module")
def lm_export(tmp_path_factory):
    return _exported(tmp_path_factory, "export-lm", lm_run)


def assert_all_verified(report, formats):
    assert [r.format for r in report.results] == list(formats)
    for r in report.results:
        assert r.passed, r.message
        assert r.path.exists() and r.path.parent == report.folder
        rtol, atol = TOLERANCES[r.format]
        assert 0.0 <= r.max_abs_diff <= atol + rtol * 100, r  # logits of these tiny models stay far below 100
        assert len(r.batch_sizes) == 2 and r.batch_sizes[0] == 1 and r.batch_sizes[1] > 1
    assert report.ok


# ---------------------------------------------------------------- every format, every kind of model


def test_an_image_classifier_exports_to_every_image_format_and_each_matches_the_trained_model(image_export):
    run, report, lines = image_export
    assert_all_verified(report, ("torchscript", "onnx", "pt2", "safetensors"))
    assert report.folder.parent == run / "exports"
    assert all(r.top1_agreement == 1.0 for r in report.results)
    assert report.results[0].batch_sizes == [1, 8]  # the validation split has 9 images: 1 and 8 are checked
    assert any(line.startswith("exporting onnx") for line in lines) and lines[-1].startswith("export verified")


def test_the_onnx_file_alone_predicts_what_the_run_predicts(image_export):
    import onnxruntime as ort

    run, report, _ = image_export
    predictor = load_predictor(run, device="cpu")
    pictures = sorted((run.parent.parent / "images").rglob("*.png"))[:4]
    batch = predictor.image_tensor(pictures)
    session = ort.InferenceSession(str(report.folder / "model.onnx"), providers=["CPUExecutionProvider"])
    [name] = [i.name for i in session.get_inputs()]
    assert name == "images"
    onnx_logits = torch.from_numpy(session.run(None, {name: batch.numpy()})[0])
    torch.testing.assert_close(onnx_logits, predictor.outputs(batch), rtol=1e-3, atol=1e-4)


def test_a_bert_text_classifier_exports_to_every_format_including_a_hugging_face_folder(text_export):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run, report, _ = text_export
    assert_all_verified(report, ("torchscript", "onnx", "pt2", "safetensors", "hf"))
    assert all(r.top1_agreement == 1.0 for r in report.results)
    hf = report.folder / "hf"
    model = AutoModelForSequenceClassification.from_pretrained(hf, local_files_only=True)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    tokenizer = AutoTokenizer.from_pretrained(hf)
    assert (
        tokenizer("the film was great")["input_ids"]
        == AutoTokenizer.from_pretrained(report.folder / "tokenizer")("the film was great")["input_ids"]
    )


def test_text_verification_covers_two_sequence_lengths_and_padding(text_export):
    from finetune_gui.core.export.source import load_source

    run, _, _ = text_export
    source = load_source(run)
    (ids1, mask1), (ids8, mask8) = source.batches
    assert ids1.shape[0] == 1 and ids8.shape[1] == 16  # batch N padded to data.max_length
    assert ids1.shape[1] < ids8.shape[1] and (mask8 == 0).any() and bool(mask1.all())


def test_a_causal_lm_with_lora_exports_its_logits_graph_with_the_adapters_merged(lm_export):
    from transformers import AutoModelForCausalLM

    run, report, _ = lm_export
    assert_all_verified(report, ("torchscript", "onnx", "pt2", "safetensors", "hf"))
    assert all(r.top1_agreement is None for r in report.results)  # it means nothing for an LM
    hf = report.folder / "hf"
    assert not (hf / "adapter_config.json").exists()  # merged: a plain transformers model
    model = AutoModelForCausalLM.from_pretrained(hf, local_files_only=True)
    assert not hasattr(model, "peft_config")
    card = (report.folder / "MODEL_CARD.md").read_text()
    assert "merged" in card and "logits graph only" in card
    assert json.loads((report.folder / "export.json").read_text())["lora_merged"] is True
    # the merge itself is checked once against the trained model with its adapters
    assert report.merge["passed"] and 0 < report.merge["max_abs_diff"] < 1e-5
    assert "LoRA merge: the merged weights give the trained model's outputs" in card
    assert json.loads((report.folder / "verification.json").read_text())["lora_merge"]["passed"] is True


def test_a_lora_merge_outside_its_tolerance_fails_every_format(lm_export, tmp_path, monkeypatch):
    from finetune_gui.core.export import verify

    run, first, _ = lm_export
    assert first.merge["max_abs_diff"] > 0  # merging rounds the weights, so a zero tolerance must fail
    monkeypatch.setattr(verify, "MERGE_TOLERANCE", (0.0, 0.0))
    report = export_run(run, ["safetensors"], output=tmp_path / "out")
    [result] = report.results
    assert not report.ok and not result.passed and not report.merge["passed"]
    assert "matches the merged model" in result.message  # the file is a faithful copy of the merged model...
    assert result.message.endswith("EXCEEDS rtol 0, atol 0): do not deploy it")  # ...but the merge was not


# ---------------------------------------------------------------- what lies next to the artefacts


def test_labels_preprocessing_card_and_verification_lie_next_to_the_artefacts(image_export):
    run, report, _ = image_export
    folder = report.folder
    assert json.loads((folder / "labels.json").read_text()) == json.loads((run / "labels.json").read_text())
    prep = json.loads((folder / "preprocessing.json").read_text())
    assert prep["image_size"] == 32 and prep["center_crop"] == 32 and prep["resize_shorter_side"] == 36
    assert prep["mean"] == pytest.approx([0.485, 0.456, 0.406]) and prep["std"] == pytest.approx([0.229, 0.224, 0.225])
    card = (folder / "MODEL_CARD.md").read_text()
    evaluation = json.loads((run / "evaluation.json").read_text())
    for text in (
        "image-classification",
        "resnet18",
        "Frozen layers: nothing frozen",
        "| learning rate | 0.001 |",
        f"| accuracy | {evaluation['accuracy']:.4f} |",
        "circle, square, stripes",
        "model.onnx",
    ):
        assert text in card, text
    saved = json.loads((folder / "verification.json").read_text())
    assert saved["ok"] is True and [r["format"] for r in saved["results"]] == [r.format for r in report.results]
    assert saved["results"][1]["max_abs_diff"] == pytest.approx(report.results[1].max_abs_diff)


def test_text_exports_carry_their_tokenizer_and_its_settings(text_export):
    _, report, _ = text_export
    prep = json.loads((report.folder / "preprocessing.json").read_text())
    assert prep["kind"] == "text" and prep["max_length"] == 16 and prep["tokenizer"] == "tokenizer"
    assert (report.folder / "tokenizer" / "tokenizer.json").exists()


def _pickle_globals(data: bytes) -> set[str]:
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.add(".".join(strings[-2:]))
    return found


def _looks_pickled(data: bytes) -> bool:
    return len(data) > 2 and data[0] == 0x80 and data[1] in range(2, 6)


def pickled_code_in(folder: Path) -> list[str]:
    """Every pickle in the folder (plain files and zip members) referencing anything but tensor rebuilding,
    containers and TorchScript's own compiled classes (__torch__.*, code that lives in the archive as TorchScript)."""
    allowed = ("torch._utils.", "torch.jit._pickle.", "collections.OrderedDict", "__torch__.")
    allowed_exact = {
        f"torch.{t}Storage"
        for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Bool", "Byte", "Char", "Short")
    }
    bad = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        members: list[tuple[str, bytes]] = []
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                members = [(f"{path.name}:{n}", z.read(n)) for n in z.namelist()]
        else:
            members = [(path.name, path.read_bytes())]
        for name, data in members:
            if not _looks_pickled(data):
                continue
            for ref in _pickle_globals(data):
                if not (ref.startswith(allowed) or ref in allowed_exact):
                    bad.append(f"{name}: {ref}")
    return bad


def test_no_export_file_holds_pickled_code(image_export, text_export, lm_export):
    for _, report, _ in (image_export, text_export, lm_export):
        assert pickled_code_in(report.folder) == []


def test_the_pickle_scan_would_catch_pickled_code(tmp_path):
    import pickle

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(print, protocol=4))
    with zipfile.ZipFile(tmp_path / "archive.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Path("x"), protocol=2))
    assert sorted(pickled_code_in(tmp_path)) == [
        "archive.pt:archive/data.pkl: pathlib.PosixPath",
        "evil.pt: builtins.print",
    ]


# ---------------------------------------------------------------- tampering and damage


def test_a_tampered_artefact_fails_verification_naming_the_file(text_export, tmp_path):
    import onnx
    from onnx import numpy_helper
    from safetensors.torch import load_file, save_file

    _, report, _ = text_export
    folder = tmp_path / "copy"
    shutil.copytree(report.folder, folder)
    # ONNX: scale every weight matrix of the classifier
    model = onnx.load(str(folder / "model.onnx"))
    for init in model.graph.initializer:
        if "classifier" in init.name:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 3.0, init.name))
    onnx.save(model, str(folder / "model.onnx"))
    # safetensors: change the head's bias
    weights = load_file(str(folder / "model.safetensors"))
    weights["classifier.bias"] = weights["classifier.bias"] + 1.0
    save_file(weights, str(folder / "model.safetensors"))
    # TorchScript: cut the file in half
    ts = folder / "model.torchscript.pt"
    ts.write_bytes(ts.read_bytes()[: ts.stat().st_size // 2])

    checked = verify_export(folder)
    by_format = {r.format: r for r in checked.results}
    assert not checked.ok
    assert (
        not by_format["onnx"].passed
        and "model.onnx does NOT give the trained model's outputs" in by_format["onnx"].message
    )
    assert "exceeds the tolerance" in by_format["onnx"].message
    assert not by_format["safetensors"].passed and by_format["safetensors"].max_abs_diff > 0.5
    assert not by_format["torchscript"].passed
    assert "cannot load model.torchscript.pt with torch.jit.load" in by_format["torchscript"].message
    assert by_format["pt2"].passed and by_format["hf"].passed  # untouched files still check out
    assert json.loads((folder / "verification.json").read_text())["ok"] is False


def test_an_untouched_export_verifies_again(text_export):
    _, report, _ = text_export
    again = verify_export(report.folder, save=False)
    assert again.ok and [r.max_abs_diff for r in again.results] == pytest.approx(
        [r.max_abs_diff for r in report.results], abs=1e-6
    )


# ---------------------------------------------------------------- refusals and failures


def test_an_existing_folder_with_files_is_never_overwritten(text_export, tmp_path):
    run, _, _ = text_export
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="already holds files"):
        export_run(run, ["safetensors"], output=target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and (target / "notes.txt").read_text() == "keep me"


def test_an_empty_existing_folder_receives_the_export(text_export, tmp_path):
    run, _, _ = text_export
    target = tmp_path / "empty"
    target.mkdir()
    report = export_run(run, "safetensors", output=target)
    assert report.ok and report.folder == target.resolve() and (target / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_formats_the_task_cannot_have_are_refused_with_the_ones_it_can(image_export, tmp_path):
    run, _, _ = image_export
    with pytest.raises(
        ExportError, match="'hf' does not fit a image-classification.*torchscript, onnx, onnx-int8, pt2, safetensors"
    ):
        export_run(run, ["onnx", "hf"], output=tmp_path / "x")
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_run(run, "tflite", output=tmp_path / "x")
    with pytest.raises(ExportError, match="no export format given"):
        export_run(run, "", output=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_folder_that_is_not_a_run_is_refused_clearly(tmp_path):
    with pytest.raises(ExportError, match="not a run folder"):
        export_run(tmp_path, ["onnx"])
    with pytest.raises(ExportError, match="not an export folder"):
        verify_export(tmp_path)


def test_a_run_without_weights_is_refused(text_export, tmp_path):
    run, _, _ = text_export
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("exports", "checkpoints", "model.safetensors"))
    (copy / "checkpoints").mkdir()
    with pytest.raises(RunStateError, match="no trained weights"):
        export_run(copy, ["onnx"])
    assert not (copy / "exports").exists() or not any((copy / "exports").iterdir())


def test_one_format_failing_is_reported_and_the_others_still_export(text_export, tmp_path, monkeypatch):
    from finetune_gui.core.export import torchscript

    def broken(source, path):
        path.write_bytes(b"half")
        raise RuntimeError("tracer exploded")

    monkeypatch.setattr(torchscript, "save", broken)
    run, _, _ = text_export
    report = export_run(run, ["torchscript", "safetensors"], output=tmp_path / "out")
    ts, st = report.results
    assert not report.ok and not ts.passed and st.passed
    assert ts.message == "export to torchscript failed (RuntimeError): tracer exploded" and "Traceback" in ts.details
    assert not (tmp_path / "out" / FILES["torchscript"]).exists()  # the half-written file was removed
    assert json.loads((tmp_path / "out" / "export.json").read_text())["formats"] == ["safetensors"]


def test_an_interrupted_export_leaves_no_folder_behind(text_export, tmp_path, monkeypatch):
    from finetune_gui.core.export import weights

    def interrupted(source, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(weights, "save", interrupted)
    run, _, _ = text_export
    with pytest.raises(KeyboardInterrupt):
        export_run(run, ["safetensors"], output=tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # neither the export nor its temporary folder


def test_two_default_exports_get_two_folders(text_export):
    run, first, _ = text_export
    second = export_run(run, ["safetensors"])
    assert second.folder != first.folder and second.folder.parent == run / "exports"
    assert (first.folder / "model.onnx").exists()  # the first one is untouched
