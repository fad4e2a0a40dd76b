"""Writing a ResNet-18's weights as safetensors: how long, and how long another thread (the GUI's) is stalled.

    .venv/bin/python benchmarks/checkpoint_write.py [--rounds 3]

Compares safetensors' in-memory `save` + one write (what checkpoints used before) with the piece-by-piece
`core/tensor_files.write_safetensors`. A 1 ms ticker thread measures its longest gap during each write; the
report is the median of the rounds and the ratio old ÷ new (timings on this VM are noisy: read ratios).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import torchvision
    from safetensors.torch import save

    from finetune_gui.core.tensor_files import write_safetensors

    weights = {k: v.detach() for k, v in torchvision.models.resnet18().state_dict().items()}
    gaps: list[float] = []

    def ticker() -> None:
        last = time.perf_counter()
        while True:
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    threading.Thread(target=ticker, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:

        def in_memory() -> None:
            data = save(weights)
            hashlib.sha256(data).hexdigest()
            Path(tmp, "a.safetensors").write_bytes(data)

        def streamed() -> None:
            with open(Path(tmp, "b.safetensors"), "wb") as f:
                write_safetensors(f, weights)

        results: dict[str, list[tuple[float, float]]] = {"in-memory save": [], "streamed": []}
        for _ in range(args.rounds):
            for name, fn in (("in-memory save", in_memory), ("streamed", streamed)):
                time.sleep(0.05)
                gaps.clear()
                started = time.perf_counter()
                fn()
                took = time.perf_counter() - started
                time.sleep(0.01)
                results[name].append((took * 1000, max(gaps) * 1000))
    med = {k: (statistics.median(t for t, _ in v), statistics.median(g for _, g in v)) for k, v in results.items()}
    for name, (took, stall) in med.items():
        print(f"{name:15s} write {took:6.1f} ms, longest stall of another thread {stall:5.1f} ms")
    (old_t, old_s), (new_t, new_s) = med["in-memory save"], med["streamed"]
    print(f"ratio in-memory / streamed: time {old_t / new_t:.2f}x, stall {old_s / max(new_s, 1e-3):.1f}x")


if __name__ == "__main__":
    main()
