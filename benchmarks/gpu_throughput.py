"""GPU training throughput: the engine's own training loop against a plain PyTorch loop written with the same
best practices, and train.compile against eager. ResNet-50 at 224 px (img/s) and a BERT-base encoder at
sequence length 128 (tokens/s), both random-init and built here (no downloads).

    .venv/bin/python benchmarks/gpu_throughput.py                      # on CUDA: the full table (< 8 min)
    .venv/bin/python benchmarks/gpu_throughput.py --device cpu --tiny  # a small check of the script on the CPU

Both loops get the same batches, made once and held in (pinned) host memory, so data loading is outside the
comparison: it measures the loop (autocast, memory format, optimiser kernels, the engine's reports, NaN guard
and diagnostics hooks). The engine runs through `Trainer.train_epoch`, the loop `fit()` runs, with its model
and settings from `prepare()`. The plain loop: model and batches in channels_last (CNN), bf16 autocast (fp16
with a GradScaler on GPUs without bf16), fused AdamW, cudnn.benchmark, non_blocking copies, no host sync
inside the timed steps. Rounds alternate which loop goes first; figures are medians of the rounds.

A third row runs the engine as the one process of a torchrun job (DistributedDataParallel over a process group
of one), against the plain engine: the cost of the distributed path itself.

Goals: engine / plain >= 0.95; compiled / eager >= 1.2 for ResNet-50; DDP x1 / engine >= 0.97.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from finetune_gui.config import validate_dict  # noqa: E402
from finetune_gui.core import devices  # noqa: E402
from finetune_gui.core.distributed.context import DistContext  # noqa: E402
from finetune_gui.core.distributed.ddp import distribute  # noqa: E402
from finetune_gui.core.runs import new_run_dir, snapshot_config  # noqa: E402
from finetune_gui.core.training.engine import Trainer  # noqa: E402


@dataclass
class Workload:
    name: str
    unit: str  # "img/s" or "tokens/s"
    per_sample: int  # units per sample: 1 image, or seq_len tokens
    batch_size: int
    config: dict
    make_batches: object  # (device, n) -> list of host batches
    plain_model: object  # () -> nn.Module, the same architecture as the engine builds
    cnn: bool


# ---------------------------------------------------------------- workloads


def vision_workload(args, tmp: Path) -> Workload:
    from conftest import make_image_folder
    from torchvision import models

    arch, size, bs = ("resnet18", 32, 8) if args.tiny else ("resnet50", 224, args.vision_batch)
    classes = 10
    make_image_folder(tmp / "images", classes=tuple(f"c{i}" for i in range(classes)), per_class=2, size=size)
    config = {
        "name": "bench-vision",
        "task": {"kind": "image-classification"},
        "data": {"path": str(tmp / "images"), "image_size": size, "val_fraction": 0.0, "test_fraction": 0.0},
        "model": {"name": arch, "allow_random_init": True, "freeze": "none"},
        "augment": {"random_resized_crop": False, "hflip": 0.0},
        "train": {"batch_size": bs, "schedule": "constant", "device": args.device},
    }

    def batches(n: int):
        g = torch.Generator().manual_seed(0)
        return [(torch.randn(bs, 3, size, size, generator=g), torch.randint(0, classes, (bs,), generator=g)) for _ in range(n)]  # fmt: skip

    return Workload(f"{arch} {size}px b{bs}", "img/s", 1, bs, config, batches,
                    lambda: getattr(models, arch)(num_classes=classes), True)  # fmt: skip


def text_workload(args, tmp: Path) -> Workload:
    from factories import _bert_tokenizer
    from transformers import BertConfig, BertForSequenceClassification

    seq, bs = (16, 8) if args.tiny else (128, args.text_batch)
    folder = tmp / "bert"
    folder.mkdir(parents=True)
    tok, vocab = _bert_tokenizer(folder)
    size = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64) if args.tiny else {}
    cfg = BertConfig(vocab_size=vocab, pad_token_id=tok.pad_token_id, num_labels=2, **size)  # BERT-base unless tiny
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    words = " ".join(["the film was long and the story was good"] * 30)
    (tmp / "texts.csv").write_text("text,label\n" + "".join(f"{words},{'ab'[i % 2]}\n" for i in range(8)))
    config = {
        "name": "bench-text",
        "task": {"kind": "text-classification"},
        "data": {"path": str(tmp / "texts.csv"), "max_length": seq, "val_fraction": 0.0, "test_fraction": 0.0},
        "model": {"name": str(folder), "freeze": "none"},
        "train": {"batch_size": bs, "schedule": "constant", "device": args.device},
    }

    def batches(n: int):
        g = torch.Generator().manual_seed(0)
        return [
            {
                "input_ids": torch.randint(5, vocab, (bs, seq), generator=g),
                "attention_mask": torch.ones(bs, seq, dtype=torch.long),
                "labels": torch.randint(0, 2, (bs,), generator=g),
            }
            for _ in range(n)
        ]

    label = "bert-tiny" if args.tiny else "bert-base"
    return Workload(f"{label} seq{seq} b{bs}", "tokens/s", seq, bs, config, batches,
                    lambda: BertForSequenceClassification(cfg), False)  # fmt: skip


# ---------------------------------------------------------------- the two loops


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pinned(batches, device):
    if device.type != "cuda":
        return batches
    return [tuple(t.pin_memory() for t in b) if isinstance(b, tuple) else {k: v.pin_memory() for k, v in b.items()} for b in batches]  # fmt: skip


class OneProcessJob(DistContext):
    """A torchrun job of one process: the engine goes through DistributedDataParallel as it would on N GPUs."""

    @property
    def enabled(self) -> bool:
        return True


class Batches(list):
    """The benchmark's batches, with what the engine's sharded loader tells it: each global batch's size."""

    def __init__(self, items, batch_size: int):
        super().__init__(items)
        self.batch_sampler = SimpleNamespace(global_batch_size=lambda i: batch_size)


