"""Running the real CLI under torchrun (and alone) on a tiny text task, for the distributed tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_reviews_csv
from tests.factories import tiny_bert_dir

CONFIG = """name = "dist"
[task]
kind = "text-classification"
[data]
path = "reviews.csv"
val_fraction = 0.25
test_fraction = 0.0
max_length = 24
num_workers = 0
[model]
name = "tiny-bert"
freeze = "none"
backbone_dropout = 0.0
[train]
epochs = {epochs}
batch_size = 16
lr = 3e-3
seed = 3
log_every = 1
[early_stopping]
enabled = false
[checkpoint]
keep_last = 5
"""


LM_CONFIG = """name = "lm"
[task]
kind = "causal-lm"
[data]
path = "corpus.txt"
max_length = 16
val_fraction = 0.2
test_fraction = 0.0
num_workers = 0
[model]
name = "tiny-gpt2"
freeze = "none"
backbone_dropout = 0.0
[model.lora]
enabled = true
r = 4
dropout = 0.0
[train]
epochs = 3
batch_size = 8
lr = 5e-3
seed = 3
log_every = 1
strategy = "{strategy}"
[early_stopping]
enabled = false
[checkpoint]
keep_last = 5
"""


def make_lm_task(root: Path, strategy: str) -> Path:
    """A tiny GPT-2 with LoRA adapters (dropout off) on a small corpus, with train.strategy set; returns the config."""
    from tests.factories import tiny_gpt2_dir, tiny_text_corpus

    if not (root / "tiny-gpt2").exists():
        tiny_gpt2_dir(root)
        (root / "corpus.txt").write_text("\n%\n".join(tiny_text_corpus() * 3) + "\n", encoding="utf-8")
    config = root / f"{strategy}.toml"
    config.write_text(LM_CONFIG.format(strategy=strategy), encoding="utf-8")
    return config


def make_task(root: Path, epochs: int = 2, samples: int = 72) -> Path:
    """A folder with a tiny BERT (no BatchNorm; dropout off), a review CSV and a config; returns the config."""
    tiny_bert_dir(root)
    make_reviews_csv(root / "reviews.csv", n=samples)
    config = root / "config.toml"
    config.write_text(CONFIG.format(epochs=epochs), encoding="utf-8")
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    env["FINETUNE_GUI_DIST_TIMEOUT_S"] = "60"
    return env


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def standalone(nproc: int) -> list[str]:
    """torchrun on one machine, on a free port (tests may run side by side)."""
    return torchrun("--nnodes", "1", "--nproc-per-node", str(nproc), "--rdzv-backend", "c10d",
                    "--rdzv-endpoint", f"127.0.0.1:{free_port()}")  # fmt: skip


def cli(*args: str) -> list[str]:
    return ["-m", "finetune_gui", *args]


def run(command: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def train(cwd: Path, output: str, nproc: int = 1, *extra: str, config: str = "config.toml") -> Path:
    """Train a config with `nproc` processes (1: no torchrun); returns the run folder."""
    args = cli("train", config, "--output", output, "--quiet", *extra)
    run((standalone(nproc) + args) if nproc > 1 else [sys.executable, *args], cwd)
    (folder,) = (cwd / output).iterdir()
    return folder


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def largest_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def interrupted_copy(finished, to):
    """A copy of a finished run as if it had been cut off after its first epoch's checkpoint."""
    shutil.copytree(finished, to)
    (first, *later) = sorted((to / "checkpoints").glob("step-*.safetensors"), key=lambda p: int(p.stem[5:]))
    for f in later:
        f.unlink()
        f.with_name(f.stem + ".state.pt").unlink()
    (to / "model.safetensors").unlink()
    return to
