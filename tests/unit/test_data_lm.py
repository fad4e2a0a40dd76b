"""Causal-LM data: documents → tokens + eos → fixed-length blocks; padding labelled -100."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data import build_data, scan_data
from finetune_gui.core.data.lm import split_documents
from finetune_gui.core.errors import DataError

WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab=str(vocab))
    tok.eos_token = "[SEP]"
    assert tok.convert_tokens_to_ids("w3") == 8 and tok.eos_token_id == 3
    return tok


def config(path: Path, **data) -> RunConfig:
    cfg = RunConfig.model_validate({"task": {"kind": TaskKind.CAUSAL_LM.value}, "data": {"path": str(path), **data}})
    return cfg.with_base_dir(path.parent)


def all_blocks(bundle) -> list[list[int]]:
    blocks = []
    for ds in (bundle.train, bundle.val, bundle.test):
        blocks += [(ds.spans[k][0], ds[k]["input_ids"].tolist()) for k in range(len(ds))]
    return [ids for _, ids in sorted(blocks)]


def ids(words: str) -> list[int]:
    return [5 + int(w[1:]) for w in words.split()]


def test_fortune_file_becomes_blocks_of_max_length_with_eos_between_documents(tmp_path, tokenizer):
    docs = [" ".join(f"w{i}" for i in range(k, k + 5)) for k in range(0, 30, 5)]  # 6 docs × 5 tokens
    (tmp_path / "fortunes").write_text("\n%\n".join(docs) + "\n%\n", encoding="utf-8")
    b = build_data(
        config(tmp_path / "fortunes", format="txt", max_length=16, val_fraction=0.0, test_fraction=0.0),
        tokenizer=tokenizer,
    )
    stream = [t for d in docs for t in ids(d) + [3]]  # 36 tokens: blocks of 16, 16 and a dropped 4
    assert all_blocks(b) == [stream[:16], stream[16:32]]
    assert b.labels == [] and b.class_counts == {}


def test_last_partial_block_is_kept_when_it_has_at_least_8_tokens(tmp_path, tokenizer):
    (tmp_path / "a.txt").write_text(
        "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23", encoding="utf-8"
    )  # 23 + eos = 24 tokens
    b = build_data(config(tmp_path / "a.txt", max_length=16, val_fraction=0.0, test_fraction=0.0), tokenizer=tokenizer)
    assert [len(x) for x in all_blocks(b)] == [16, 8]


def test_collate_pads_and_labels_padding_minus_100(tmp_path, tokenizer):
    (tmp_path / "a.txt").write_text(" ".join(WORDS[:23]), encoding="utf-8")
    b = build_data(config(tmp_path / "a.txt", max_length=16, val_fraction=0.0, test_fraction=0.0), tokenizer=tokenizer)
    samples = [b.train[k] for k in range(len(b.train))]
    for s in samples:
        assert torch.equal(s["labels"], s["input_ids"]) and s["input_ids"].dtype == torch.long
    batch = b.collate_fn(samples)
    short = [len(s["input_ids"]) for s in samples].index(8)
    assert batch["input_ids"].shape == (2, 16)
    assert batch["labels"][short, 8:].tolist() == [-100] * 8
    assert batch["labels"][short, :8].tolist() == samples[short]["input_ids"].tolist()
    assert batch["attention_mask"][short].tolist() == [1] * 8 + [0] * 8
    assert (batch["input_ids"][short, 8:] == tokenizer.pad_token_id).all()


def test_blocks_split_by_seeded_shuffle(tmp_path, tokenizer):
    (tmp_path / "a.txt").write_text(" ".join(WORDS * 8), encoding="utf-8")  # 321 tokens → 40 blocks of 8
    first = build_data(config(tmp_path / "a.txt", max_length=8, split_seed=5), tokenizer=tokenizer)
    again = build_data(config(tmp_path / "a.txt", max_length=8, split_seed=5), tokenizer=tokenizer)
    other = build_data(config(tmp_path / "a.txt", max_length=8, split_seed=6), tokenizer=tokenizer)
    assert (len(first.train), len(first.val), len(first.test)) == (28, 6, 6)
    assert first.val.spans == again.val.spans and first.val.spans != other.val.spans
    assert not set(first.train.spans) & set(first.val.spans)
    assert pickle.loads(pickle.dumps(first.train))[0]["input_ids"].tolist() == first.train[0]["input_ids"].tolist()


def test_blank_lines_separate_documents_in_a_folder_of_txt_files(tmp_path, tokenizer):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("w1 w2\nw3\n\n\nw4 w5\n", encoding="utf-8")
    (folder / "sub" / "b.txt").write_text("\ufeffw6 w7 w8 w9 w10", encoding="utf-8")  # BOM stripped
    (folder / "notes.md").write_text("w30 " * 50, encoding="utf-8")  # not a .txt: ignored
    assert split_documents("w1 w2\nw3\n\n\nw4 w5\n") == ["w1 w2\nw3", "w4 w5"]
    b = build_data(config(folder, max_length=16, val_fraction=0.0, test_fraction=0.0), tokenizer=tokenizer)
    assert all_blocks(b) == [ids("w1 w2 w3") + [3] + ids("w4 w5") + [3] + ids("w6 w7 w8 w9 w10") + [3]]


def test_jsonl_text_field_and_empty_rows_listed(tmp_path, tokenizer):
    path = tmp_path / "d.jsonl"
    rows = [{"body": " ".join(WORDS[:10])}, {"body": ""}, {"body": " ".join(WORDS[10:20])}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    b = build_data(
        config(path, text_column="body", max_length=32, val_fraction=0.0, test_fraction=0.0), tokenizer=tokenizer
    )
    assert all_blocks(b) == [ids(" ".join(WORDS[:10])) + [3] + ids(" ".join(WORDS[10:20])) + [3]]
    assert [(p.line, "empty text" in p.reason) for p in b.problems] == [(2, True)]
    with pytest.raises(DataError, match=r"'text' not found.*'body'"):
        build_data(config(path, max_length=32), tokenizer=tokenizer)


def test_too_little_text_and_non_utf8_are_errors(tmp_path, tokenizer):
    (tmp_path / "tiny.txt").write_text("w1 w2", encoding="utf-8")
    with pytest.raises(DataError, match="tiny.txt.*fewer than 8"):
        build_data(config(tmp_path / "tiny.txt"), tokenizer=tokenizer)
    (tmp_path / "bad.txt").write_bytes(b"w1 w2\nw3 \xff\xfe\n")
    with pytest.raises(DataError, match=r"bad\.txt, line 2: not UTF-8.*byte offset 9"):
        build_data(config(tmp_path / "bad.txt"), tokenizer=tokenizer)
    (tmp_path / "blank.txt").write_text("\n%\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no usable text"):
        build_data(config(tmp_path / "blank.txt"), tokenizer=tokenizer)


def test_scan_counts_documents_and_suggests_causal_lm(tmp_path):
    (tmp_path / "f.txt").write_text("w1\n%\nw2\n%\nw3\n", encoding="utf-8")
    cfg = config(tmp_path / "f.txt")
    cfg.task.kind = TaskKind.IMAGE_CLASSIFICATION
    report = scan_data(cfg)
    assert report.suggested_kind == TaskKind.CAUSAL_LM and report.num_samples == 3 and report.format == "txt"