def engine_run(w: Workload, args, tmp: Path, compile_model: bool, ddp: bool = False) -> tuple[float, float]:
    """(units/s, peak GiB) of the engine's training loop over the workload's batches; `ddp`: as one process of
    a torchrun job (DDP over a process group of one)."""
    sections = {**w.config, "train": {**w.config["train"], "compile": compile_model}}
    config = snapshot_config(validate_dict(sections).with_base_dir(tmp))
    trainer = Trainer(config, new_run_dir(tmp / "runs", config.name), None, None)
    trainer.set_up()
    if ddp:
        backend = "nccl" if trainer.p.device.type == "cuda" else "gloo"
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
        trainer.dist = OneProcessJob()
        trainer.p = distribute(trainer.p, trainer.dist, lambda e: None)
    p = trainer.p
    host = pinned(w.make_batches(args.distinct_batches), p.device)

    def epoch(steps: int) -> float:
        p.train_loader = Batches([host[i % len(host)] for i in range(steps)], w.batch_size)
        p.batches_per_epoch = p.steps_per_epoch = steps
        p.total_steps = trainer.state.step + steps
        trainer.state.next_epoch()
        sync(p.device)
        t0 = time.perf_counter()
        trainer.train_epoch()
        sync(p.device)
        return time.perf_counter() - t0

    trainer.announce()
    epoch(args.warmup + (args.compile_warmup if compile_model else 0))
    reset_peak(p.device)
    seconds = epoch(args.steps)
    peak = peak_gib(p.device)
    if compile_model and not getattr(p.runner, "active", False):
        print("warning: torch.compile failed and the engine ran eagerly (see the run's log.txt)", flush=True)
    trainer.hooks.close(trainer)
    trainer.p = None
    if ddp:
        dist.destroy_process_group()
    devices.release_memory()
    return args.steps * w.batch_size * w.per_sample / seconds, peak


