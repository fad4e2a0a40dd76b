"""What two processes cost against one, on this CPU: 2 gloo ranks with one thread each against 1 process with
2 threads, the same global batch, the same model and data. Both go through the real CLI (`finetune-gui train`,
the 2 ranks under torchrun), in alternating rounds so machine noise hits both alike.

Throughput is the training samples of epochs 2..N over their time (metrics.jsonl's per-epoch time_s), so start-up,
the first epoch's warm-up and evaluation are left out. The ratio is the median over rounds of
(2 ranks' samples/s) / (1 process's samples/s).

    .venv/bin/python benchmarks/distributed_overhead.py [--model resnet18] [--image-size 64] [--images 960]
        [--batch-size 32] [--epochs 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make_images(root: Path, n: int, size: int) -> Path:
    """n small coloured images in 4 classes (ImageFolder layout)."""
    import random

    from PIL import Image

    rng = random.Random(0)
    for i in range(n):
        label = i % 4
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        colour = tuple(rng.randrange(256) if c != label % 3 else 255 for c in range(3))
        Image.new("RGB", (size, size), colour).save(folder / f"{i}.png")
    return root


def config_text(data: Path, args) -> str:
    return f"""name = "overhead"
[task]
kind = "image-classification"
[data]
path = "{data}"
image_size = {args.image_size}
val_fraction = 0.1
test_fraction = 0.0
num_workers = 0
[model]
name = "{args.model}"
allow_random_init = true
freeze = "none"
[augment]
random_resized_crop = false
hflip = 0.0
[train]
epochs = {args.epochs}
batch_size = {args.batch_size}
schedule = "constant"
precision = "fp32"
[early_stopping]
enabled = false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_round(work: Path, processes: int, threads: int, n_train: int) -> float:
    """Training samples/s of epochs 2..N of one run."""
    out = work / f"runs-{processes}"
    args = ["-m", "finetune_gui", "train", "config.toml", "--output", str(out), "--quiet"]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(processes),
                   "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", *args]  # fmt: skip
    else:
        command = [sys.executable, *args]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", FINETUNE_GUI_OFFLINE="1")
    before = set(out.iterdir()) if out.exists() else set()
    subprocess.run(command, cwd=work, env=env, check=True, capture_output=True)
    (run,) = set(out.iterdir()) - before
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    epochs = [r for r in rows if "time_s" in r][1:]
    return n_train * len(epochs) / sum(r["time_s"] for r in epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=960)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_images(work / "images", args.images, args.image_size)
        (work / "config.toml").write_text(config_text(data, args))
        n_train = args.images - round(args.images * 0.1)
        ratios = []
        for r in range(args.rounds):
            order = [(1, 2), (2, 1)] if r % 2 == 0 else [(2, 1), (1, 2)]
            speed = {p: one_round(work, p, t, n_train) for p, t in order}
            ratios.append(speed[2] / speed[1])
            print(f"round {r + 1}: 1 process x 2 threads {speed[1]:.1f} samples/s, "
                  f"2 ranks x 1 thread {speed[2]:.1f} samples/s, ratio {ratios[-1]:.3f}", flush=True)  # fmt: skip
        print(f"median ratio (2 gloo ranks / 1 process, same global batch {args.batch_size}): "
              f"{statistics.median(ratios):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
