"""Inference latency of an exported ONNX model in ONNX Runtime against the same model in eager PyTorch, as ratios.

Two models, random init (the timing does not depend on the weights): torchvision ResNet-18 at 224 px, and a
BERT-family sequence classifier built locally (4 layers, hidden 256, 4 heads, 128 tokens). Each is exported the
way `finetune-gui export` does it (core.export.onnx: dynamo exporter, dynamic batch/sequence axes, opset 20), then
timed at batch 1 and 32 on the CPU with the same number of threads for both engines. One process; every round
times both engines, alternating which goes first, and the ratio is the median of the per-round ratios
(eager time / ONNX Runtime time: above 1 means ONNX Runtime is faster). Also printed: the max abs difference
between the two (what the ONNX tolerance in core/export/verify.py is set against).

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

from finetune_gui.core.export import onnx as onnx_export  # noqa: E402
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
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both engines")
    parser.add_argument("--models", default="resnet18,bert")
    parser.add_argument("--batches", default="1,32")
    args = parser.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    batches = [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} thread(s), {args.rounds} rounds")
    print(f"{'model':<10}{'batch':>6}{'eager ms':>11}{'ORT ms':>10}{'eager/ORT':>11}{'max abs diff':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model, make_inputs, names, dynamic = MODELS[name]()
            path = Path(tmp) / f"{name}.onnx"
            onnx_export.save(BenchSource(model, make_inputs(2), names, dynamic), path)
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for batch in batches:
                inputs = make_inputs(batch)
                feed = {n: x.numpy() for n, x in zip(names, inputs)}
                with torch.no_grad():
                    expected = model(*inputs)
                diff = float((torch.from_numpy(session.run(None, feed)[0]) - expected).abs().max())
                repeats = 20 if batch == 1 else 3

                def eager(model=model, inputs=inputs):
                    with torch.no_grad():
                        model(*inputs)

                def onnxrt(session=session, feed=feed):
                    session.run(None, feed)

                ratios, eager_t, ort_t = [], [], []
                for r in range(args.rounds):
                    order = (eager, onnxrt) if r % 2 == 0 else (onnxrt, eager)
                    measured = {fn: timed(fn, repeats) for fn in order}
                    eager_t.append(measured[eager])
                    ort_t.append(measured[onnxrt])
                    ratios.append(measured[eager] / measured[onnxrt])
                print(
                    f"{name:<10}{batch:>6}{statistics.median(eager_t) * 1e3:>11.2f}"
                    f"{statistics.median(ort_t) * 1e3:>10.2f}{statistics.median(ratios):>11.2f}{diff:>14.2e}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
