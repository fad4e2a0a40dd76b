"""Inference latency of an exported ONNX model (fp32 and int8) in ONNX Runtime against eager PyTorch, as ratios.

Two models, random init (the timing does not depend on the weights): torchvision ResNet-18 at 224 px, and a
BERT-family sequence classifier built locally (4 layers, hidden 256, 4 heads, 128 tokens). Each is exported the
way `finetune-gui export` does it (core.export.onnx: dynamo exporter, dynamic batch/sequence axes, opset 20, eager
attention for the BERT) and quantised the way `--int8` does it (core.export.int8: dynamic int8 weights; MatMul/Gemm
only for the CNN), run in sessions made as the app makes them (core.export.runtime.session_options), then timed at
batch 1 and 32 on the CPU with the same number of threads for every engine. One process; every round times the
three engines, rotating which goes first, and each ratio is the median of the per-round ratios (eager time /
ONNX Runtime time: above 1 means ONNX Runtime is faster). Also printed: the max abs difference of each against
eager (what the ONNX tolerance in core/export/verify.py is set against; int8 is judged by top-1 agreement instead).

    .venv/bin/python benchmarks/export_latency.py [--rounds 5] [--threads 2] [--models resnet18,bert]
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

from finetune_gui.core.export import int8  # noqa: E402
from finetune_gui.core.export import onnx as onnx_export  # noqa: E402
from finetune_gui.core.export.runtime import cpu_session  # noqa: E402
from finetune_gui.core.export.source import ImageLogits, TextLogits  # noqa: E402


class BenchSource:
    """The parts of core.export.source.ExportSource that the ONNX exporter reads."""

    def __init__(self, module, example, names, dynamic):
        self.deployable, self.example, self.input_names, self._dynamic = module, example, names, dynamic

    def dynamic_shapes(self):
        return self._dynamic


def resnet18():
    from torch.export import Dim
    from torchvision.models import resnet18 as make

    torch.manual_seed(0)
    model = ImageLogits(make(num_classes=10)).eval()

    def inputs(batch: int):
        return (torch.randn(batch, 3, 224, 224),)

    return model, inputs, ("images",), {"images": {0: Dim("batch", min=1, max=4096)}}


def bert():
    from torch.export import Dim
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=512,
        num_labels=2,
    )
    model = TextLogits(BertForSequenceClassification(cfg), causal=False).eval()

    def inputs(batch: int, length: int = 128):
        ids = torch.randint(1000, cfg.vocab_size, (batch, length))
        mask = torch.ones_like(ids)
        mask[batch // 2 :, length * 3 // 4 :] = 0  # some padding, as real batches have
        return ids, mask

    batch, seq = Dim("batch", min=1, max=4096), Dim("seq", min=1, max=512)
    return (
        model,
        inputs,
        ("input_ids", "attention_mask"),
        {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
    )


MODELS = {"resnet18": resnet18, "bert": bert}


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every engine")
    parser.add_argument("--models", default="resnet18,bert")
    parser.add_argument("--batches", default="1,32")
    args = parser.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} thread(s), {args.rounds} rounds")
    print(
        f"{'model':<10}{'batch':>6}{'eager ms':>10}{'ORT ms':>9}{'eager/ORT':>10}{'int8 ms':>9}{'eager/int8':>11}"
        f"{'ORT diff':>10}{'int8 diff':>10}{'MB fp32':>8}{'MB int8':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model, make_inputs, names, dynamic = MODELS[name]()
            path, qpath = Path(tmp) / f"{name}.onnx", Path(tmp) / f"{name}.int8.onnx"
            onnx_export.save(BenchSource(model, make_inputs(2), names, dynamic), path)
            int8.quantise(path, qpath, image=name == "resnet18")
            sessions = {"ort": cpu_session(path, args.threads), "int8": cpu_session(qpath, args.threads)}
            sizes = f"{path.stat().st_size / 1e6:>8.1f}{qpath.stat().st_size / 1e6:>8.1f}"
            for batch in batches:
                inputs = make_inputs(batch)
                feed = {n: x.numpy() for n, x in zip(names, inputs)}
                with torch.no_grad():
                    expected = model(*inputs)
                diffs = {
                    k: float((torch.from_numpy(s.run(None, feed)[0]) - expected).abs().max())
                    for k, s in sessions.items()
                }
                repeats = 20 if batch == 1 else 3

                def eager(model=model, inputs=inputs):
                    with torch.no_grad():
                        model(*inputs)

                engines = {"eager": eager}
                engines.update({k: (lambda s=s, feed=feed: s.run(None, feed)) for k, s in sessions.items()})
                times: dict[str, list[float]] = {k: [] for k in engines}
                ratios: dict[str, list[float]] = {"ort": [], "int8": []}
                keys = list(engines)
                for r in range(args.rounds):
                    order = keys[r % len(keys) :] + keys[: r % len(keys)]
                    measured = {k: timed(engines[k], repeats) for k in order}
                    for k, t in measured.items():
                        times[k].append(t)
                    for k in ratios:
                        ratios[k].append(measured["eager"] / measured[k])
                ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
                print(
                    f"{name:<10}{batch:>6}{ms['eager']:>10.2f}{ms['ort']:>9.2f}{statistics.median(ratios['ort']):>10.2f}"
                    f"{ms['int8']:>9.2f}{statistics.median(ratios['int8']):>11.2f}"
                    f"{diffs['ort']:>10.1e}{diffs['int8']:>10.1e}{sizes}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
