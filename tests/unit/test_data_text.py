"""Text classification / regression data from CSV, TSV and JSONL."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data import build_data, scan_data
from finetune_gui.core.errors import DataError

WORDS = "good bad movie film great awful plot the a was is very not fun boring".split()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab=str(vocab))  # transformers 5 reads `vocab`, not `vocab_file`
    assert tok.convert_tokens_to_ids("good") != tok.unk_token_id
    return tok


def config(path: Path, kind: TaskKind = TaskKind.TEXT_CLASSIFICATION, **data) -> RunConfig:
    cfg = RunConfig.model_validate({"task": {"kind": kind.value}, "data": {"path": str(path), **data}})
    return cfg.with_base_dir(path.parent)


REVIEWS = [
    ("good movie", "pos"),
    ("great fun film", "pos"),
    ("very good plot", "pos"),
    ("the film is fun", "pos"),
    ("bad movie", "neg"),
    ("awful boring plot", "neg"),
    ("not fun", "neg"),
    ("the film was very bad", "neg"),
]


def write_csv(path: Path, rows, sep=",", header=("text", "label"), encoding="utf-8") -> Path:
    lines = [sep.join(header)] + [sep.join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_csv_classification_samples_and_padded_batches(tmp_path, tokenizer):
    b = build_data(
        config(write_csv(tmp_path / "r.csv", REVIEWS), val_fraction=0.25, test_fraction=0.0), tokenizer=tokenizer
    )
    assert b.labels == ["neg", "pos"] and b.class_counts == {"neg": 3, "pos": 3}
    assert (len(b.train), len(b.val), len(b.test)) == (6, 2, 0)
    s = b.train[0]
    assert s["input_ids"].dtype == torch.long and s["input_ids"][0] == tokenizer.cls_token_id
    assert torch.equal(s["attention_mask"], torch.ones_like(s["input_ids"]))
    assert isinstance(s["labels"], int)
    batch = b.collate_fn([b.train[k] for k in range(len(b.train))])
    lengths = [len(b.train[k]["input_ids"]) for k in range(len(b.train))]
    assert batch["input_ids"].shape == (6, max(lengths))
    assert batch["labels"].dtype == torch.long and batch["labels"].shape == (6,)
    short = lengths.index(min(lengths))
    assert batch["input_ids"][short, -1] == tokenizer.pad_token_id
    assert batch["attention_mask"][short].sum() == min(lengths)
    assert pickle.loads(pickle.dumps(b.train))[0]["input_ids"].tolist() == s["input_ids"].tolist()


def test_split_is_stratified_and_seeded(tmp_path, tokenizer):
    rows = [(f"good film {'very ' * i}", "pos") for i in range(10)] + [(f"bad {'very ' * i}", "neg") for i in range(10)]
    path = write_csv(tmp_path / "r.csv", rows)

    def val_ids(seed):
        b = build_data(config(path, split_seed=seed, val_fraction=0.2, test_fraction=0.2), tokenizer=tokenizer)
        assert sorted(b.val[k]["labels"] for k in range(len(b.val))) == [0, 0, 1, 1]
        return [b.val[k]["input_ids"].tolist() for k in range(len(b.val))]

    assert val_ids(3) == val_ids(3)
    assert val_ids(3) != val_ids(4)


def test_tsv_and_truncation_to_max_length(tmp_path, tokenizer):
    rows = [(" ".join(["good"] * 50), "pos"), ("bad", "neg"), ("fun", "pos"), ("boring", "neg")]
    b = build_data(
        config(write_csv(tmp_path / "r.tsv", rows, sep="\t"), max_length=8, val_fraction=0.0, test_fraction=0.0),
        tokenizer=tokenizer,
    )
    assert max(len(b.train[k]["input_ids"]) for k in range(4)) == 8


def test_jsonl_regression_labels_are_float_column(tmp_path, tokenizer):
    path = tmp_path / "r.jsonl"
    path.write_text(
        "\n".join(json.dumps({"review": t, "score": i / 2}) for i, (t, _) in enumerate(REVIEWS)), encoding="utf-8"
    )
    b = build_data(
        config(
            path,
            TaskKind.TEXT_REGRESSION,
            text_column="review",
            label_columns=["score"],
            val_fraction=0.0,
            test_fraction=0.0,
        ),
        tokenizer=tokenizer,
    )
    assert b.labels == [] and b.class_counts == {}
    batch = b.collate_fn([b.train[0], b.train[1]])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (2, 1)
    assert batch["labels"].flatten().tolist() == [0.0, 0.5]


def test_utf8_bom_is_accepted(tmp_path, tokenizer):
    path = write_csv(tmp_path / "bom.csv", REVIEWS, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    b = build_data(config(path), tokenizer=tokenizer)  # 'text' column found despite the BOM
    assert len(b.train) + len(b.val) + len(b.test) == 8


def test_non_utf8_file_names_file_line_and_fix(tmp_path, tokenizer):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ngood,pos\ncaf\u00e9 bad,neg\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv, line 3: not UTF-8.*byte offset 23.*UTF-8"):
        build_data(config(path), tokenizer=tokenizer)
    with pytest.raises(DataError, match="line 3"):
        scan_data(config(path))


def test_missing_column_lists_the_columns_that_exist(tmp_path, tokenizer):
    path = write_csv(tmp_path / "r.csv", REVIEWS, header=("sentence", "label"))
    with pytest.raises(DataError, match=r"'text' not found.*'sentence', 'label'.*data\.text_column"):
        build_data(config(path), tokenizer=tokenizer)


def test_empty_text_and_missing_label_rows_are_skipped_with_line_numbers(tmp_path, tokenizer):
    path = write_csv(tmp_path / "r.csv", [*REVIEWS[:4], ("", "pos"), ("bad film", ""), *REVIEWS[4:]])
    b = build_data(config(path), tokenizer=tokenizer)
    assert len(b.train) + len(b.val) + len(b.test) == 8
    assert [(p.line, p.reason.split(" ")[0]) for p in b.problems] == [(6, "empty"), (7, "no")]
    assert all(p.path == str(path) for p in b.problems)


def test_quoted_multiline_cells_keep_their_starting_line(tmp_path, tokenizer):
    path = tmp_path / "q.csv"
    path.write_text('text,label\n"good\nfilm",pos\nbad,neg\n"",neg\n', encoding="utf-8")
    b = build_data(config(path, val_fraction=0.0, test_fraction=0.0), tokenizer=tokenizer)
    assert len(b.train) == 2 and [p.line for p in b.problems] == [5]


def test_single_class_and_regression_text_labels_are_errors(tmp_path, tokenizer):
    one = write_csv(tmp_path / "one.csv", [("good", "pos"), ("fun", "pos")])
    with pytest.raises(DataError, match="at least two classes"):
        build_data(config(one), tokenizer=tokenizer)
    with pytest.raises(DataError, match=r"line 2: .*'pos'.*not a number"):
        build_data(config(one, TaskKind.TEXT_REGRESSION), tokenizer=tokenizer)


def test_scan_reports_columns_labels_and_suggests_the_task(tmp_path):
    path = write_csv(tmp_path / "r.csv", REVIEWS)
    report = scan_data(config(path))
    assert report.format == "csv" and report.columns == ["text", "label"]
    assert report.suggested_kind == TaskKind.TEXT_CLASSIFICATION
    assert report.labels == {"neg": 4, "pos": 4} and report.num_samples == 8
    numeric = write_csv(tmp_path / "n.csv", [(t, str(i * 0.7)) for i, (t, _) in enumerate(REVIEWS)])
    assert scan_data(config(numeric)).suggested_kind == TaskKind.TEXT_REGRESSION


def test_utf16_file_with_bom_is_read(tmp_path, tokenizer):
    path = write_csv(tmp_path / "u16.csv", REVIEWS, encoding="utf-16")
    report = scan_data(config(path))
    assert report.columns == ["text", "label"] and report.num_samples == 8
