"""Training throughput of the engine against a plain hand-written PyTorch loop, as a ratio.

Both train the same model on the same data with the same batch size and optimiser, in one process,
alternating which goes first in each round so machine noise hits both alike; the ratio is the median of the
per-round ratios. Only training steps are timed (the engine's per-epoch validation and checkpoint saving are
outside the timed window). The engine runs with its default reporting (every 10 steps, grad norm included).

    .venv/bin/python benchmarks/engine_vs_plain.py [--model resnet18] [--image-size 64] [--steps 30] [--rounds 3]

Target: ratio >= 0.98.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from finetune_gui.config import validate_dict  # noqa: E402
from finetune_gui.core.training.engine import fit  # noqa: E402
from finetune_gui.core.training.events import StepMetrics  # noqa: E402
from finetune_gui.core.training.prepare import prepare  # noqa: E402


def make_config(data_dir: Path, args) -> dict:
    return {
        "name": "bench",
        "task": {"kind": "image-classification"},
        "data": {"path": str(data_dir), "image_size": args.image_size, "val_fraction": 0.1, "test_fraction": 0.0},
        "model": {"name": args.model, "allow_random_init": True, "freeze": "none"},
        "augment": {"random_resized_crop": False, "hflip": 0.0},
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


LOG_EVERY = 10  # the config default


def engine_round(config, out: Path) -> float:
    """Samples/s of the engine between its first and last reported training step (args.steps apart)."""
    marks: list[tuple[float, int]] = []  # (time, step) of each report; slow steps are reported every step

    def listener(event):
        if isinstance(event, StepMetrics):
            marks.append((time.perf_counter(), event.step))

    result = fit(config, listener, output_dir=out)
    assert result.status == "completed", result
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return (s1 - s0) * config.train.batch_size / (t1 - t0)


def plain_round(config) -> float:
    """Samples/s of a textbook loop over the same dataset object, model and optimiser settings."""
    p = prepare(config)  # same data pipeline and model construction, none of the engine's loop
    model, loader = p.model, p.train_loader
    model.train()
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-3, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    step = 0
    while step < config.train.max_steps - LOG_EVERY + 1:
        for images, targets in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), targets)
            loss.backward()
            opt.step()
            float(loss.detach())  # the engine reads the loss every step too (NaN guard)
            times.append(time.perf_counter())
            step += 1
            if step >= config.train.max_steps - LOG_EVERY + 1:
                break
    return (len(times) - 1) * config.train.batch_size / (times[-1] - times[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import make_image_folder

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_image_folder(tmp / "data", classes=tuple(f"c{i}" for i in range(10)), per_class=120, size=args.image_size)
        config = validate_dict(make_config(tmp / "data", args)).with_base_dir(tmp)
        plain_round(config)  # warm-up: first-touch allocations and kernel selection
        engine, plain = [], []
        for r in range(args.rounds):
            if r % 2:
                engine.append(engine_round(config, tmp / f"runs{r}"))
                plain.append(plain_round(config))
            else:
                plain.append(plain_round(config))
                engine.append(engine_round(config, tmp / f"runs{r}"))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    e, p = statistics.median(engine), statistics.median(plain)
    ratio = statistics.median(a / b for a, b in zip(engine, plain))
    print(
        f"model {args.model} @ {args.image_size}px, batch {args.batch_size}, {args.steps} steps, {args.rounds} rounds"
    )
    print(f"plain loop : {p:8.1f} samples/s  (rounds: {', '.join(f'{x:.1f}' for x in plain)})")
    print(f"engine     : {e:8.1f} samples/s  (rounds: {', '.join(f'{x:.1f}' for x in engine)})")
    print(f"ratio engine/plain: {ratio:.3f}  (median of per-round ratios; target >= 0.98)")
    print(f"peak process memory (RSS): {peak_mb:.0f} MiB")
    if torch.cuda.is_available():
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
