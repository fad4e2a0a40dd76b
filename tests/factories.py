"""Tiny models saved to folders, so tests run the real `from_pretrained(path)` code without any download, and
tiny trained runs for the tests of what comes after training (evaluate, try it, export).

Import from tests as `from tests.factories import tiny_bert_dir, tiny_gpt2_dir, tiny_text_corpus, train_run`.
"""

from __future__ import annotations

import re
from pathlib import Path

_CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a good film with a great story",
    "a bad film with a dull story",
    "i loved this movie and the acting was great",
    "i hated this movie and the acting was awful",
    "the weather is nice today",
    "the weather is bad today",
    "what a wonderful day to learn something new",
    "what a terrible day to be stuck inside",
    "the capital of france is paris",
    "the capital of germany is berlin",
    "models learn from data and data teaches models",
    "fine tuning a small model is fast",
    "this is a test of the tiny tokenizer",
    "hello world",
]

_SPECIAL_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_text_corpus() -> list[str]:
    """A few short English sentences (two moods) for tokenizers and tiny datasets."""
    return list(_CORPUS)


def _words(texts: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for t in texts:
        for w in re.findall(r"\w+|[^\w\s]", t.lower()):
            seen.setdefault(w, None)
    return list(seen)


def _bert_tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    vocab = _SPECIAL_BERT + _words(_CORPUS) + list(".,!?'")
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    try:  # transformers >= 5
        tok = BertTokenizerFast(vocab=str(vocab_file))
    except TypeError:  # pragma: no cover - transformers 4.x
        tok = BertTokenizerFast(vocab_file=str(vocab_file))
    if tok.convert_tokens_to_ids("cat") == tok.unk_token_id:  # pragma: no cover - 4.x ignores `vocab`
        tok = BertTokenizerFast(vocab_file=str(vocab_file))
    return tok, len(vocab)


def tiny_bert_dir(tmp_path: str | Path, num_labels: int | None = None, name: str = "tiny-bert") -> Path:
    """A 2-layer BERT (hidden 32) with a WordPiece tokenizer, saved with save_pretrained.

    With `num_labels` a BertForSequenceClassification is saved (its head included), else a bare BertModel,
    so loading it for classification exercises the "new head" path.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    folder = Path(tmp_path) / name
    folder.mkdir(parents=True, exist_ok=True)
    tok, vocab_size = _bert_tokenizer(folder)
    cfg = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    if num_labels is not None:
        cfg.num_labels = num_labels
        model = BertForSequenceClassification(cfg)
    else:
        model = BertModel(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_gpt2_dir(tmp_path: str | Path, name: str = "tiny-gpt2") -> Path:
    """A 2-layer GPT-2 (n_embd 32) with a byte-level BPE tokenizer trained here; no pad token (like GPT-2)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    folder = Path(tmp_path) / name
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_CORPUS * 4, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    eos = "<|endoftext|>"
    tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=eos, bos_token=eos, unk_token=eos)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_remote_code_dir(tmp_path: str | Path) -> Path:
    """A tiny BERT folder whose config.json asks for remote code (auto_map) and carries a .py file."""
    import json

    folder = tiny_bert_dir(tmp_path, num_labels=2, name="tiny-remote")
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (folder / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n", encoding="utf-8")
    return folder


def tiny_resnet18_state_dict(num_classes: int = 1000, seed: int = 0) -> dict:
    """A random-init torchvision ResNet-18 state dict (ImageNet head by default)."""
    import torch
    from torchvision.models import resnet18

    torch.manual_seed(seed)
    return resnet18(num_classes=num_classes).state_dict()


# ---------------------------------------------------------------- tiny trained runs

TINY_TRAIN = {"epochs": 2, "batch_size": 8, "lr": 1e-3, "log_every": 1, "seed": 3}


def image_sections(**data) -> dict:
    """Config sections for a tiny ResNet-18 image run on `images/` (make it with conftest.make_image_folder)."""
    return {
        "task": {"kind": "image-classification"},
        "data": {"path": "images", "image_size": 32, "val_fraction": 0.25, "test_fraction": 0.25, **data},
        "model": {"name": "resnet18", "allow_random_init": True, "freeze": "none"},
        "train": dict(TINY_TRAIN),
    }


def train_run(root: Path, sections: dict) -> Path:
    """Fit a tiny config offline (module fixtures run outside the per-test env isolation) and return its run."""
    import pytest

    from finetune_gui.config import validate_dict
    from finetune_gui.core.training.engine import fit

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINETUNE_GUI_OFFLINE", "1")
        mp.setenv("TORCH_HOME", str(root / "torch-home"))
        config = validate_dict(sections).with_base_dir(root)
        result = fit(config, output_dir=root / "runs")
    assert result.status == "completed", result
    return result.run_dir


# ---------------------------------------------------------------- data that is not a dataset

#: icon folders of a documentation tree and how many icons each holds (9 of 11 hold fewer than 5)
DOCS_ICONS = {"arrows": 2, "badges": 1, "buttons": 3, "cursors": 3, "diagrams": 19, "emoji": 1, "flags": 4,
              "logos": 2, "screenshots": 24, "status": 2, "toolbar": 4}  # fmt: skip


def make_docs_tree(root: Path, chapters: int = 90) -> Path:
    """A documentation folder: `chapters` folders of HTML pages, and the icon folders of DOCS_ICONS (65 icons).

    Read as an image folder it gives 11 "classes" and one problem per chapter folder (it holds no images)."""
    from PIL import Image

    for i, (name, n) in enumerate(DOCS_ICONS.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "index.html").write_text("<html>icons</html>")
        for k in range(n):
            Image.new("RGB", (16, 16), (20 * i, 10 * k, 200)).save(folder / f"{name}-{k}.png")
    for k in range(chapters):
        folder = root / f"chapter-{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "notes.md").write_text("# notes")
        for j in range(3):
            (folder / f"page-{j}.html").write_text("<p>text</p>")
    (root / "README.md").write_text("the docs")
    return root


def compile_whose_backward_breaks(real_compile, error: Exception):
    """torch.compile with a backend whose forward compiles and whose backward compiler (run by AOTAutograd at the
    first .backward()) raises `error`."""
    from torch._dynamo.backends.common import aot_autograd  # the documented way to write a custom backend

    def broken_backward(graph, example_inputs):
        raise error

    backend = aot_autograd(fw_compiler=lambda graph, example_inputs: graph, bw_compiler=broken_backward)
    return lambda model, **kwargs: real_compile(model, backend=backend)
