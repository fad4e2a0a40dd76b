"""Training throughput of the engine's input pipeline against a plain loop fed from a preloaded tensor.

A full fine-tune of ResNet-18 at 64 px on small seeded PNGs (32 x 32, 10 classes) generated in a temp folder.
Three figures in one process, alternating their order per round so machine noise hits them alike:

  upper bound   a plain PyTorch loop whose batches are slices of one preloaded, normalised float tensor
                (no decoding, no augmentation, no DataLoader): what the model alone allows;
  decode once   the engine (`fit`) with the default data.decode_cache = "auto";
  every read    the engine with data.decode_cache = "off" (the pipeline before decode-once).

Augmentation: random resized crops and horizontal flips (the defaults). An engine figure is samples/s
between its first and last reported step (start-up and validation are outside it). An epoch of 20,000
images takes minutes here, so the engine never reaches a second epoch within the benchmark: instead the
decode-once run gets its cache filled before it starts, by one real pass of the same dataset code over every
image (timed and printed: that is the first epoch's extra cost), and its figure is that of epochs 2 and
later. The every-read figure holds for every epoch. Ratios are medians of per-round ratios.

    .venv/bin/python benchmarks/input_pipeline.py [--images 20000] [--steps 20] [--rounds 2] [--batch-size 32]

Also printed: the engine's training loader alone, decode once against every read, timed in alternating short
rounds (a figure that a busy machine disturbs far less than whole training runs minutes apart).

Target: decode once / upper bound >= 0.95.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from finetune_gui.config import validate_dict  # noqa: E402
from finetune_gui.core.data import decoded as decoded_mod  # noqa: E402
from finetune_gui.core.models import build_model  # noqa: E402
from finetune_gui.core.training.engine import fit  # noqa: E402
from finetune_gui.core.training.events import LogMessage, StepMetrics  # noqa: E402
from finetune_gui.core.training.prepare import prepare  # noqa: E402

LOG_EVERY = 10


def make_pngs(root: Path, n: int, side: int = 32, classes: int = 10) -> None:
    """n seeded noise-and-colour PNGs of side x side pixels in class folders."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, (classes, 3), dtype=np.int16)
    for i in range(n):
        c = i % classes
        noise = rng.integers(-40, 41, (side, side, 3), dtype=np.int16)
        pixels = np.clip(base[c] + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"c{c}" / f"{i:06d}.png")


def make_config(data_dir: Path, args, decode_cache: str) -> dict:
    return {
        "name": "bench",
        "task": {"kind": "image-classification"},
        "data": {
            "path": str(data_dir),
            "image_size": args.image_size,
            "val_fraction": 0.01,
            "test_fraction": 0.0,
            "decode_cache": decode_cache,
        },
        "model": {"name": "resnet18", "allow_random_init": True, "freeze": "none"},
        "augment": {"random_resized_crop": True, "hflip": 0.5},
        "train": {
            "epochs": 1,
            "batch_size": args.batch_size,
            "optimizer": "adamw",
            "lr": 1e-3,
            "schedule": "constant",
            "max_steps": args.steps + LOG_EVERY,
            "log_every": LOG_EVERY,
            "precision": "fp32",
        },
    }


def engine_round(config, out: Path) -> tuple[float, str]:
    """Samples/s of fit between its first and last reported step, and its 'input pipeline' log line."""
    marks: list[tuple[float, int]] = []
    said: list[str] = []

    def listener(event):
        if isinstance(event, StepMetrics):
            marks.append((time.perf_counter(), event.step))
        elif isinstance(event, LogMessage) and event.text.startswith("input pipeline"):
            said.append(event.text)

    result = fit(config, listener, output_dir=out)
    assert result.status == "completed", result
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return (s1 - s0) * config.train.batch_size / (t1 - t0), said[0] if said else ""


def preload(config) -> torch.Tensor:
    """All training images as one normalised float tensor, built once (untimed) through the eval transform."""
    p = prepare(config)
    ds = p.data.train
    return torch.stack([ds[i][0] for i in range(len(ds))]), torch.tensor([ds.target(i) for i in range(len(ds))])


