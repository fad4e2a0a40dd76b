"""Regenerate the demo data in resources/demo from Debian packages.

    apt-get install dataset-fashion-mnist fortunes
    python scripts/make_demo_data.py            # writes resources/demo/...

Outputs (all deterministic; running it twice gives byte-identical files):

    resources/demo/fashion/<class>/<index>.png   4 Fashion-MNIST classes x 60 train images (28x28 grey)
    resources/demo/fashion_multilabel.csv        path,labels  e.g. "footwear;dark" (label_separator ";")
    resources/demo/fashion_brightness.csv        path,value   mean brightness of the image in [0, 1]
    resources/demo/fortunes.txt                  a few fortune(6) categories, entries separated by "%"

`<index>` is the image's position in Fashion-MNIST's train file, so every PNG can be traced to its source.
resources/demo/reviews.csv is hand-written and is not produced here.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "resources" / "demo"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FORTUNES_DIR = Path("/usr/share/games/fortunes")

# Official Fashion-MNIST class names (index order), lowercase, spaces and slashes as hyphens.
FASHION_CLASSES = [
    "t-shirt-top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
]
# Four classes that look clearly different even at 28 px.
DEMO_CLASSES = ["trouser", "dress", "sneaker", "bag"]
PER_CLASS = 60
# Coarse group of each demo class, the first label of the multi-label example.
GROUP = {"trouser": "clothing", "dress": "clothing", "sneaker": "footwear", "bag": "accessory"}
# An image is also labelled "dark" when its mean brightness (0..1) is below this.
DARK_THRESHOLD = 0.2

FORTUNE_CATEGORIES = ["fortunes", "wisdom", "platitudes"]
FORTUNES_MAX_BYTES = 150_000


def read_idx(path: Path, offset: int) -> np.ndarray:
    """The payload of a gzipped IDX file as uint8 (images offset 16, labels offset 8)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=offset)


def load_fashion_train(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(folder / "train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz", 8)
    if len(images) != len(labels):
        raise SystemExit(f"{folder}: {len(images)} images but {len(labels)} labels")
    return images, labels


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_fashion(out: Path, source: Path) -> list[tuple[str, str, np.ndarray]]:
    """Write the ImageFolder; returns (relative path, class, pixels) per image, in file order."""
    images, labels = load_fashion_train(source)
    root = out / "fashion"
    if root.exists():
        shutil.rmtree(root)
    written = []
    for name in DEMO_CLASSES:
        cls = FASHION_CLASSES.index(name)
        picked = np.flatnonzero(labels == cls)[:PER_CLASS]  # first N of the class: deterministic
        (root / name).mkdir(parents=True)
        for idx in picked:
            rel = f"fashion/{name}/{int(idx)}.png"
            (out / rel).write_bytes(png_bytes(images[idx]))
            written.append((rel, name, images[idx]))
    return written


def write_csvs(out: Path, items: list[tuple[str, str, np.ndarray]]) -> None:
    with open(out / "fashion_multilabel.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "labels"])
        for rel, name, px in items:
            labels = [GROUP[name]]
            if px.mean() / 255.0 < DARK_THRESHOLD:
                labels.append("dark")
            w.writerow([rel, ";".join(labels)])
    with open(out / "fashion_brightness.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "value"])
        for rel, _name, px in items:
            w.writerow([rel, f"{px.mean() / 255.0:.4f}"])


def fortune_entries(path: Path) -> list[str]:
    """Entries of one fortune file; those with control characters (overstrike) are dropped."""
    text = path.read_text(encoding="utf-8")
    entries = []
    for chunk in text.split("\n%\n"):
        chunk = chunk.strip("\n")
        if chunk and chunk != "%" and not any(ord(c) < 32 and c not in "\n\t" for c in chunk):
            entries.append(chunk)
    return entries


def write_fortunes(out: Path, source: Path) -> int:
    parts: list[str] = []
    size = 0
    for cat in FORTUNE_CATEGORIES:
        for entry in fortune_entries(source / cat):
            piece = entry + "\n%\n"
            if size + len(piece.encode("utf-8")) > FORTUNES_MAX_BYTES:
                break
            parts.append(piece)
            size += len(piece.encode("utf-8"))
    (out / "fortunes.txt").write_text("".join(parts), encoding="utf-8", newline="\n")
    return len(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default resources/demo)")
    ap.add_argument("--fashion", type=Path, default=FASHION_DIR, help="folder of Fashion-MNIST *.gz files")
    ap.add_argument("--fortunes", type=Path, default=FORTUNES_DIR, help="folder of fortune(6) files")
    args = ap.parse_args(argv)
    missing = [p for p in (args.fashion / "train-images-idx3-ubyte.gz", args.fortunes / "wisdom") if not p.exists()]
    if missing:
        print("missing: " + ", ".join(map(str, missing)), file=sys.stderr)
        print("install them with: apt-get install dataset-fashion-mnist fortunes", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    items = write_fashion(args.out, args.fashion)
    write_csvs(args.out, items)
    n = write_fortunes(args.out, args.fortunes)
    dark = sum(px.mean() / 255.0 < DARK_THRESHOLD for _, _, px in items)
    print(f"{len(items)} images in {len(DEMO_CLASSES)} classes ({dark} dark), {n} fortunes -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