def plain_run(w: Workload, args) -> tuple[float, float]:
    """(units/s, peak GiB) of a hand-written loop with the same best practices."""
    device = devices.pick_device(args.device)
    amp = devices.autocast_dtype(device, "auto")
    torch.backends.cudnn.benchmark = device.type == "cuda"
    torch.manual_seed(0)
    model = w.plain_model().to(device)
    channels_last = w.cnn and device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    kernel = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **kernel)
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    loss_fn = torch.nn.CrossEntropyLoss()
    host = pinned(w.make_batches(args.distinct_batches), device)

    def step(batch) -> None:
        with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            if w.cnn:
                images, targets = (t.to(device, non_blocking=True) for t in batch)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                loss = loss_fn(model(images).float(), targets)
            else:
                b = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                targets = b.pop("labels")
                loss = loss_fn(model(**b).logits.float(), targets)
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(args.warmup):
        step(host[i % len(host)])
    sync(device)
    reset_peak(device)
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(host[i % len(host)])
    sync(device)
    seconds = time.perf_counter() - t0
    peak = peak_gib(device)
    return args.steps * w.batch_size * w.per_sample / seconds, peak


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="ResNet-18 at 32 px and a 2-layer BERT (a CPU check)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per round (default 50, tiny 4)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 15, tiny 2)")
    ap.add_argument("--compile-warmup", type=int, default=10, help="extra untimed steps for a compiled model")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--vision-batch", type=int, default=128)
    ap.add_argument("--text-batch", type=int, default=64)
    ap.add_argument("--distinct-batches", type=int, default=4)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile comparison")
    ap.add_argument("--only", choices=("vision", "text"), default=None)
    ap.add_argument("--no-ddp", action="store_true", help="skip the one-process DDP comparison")
    args = ap.parse_args()
    args.steps = args.steps or (4 if args.tiny else 50)
    args.warmup = args.warmup or (2 if args.tiny else 15)

    rows: list[tuple[str, str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        kinds = [k for k in ("vision", "text") if args.only in (None, k)]
        for kind in kinds:
            w = (vision_workload if kind == "vision" else text_workload)(args, tmp / kind)
            engine, plain = [], []
            for r in range(args.rounds):
                first, second = (plain_run, engine_run) if r % 2 == 0 else (engine_run, plain_run)
                for fn in (first, second):
                    (plain if fn is plain_run else engine).append(
                        fn(w, args) if fn is plain_run else fn(w, args, tmp / kind, False)
                    )
                    devices.release_memory()
            e, pl = statistics.median(x for x, _ in engine), statistics.median(x for x, _ in plain)
            rows.append((w.name, "plain loop", pl, max(m for _, m in plain), ""))
            rows.append((w.name, "engine (eager)", e, max(m for _, m in engine), f"engine/plain {e / pl:.3f} (goal >= 0.95)"))  # fmt: skip
            if not args.no_ddp:
                d, dm = engine_run(w, args, tmp / kind, False, ddp=True)
                rows.append((w.name, "engine, DDP x1", d, dm, f"DDP/engine {d / e:.3f} (goal >= 0.97)"))
            if kind == "vision" and not args.no_compile:
                c, cm = engine_run(w, args, tmp / kind, True)
                rows.append((w.name, "engine + compile", c, cm, f"compile/eager {c / e:.2f}x (goal >= 1.2x)"))
            units = w.unit
            print(f"[{time.perf_counter() - started:6.0f} s] {w.name} done ({units})", flush=True)
    device = devices.pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{name}, torch {torch.__version__}, {args.steps} timed steps x {args.rounds} rounds")
    print(f"{'workload':<26}{'loop':<18}{'throughput':>16}  {'peak mem':>9}  ratio")
    for wname, loop, rate, mem, ratio in rows:
        unit = "tokens/s" if "bert" in wname else "img/s"
        peak = "      n/a" if math.isnan(mem) else f"{mem:6.2f} GiB"
        print(f"{wname:<26}{loop:<18}{rate:>9.0f} {unit:<7}{peak:>10}  {ratio}")


if __name__ == "__main__":
    main()