def warm_stores(config) -> None:
    """Decode every image once through the engine's own dataset, and make later runs' stores of the same
    shape start from these (what the second and later epochs of one run read)."""
    p = prepare(config)
    filled = {}
    for name, ds in (("train", p.data.train), ("val", p.data.val)):
        t = time.perf_counter()
        for i in range(len(ds)):
            ds.load_image(i)
        took = time.perf_counter() - t
        print(f"first read of the {len(ds)} {name} images (decode, resize, keep): {took:.1f} s, {len(ds) / took:.0f}/s")
        filled[(ds.store.n, ds.store.side)] = ds.store
    made = decoded_mod.DecodeStore
    decoded_mod.DecodeStore = lambda n, side, folder=None: filled.get((n, side)) or made(n, side, folder)


def loader_speeds(configs: dict, batches: int, rounds: int) -> dict[str, float]:
    """Samples/s of the engine's training loader alone (no model), per config, in alternating short rounds:
    robust to the machine's load in a way whole training runs minutes apart are not."""
    loaders = {name: prepare(config).train_loader for name, config in configs.items()}
    speeds: dict[str, list[float]] = {name: [] for name in loaders}
    for r in range(rounds):
        for name, loader in list(loaders.items())[:: 1 if r % 2 == 0 else -1]:
            t, n = time.perf_counter(), 0
            for k, (x, _) in enumerate(loader):
                n += len(x)
                if k + 1 == batches:
                    break
            speeds[name].append(n / (time.perf_counter() - t))
    return {name: statistics.median(v) for name, v in speeds.items()}


def plain_round(config, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Samples/s of a textbook loop on slices of the preloaded tensor: the model's own speed."""
    torch.manual_seed(0)
    model = build_model(config, int(labels.max()) + 1).model  # as prepare makes it, without a second scan
    model.train()
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-3, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    bs, steps = config.train.batch_size, config.train.max_steps - LOG_EVERY + 1
    order = torch.randperm(len(images))
    times = []
    for step in range(steps):
        idx = order[(step * bs) % len(images) :][:bs]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(images[idx]), labels[idx])
        loss.backward()
        opt.step()
        float(loss.detach())
        times.append(time.perf_counter())
    return (len(times) - 1) * bs / (times[-1] - times[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        make_pngs(tmp / "data", args.images)
        print(f"{args.images} PNGs of 32 x 32 written in {time.perf_counter() - t:.0f} s")
        cached = validate_dict(make_config(tmp / "data", args, "auto")).with_base_dir(tmp)
        every = validate_dict(make_config(tmp / "data", args, "off")).with_base_dir(tmp)
        upper_cfg = cached.model_copy(deep=True)
        upper_cfg.augment.random_resized_crop, upper_cfg.augment.hflip = False, 0.0
        images, labels = preload(upper_cfg)
        warm_stores(cached)
        plain_round(cached, images[: args.batch_size * 4], labels[: args.batch_size * 4])  # warm-up
        figures: dict[str, list[float]] = {"upper bound": [], "decode once": [], "every read": []}
        lines: dict[str, str] = {}
        for r in range(args.rounds):
            runs = [
                ("upper bound", lambda: (plain_round(cached, images, labels), "")),
                ("decode once", lambda r=r: engine_round(cached, tmp / f"cached{r}")),
                ("every read", lambda r=r: engine_round(every, tmp / f"every{r}")),
            ]
            for name, run in runs if r % 2 == 0 else runs[::-1]:
                speed, line = run()
                figures[name].append(speed)
                lines[name] = line or lines.get(name, "")
        alone = loader_speeds({"decode once": cached, "every read": every}, batches=20, rounds=6)
    up = figures["upper bound"]
    print(f"ResNet-18 full fine-tune @ {args.image_size}px, batch {args.batch_size}, {args.steps} steps timed, "
          f"{args.rounds} rounds, {torch.get_num_threads()} torch threads")  # fmt: skip
    for name, speeds in figures.items():
        ratio = statistics.median(s / u for s, u in zip(speeds, up))
        rounds = ", ".join(f"{s:.1f}" for s in speeds)
        print(f"{name:12s}: {statistics.median(speeds):7.1f} samples/s  ratio {ratio:.3f}  (rounds: {rounds})")
    for name in ("decode once", "every read"):
        print(f"{name}: {lines[name]}")
    model = statistics.median(up)
    print(f"the training loader alone (no model; median of 6 alternating rounds of 20 batches of {args.batch_size}):")
    for name, speed in alone.items():
        share = model / speed
        print(
            f"  {name:12s}: {speed:7.0f} samples/s; at the model's {model:.1f} samples/s it takes {share:.1%} of a step"
        )


if __name__ == "__main__":
    main()
