"""What the diagnostics cost: training throughput with the default checks against none, as a ratio.

Three engines train the same model on the same data in one process, in rotating order each round so machine
noise hits all alike: no hooks, the light diagnostics (loss, update size and the checks) and the default ones
(plus per-block gradients and dead units on logged steps). Only training steps are timed, between the first and
the last reported step, at the default logging interval (every 10 steps). The one-off cost before the first
step (hashing the samples to find copies across splits) is timed on its own.

    .venv/bin/python benchmarks/diagnostics_overhead.py [--model resnet18] [--image-size 64] [--steps 40] [--rounds 4]

Goal: the default diagnostics at most 3% slower (ratio >= 0.97).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from engine_vs_plain import make_config  # noqa: E402

from finetune_gui.config import validate_dict  # noqa: E402
from finetune_gui.core.diagnostics.hook import DiagnosticsHook  # noqa: E402
from finetune_gui.core.diagnostics.probes import duplicates_across_splits  # noqa: E402
from finetune_gui.core.training.engine import fit  # noqa: E402
from finetune_gui.core.training.events import StepMetrics  # noqa: E402
from finetune_gui.core.training.prepare import prepare  # noqa: E402

VARIANTS = {"none": lambda: [], "light": lambda: [DiagnosticsHook(heavy=False)], "default": lambda: None}


def round_of(config, out: Path, hooks) -> float:
    """Samples/s between the first and the last reported training step."""
    marks: list[tuple[float, int]] = []

    def listener(event):
        if isinstance(event, StepMetrics):
            marks.append((time.perf_counter(), event.step))

    result = fit(config, listener, output_dir=out, hooks=hooks)
    assert result.status == "completed", result
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return (s1 - s0) * config.train.batch_size / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import make_image_folder

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_image_folder(tmp / "data", classes=tuple(f"c{i}" for i in range(10)), per_class=150, size=args.image_size)
        config = validate_dict(make_config(tmp / "data", args)).with_base_dir(tmp)
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        round_of(config, tmp / "warm", [])  # first-touch allocations and kernel selection
        names = list(VARIANTS)
        for r in range(args.rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                rates[name].append(round_of(config, tmp / f"{name}{r}", VARIANTS[name]()))
        p = prepare(config)
        started = time.perf_counter()
        duplicates_across_splits(p.data.train, {"val": p.data.val, "test": p.data.test})
        hashing = time.perf_counter() - started
        samples = len(p.data.train) + len(p.data.val) + len(p.data.test)

    print(
        f"model {args.model} @ {args.image_size}px, batch {args.batch_size}, {args.steps} steps, {args.rounds} rounds"
    )
    for name, values in rates.items():
        print(
            f"{name:8s}: {statistics.median(values):8.1f} samples/s  (rounds: {', '.join(f'{v:.1f}' for v in values)})"
        )
    for name in ("light", "default"):
        ratio = statistics.median(a / b for a, b in zip(rates[name], rates["none"]))
        print(f"ratio {name}/none: {ratio:.3f}" + ("  (goal >= 0.97)" if name == "default" else ""))
    print(f"before the first step: hashing {samples} samples for copies across splits took {hashing:.2f} s")
    if torch.cuda.is_available():
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
