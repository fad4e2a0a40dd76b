"""Case 12: text data with non-UTF-8 bytes, a BOM, empty lines, very long texts, missing labels and a label
column of mixed types: each is refused with its line, read correctly, or skipped and listed; a run finishes."""

from __future__ import annotations

import json

import pytest

from finetune_gui.config import TaskKind, validate_dict
from finetune_gui.core.data import scan_data
from finetune_gui.core.data.text import build_text_data, collect_text
from finetune_gui.core.errors import DataError
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import EventLog
from tests.factories import tiny_bert_dir


def _config(path, kind="text-classification", **extra):
    return validate_dict({"task": {"kind": kind}, "data": {"path": str(path), **extra.pop("data", {})}, **extra})


def _rows(n=12):
    return [("a good film" if i % 2 else "a bad film", "positive" if i % 2 else "negative") for i in range(n)]


def test_non_utf8_bytes_are_refused_naming_the_line_and_byte(tmp_path):
    f = tmp_path / "t.csv"
    f.write_bytes(b"text,label\na fine film,positive\nun film tr\xe8s beau,positive\n")
    for kind in (TaskKind.TEXT_CLASSIFICATION,):
        with pytest.raises(DataError) as err:
            collect_text(_config(f), kind)
        assert "line 3" in str(err.value) and "0xe8" in str(err.value) and "UTF-8" in str(err.value)
    with pytest.raises(DataError, match="line 3"):
        scan_data(_config(f))


@pytest.mark.parametrize(
    "encoding,bom", [("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")]
)
def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path, encoding, bom):
    f = tmp_path / "t.csv"
    text = "text,label\n" + "".join(f"{t},{y}\n" for t, y in _rows())
    f.write_bytes(bom + text.encode(encoding))
    rec = collect_text(_config(f), TaskKind.TEXT_CLASSIFICATION)
    assert rec.columns == ["text", "label"]
    assert len(rec.texts) == 12 and not rec.problems


def test_empty_and_blank_lines_are_skipped_quietly(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("text,label\n\n" + "".join(f"{t},{y}\n\n   \n" for t, y in _rows()) + "\n\n")
    rec = collect_text(_config(f), TaskKind.TEXT_CLASSIFICATION)
    assert len(rec.texts) == 12 and not rec.problems
    j = tmp_path / "t.jsonl"
    j.write_text("\n\n".join(json.dumps({"text": t, "label": y}) for t, y in _rows()) + "\n   \n")
    rec = collect_text(_config(j), TaskKind.TEXT_CLASSIFICATION)
    assert len(rec.texts) == 12 and not rec.problems


def test_missing_labels_and_texts_skip_the_row_and_are_listed_with_their_lines(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in _rows()) + "no label here,\n,negative\n")
    rec = collect_text(_config(f), TaskKind.TEXT_CLASSIFICATION)
    assert len(rec.texts) == 12
    reasons = {p.line: p.reason for p in rec.problems}
    assert "no label" in reasons[14] and "empty text" in reasons[15]


def test_a_label_column_of_mixed_json_types_reads_one_value_one_way(tmp_path):
    rows = [
        {"text": "a", "label": 1},
        {"text": "b", "label": "1"},
        {"text": "c", "label": 1.0},
        {"text": "d", "label": True},
        {"text": "e", "label": "true"},
        {"text": "f", "label": None},
        {"text": "g", "label": [1, 2]},
        {"text": "h", "label": {"a": 1}},
        {"text": ["x"], "label": 0},
        {"text": 5, "label": 0},
    ]
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rec = collect_text(_config(f), TaskKind.TEXT_CLASSIFICATION)
    assert rec.texts == ["a", "b", "c", "d", "e", "5"]
    assert rec.targets == ["1", "1", "1", "true", "true", "0"]  # 1, "1" and 1.0 are one class
    reasons = {p.line: p.reason for p in rec.problems}
    assert "no label" in reasons[6]
    assert "holds a list" in reasons[7] and "holds an object" in reasons[8] and "'text' holds a list" in reasons[9]


def test_mixed_types_in_a_regression_label_column_name_the_line_that_is_not_a_number(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text(
        "\n".join(json.dumps({"text": f"t{i}", "label": v}) for i, v in enumerate([1, 2.5, "3.5", -1e3, True])) + "\n"
    )
    with pytest.raises(DataError) as err:
        collect_text(_config(f, kind="text-regression"), TaskKind.TEXT_REGRESSION)
    assert "line 5" in str(err.value) and "'true'" in str(err.value) and "not a number" in str(err.value)
    f.write_text("\n".join(json.dumps({"text": f"t{i}", "label": v}) for i, v in enumerate([1, 2.5, "3.5", -1e3])))
    assert collect_text(_config(f, kind="text-regression"), TaskKind.TEXT_REGRESSION).targets == [1.0, 2.5, 3.5, -1e3]


def test_very_long_texts_are_cut_to_max_length(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir(tmp_path)), local_files_only=True)
    f = tmp_path / "t.csv"
    long_text = " ".join(["the film was great and the story was good"] * 20_000)  # ~180k words
    f.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in _rows()) + f"{long_text},positive\n")
    data = build_text_data(_config(f, data={"max_length": 64, "val_fraction": 0.0, "test_fraction": 0.0}), tok)
    lengths = [len(data.train[i]["input_ids"]) for i in range(len(data.train))]
    assert max(lengths) == 64 and len(lengths) == 13


def test_a_file_with_every_text_hazard_still_trains_and_lists_what_it_skipped(tmp_path):
    model = tiny_bert_dir(tmp_path, num_labels=2)
    f = tmp_path / "t.csv"
    long_text = " ".join(["a good film with a great story"] * 3000)
    body = "".join(f"{t},{y}\n\n" for t, y in _rows(16)) + f"{long_text},positive\nno label,\n,negative\n"
    f.write_bytes(b"\xef\xbb\xbf" + ("text,label\n" + body).encode("utf-8"))
    config = _config(
        f, model={"name": str(model), "freeze": "none"}, train={"epochs": 1, "batch_size": 8}, data={"max_length": 32}
    )
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    assert result.status == "completed", log.events[-1]
    problems = json.loads((result.run_dir / "data_problems.json").read_text())
    assert {p["line"] for p in problems} == {35, 36}  # header 1, rows and blank lines 2-33, long text 34
