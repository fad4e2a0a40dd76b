"""Shared pieces of the fault-injection suite: tiny configs, a tiny registered CNN, process probes.

The suite trains many short runs, so most use `tinynet`: a two-layer CNN registered in torchvision's model
registry for the test only (it goes through the same `build_model` → torchvision path as resnet18, but a
run takes about a second). A few tests use resnet18 at 32 px or the tiny BERT of tests/factories.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TINYNET = "tinynet"


def register_tinynet() -> bool:
    """Register `tinynet` with torchvision's registry; False when it already was."""
    from torch import nn
    from torchvision.models import _api

    if TINYNET in _api.BUILTIN_MODELS:
        return False

    class TinyNet(nn.Module):
        def __init__(self, num_classes: int = 10, dropout: float = 0.0):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, stride=2, padding=1),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.dropout = nn.Dropout(dropout)
            self.fc = nn.Linear(16, num_classes)

        def forward(self, x):
            return self.fc(self.dropout(self.features(x)))

    def tinynet(*, weights=None, progress: bool = True, **kwargs: Any) -> nn.Module:
        return TinyNet(**kwargs)

    _api.BUILTIN_MODELS[TINYNET] = tinynet
    return True


def unregister_tinynet() -> None:
    from torchvision.models import _api

    _api.BUILTIN_MODELS.pop(TINYNET, None)


def image_sections(images: Path, **overrides: dict) -> dict[str, Any]:
    sections: dict[str, Any] = {
        "name": "fault",
        "task": {"kind": "image-classification"},
        "data": {"path": str(images), "image_size": 32, "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": TINYNET, "allow_random_init": True, "freeze": "none"},
        "augment": {"random_resized_crop": True, "hflip": 0.5},
        "train": {"epochs": 2, "batch_size": 4, "lr": 1e-2, "log_every": 1, "seed": 7},
        "checkpoint": {"keep_last": 2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            sections.setdefault(key, {}).update(value)
        else:
            sections[key] = value
    return sections


def image_config(images: Path, **overrides: dict):
    from finetune_gui.config import validate_dict

    return validate_dict(image_sections(images, **overrides))


def weights_equal(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)


def only_run(output: Path) -> Path:
    runs = [p for p in output.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


# ---------------------------------------------------------------- process probes (Linux /proc)


def child_pids(pid: int | None = None) -> list[int]:
    """Live (not zombie) child processes of `pid` (default: this process)."""
    pid = pid or os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and state != "Z":
            out.append(int(entry))
    return out


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def replace_forward_batch(monkeypatch, make) -> None:
    """Replace forward_batch wherever training calls it (the loop, the LR finder, the batch-size search).

    `make(real)` returns the replacement, given the real function.
    """
    from finetune_gui.core.training import batches, engine, lr_find

    fake = make(batches.forward_batch)
    for module in (batches, engine, lr_find):
        monkeypatch.setattr(module, "forward_batch", fake)


def fit_saying_cache(config, out: Path):
    """Fit `config` into `out` (it must complete); the result and the run's "feature cache" log lines."""
    from finetune_gui.core.training.engine import fit
    from finetune_gui.core.training.events import LogMessage

    logs: list[str] = []
    result = fit(config, lambda e: logs.append(e.text) if isinstance(e, LogMessage) else None, output_dir=out)
    assert result.status == "completed", result
    return result, [line for line in logs if line.startswith("feature cache")]


def stop_at_step(control, stop_after: int | None, logs: list[str]):
    """A listener that stops the run after step `stop_after` (None: never) and keeps its feature-cache lines."""
    from finetune_gui.core.training.events import LogMessage, StepMetrics

    def listener(event):
        if isinstance(event, StepMetrics) and event.step == stop_after:
            control.stop()
        if isinstance(event, LogMessage) and event.text.startswith("feature cache"):
            logs.append(event.text)

    return listener
