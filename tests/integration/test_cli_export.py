"""`finetune-gui export` and `finetune-gui predict` end to end: an export folder predicts what its run predicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_gui.cli import EXIT_DATA, EXIT_EXPORT, EXIT_OK, EXIT_RUN, EXIT_VERIFY, main
from tests.conftest import make_image_folder
from tests.factories import image_sections, train_run
from tests.unit.test_export import lm_run, text_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli-image")
    make_image_folder(root / "images")
    return train_run(root, image_sections())


@pytest.fixture(scope="module")
def text_run_dir(tmp_path_factory) -> Path:
    return text_run(tmp_path_factory.mktemp("cli-text"))


@pytest.fixture(scope="module")
def lm_run_dir(tmp_path_factory) -> Path:
    return lm_run(tmp_path_factory.mktemp("cli-lm"))


def predictions(capsys, *argv) -> dict:
    capsys.readouterr()
    assert main(["predict", *map(str, argv), "--json"]) == EXIT_OK
    return json.loads(capsys.readouterr().out)


def test_export_prints_the_verification_table_and_predict_uses_the_exported_file(image_run, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(image_run), "--format", "torchscript", "--output", str(out)]) == EXIT_OK
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[0].split() == [
        "format",
        "max",
        "abs",
        "diff",
        "top-1",
        "agree",
        "batches",
        "size",
        "vs",
        "eager",
        "result",
    ]
    row = table[2].split()
    assert row[0] == "torchscript" and row[3] == "1,8" and row[5] in ("MB", "kB") and row[-2:] == ["-", "pass"]
    assert "exporting torchscript" in captured.err and f"export folder: {out}" in captured.out

    pictures = sorted((image_run.parent.parent / "images").rglob("*.png"))[::7]
    from_export = predictions(capsys, out, *pictures)
    from_run = predictions(capsys, image_run, *pictures)
    assert from_export["backend"] == "torchscript" and from_run["backend"] == "eager"  # preprocessing.json at work
    assert from_export["task"] == "image-classification"
    assert [p["input"] for p in from_export["predictions"]] == [str(p) for p in pictures]
    for a, b in zip(from_export["predictions"], from_run["predictions"]):
        assert set(a) == {"input", "label", "scores", "value", "labels"}
        assert a["label"] == b["label"] and list(a["scores"]) == list(b["scores"])
        assert list(a["scores"].values()) == pytest.approx(list(b["scores"].values()), abs=1e-5)


def test_text_export_predicts_lines_from_stdin_like_the_run(text_run_dir, tmp_path, capsys, monkeypatch):
    import io

    out = tmp_path / "export"
    assert main(["export", str(text_run_dir), "--format", "onnx,hf", "--output", str(out), "--quiet"]) == EXIT_OK
    texts = ["the film was great and lovely", "the film was dull"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts) + "\n\n"))
    from_export = predictions(capsys, out, "-")
    from_hf = predictions(capsys, out, *texts, "--backend", "hf")
    from_run = predictions(capsys, text_run_dir, *texts)
    assert from_export["backend"] == "onnx"  # preferred when the export has it
    assert [p["input"] for p in from_export["predictions"]] == texts
    for a, b, c in zip(from_export["predictions"], from_hf["predictions"], from_run["predictions"]):
        assert a["label"] == b["label"] == c["label"] and a["label"] in ("negative", "positive")
        assert a["scores"][a["label"]] == pytest.approx(c["scores"][c["label"]], abs=1e-5)
    assert from_hf["backend"] == "hf"


def test_int8_is_exported_with_a_flag_and_predicts_the_runs_labels(text_run_dir, tmp_path, capsys):
    out = tmp_path / "int8"
    assert main(["export", str(text_run_dir), "--format", "onnx", "--int8", "--output", str(out), "--quiet"]) == EXIT_OK
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    rows = {cells[0]: cells for cells in lines if cells and cells[0] in ("onnx", "onnx-int8")}
    assert set(rows) == {"onnx", "onnx-int8"} and rows["onnx-int8"][-1] == "pass" and rows["onnx-int8"][2] == "100.0%"
    texts = ["the film was great and lovely", "the film was dull"]
    from_int8 = predictions(capsys, out, *texts, "--backend", "onnx-int8")
    from_run = predictions(capsys, text_run_dir, *texts)
    assert from_int8["backend"] == "onnx-int8"
    assert [p["label"] for p in from_int8["predictions"]] == [p["label"] for p in from_run["predictions"]]


def test_a_causal_lm_export_writes_the_same_greedy_text_as_its_run(lm_run_dir, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(lm_run_dir), "--format", "torchscript", "--output", str(out), "--quiet"]) == EXIT_OK
    from_export = predictions(capsys, out, "the cat", "--max-new-tokens", "8")
    from_run = predictions(capsys, lm_run_dir, "the cat", "--max-new-tokens", "8")
    assert from_export["backend"] == "torchscript" and from_export["task"] == "causal-lm"
    [a], [b] = from_export["predictions"], from_run["predictions"]
    assert a["input"] == "the cat" and set(a) == {"input", "text"}
    assert a["text"] == b["text"]


def test_a_path_that_is_not_a_run_is_named_with_what_to_do(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere"), "--format", "onnx"]) == EXIT_EXPORT
    assert (
        "nowhere: not a run folder (config.toml missing); pick the folder a run was saved to" in capsys.readouterr().err
    )
    assert main(["predict", str(tmp_path), "x.png"]) == EXIT_RUN
    assert "not a run folder" in capsys.readouterr().err


def test_refusals_exit_9_and_leave_existing_files_alone(image_run, tmp_path, capsys):
    assert main(["export", str(image_run), "--format", "hf"]) == EXIT_EXPORT
    assert "does not fit a image-classification model" in capsys.readouterr().err
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "model.onnx").write_text("mine")
    assert main(["export", str(image_run), "--format", "onnx", "--output", str(taken)]) == EXIT_EXPORT
    assert "already holds files" in capsys.readouterr().err and (taken / "model.onnx").read_text() == "mine"


def test_a_failed_verification_exits_10_naming_the_formats(text_run_dir, tmp_path, capsys, monkeypatch):
    from finetune_gui.core.export import verify

    real = verify.reference_outputs
    monkeypatch.setattr(verify, "reference_outputs", lambda source: [t + 1.0 for t in real(source)])
    assert (
        main(["export", str(text_run_dir), "--format", "torchscript", "--output", str(tmp_path / "x"), "--quiet"])
        == EXIT_VERIFY
    )
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "exceeds the tolerance" in captured.out
    assert "verification failed for torchscript; do not deploy those files" in captured.err

    assert main(["predict", str(tmp_path / "x"), "the film was great"]) == EXIT_EXPORT  # a failed file is not used
    assert "every runnable artefact failed verification (torchscript)" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "x"), "the film was great", "--backend", "torchscript"]) == EXIT_OK
    assert "warning: model.torchscript.pt FAILED verification" in capsys.readouterr().err


def test_predict_names_a_missing_or_broken_image_and_an_empty_text(image_run, text_run_dir, tmp_path, capsys):
    assert main(["predict", str(image_run), "nothere.png"]) == EXIT_DATA
    assert "nothere.png: no such image file" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["predict", str(image_run), str(broken)]) == EXIT_DATA
    assert f"{broken}: not a readable image" in capsys.readouterr().err
    assert main(["predict", str(text_run_dir), "  "]) == EXIT_DATA
    assert "empty text" in capsys.readouterr().err
