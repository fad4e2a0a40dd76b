"""What this machine can do: device choice (cuda > mps > cpu), AMP dtype, seeding, RNG state, OOM handling."""

from __future__ import annotations

import gc
import os
import platform
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from finetune_gui.config import ConfigError

__all__ = [
    "DeviceInfo",
    "autocast_dtype",
    "available_devices",
    "is_oom",
    "needs_grad_scaler",
    "pick_device",
    "release_memory",
    "rng_state",
    "seed_everything",
    "set_rng_state",
]


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # what train.device accepts: "cpu", "cuda:0", "mps"
    description: str  # for people: GPU name and memory
    memory_bytes: int | None = None


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[DeviceInfo]:
    """Devices this machine offers, best first after the CPU: cpu, cuda:0…, mps."""
    cpu_name = platform.processor() or platform.machine() or "CPU"
    out = [DeviceInfo("cpu", f"{cpu_name}, {os.cpu_count() or 1} cores")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            mem = int(props.total_memory)
            out.append(DeviceInfo(f"cuda:{i}", f"{props.name}, {mem / 2**30:.1f} GiB", mem))
    if _mps_available():
        out.append(DeviceInfo("mps", "Apple GPU (Metal)"))
    return out


def _unavailable(requested: str) -> ConfigError:
    names = ", ".join(d.name for d in available_devices())
    return ConfigError([f"train.device: {requested} is not available on this machine; available: {names}"])


def pick_device(requested: str) -> torch.device:
    """The torch device for train.device: auto picks cuda, else mps, else cpu."""
    req = (requested or "auto").strip().lower()
    if req == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if req == "cpu":
        return torch.device("cpu")
    if req == "mps":
        if not _mps_available():
            raise _unavailable(requested)
        return torch.device("mps")
    m = re.fullmatch(r"cuda(?::(\d+))?", req)
    if m:
        if not torch.cuda.is_available():
            raise _unavailable(requested)
        index = int(m.group(1)) if m.group(1) is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise _unavailable(requested)
        return torch.device("cuda", index)
    raise ConfigError([f"train.device: {requested!r} is not a device; use auto, cpu, cuda, cuda:N or mps"])


def autocast_dtype(device: torch.device | str, precision: str) -> torch.dtype | None:
    """The autocast dtype for train.precision on `device` (None = full fp32, no autocast)."""
    kind = torch.device(device).type
    if precision == "fp32":
        return None
    if precision == "auto":
        if kind == "cuda":  # emulated bf16 (pre-Ampere GPUs) is slower than fp16 with loss scaling
            return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
        return None
    if precision == "bf16":
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(["train.precision: this GPU does not support bf16; use fp16 or auto"])
        return torch.bfloat16
    if precision == "fp16":
        if kind == "cpu":
            raise ConfigError(["train.precision: fp16 is not supported on the CPU; use bf16 or fp32"])
        return torch.float16
    raise ConfigError([f"train.precision: unknown precision {precision!r}; use auto, fp32, bf16 or fp16"])


def needs_grad_scaler(dtype: torch.dtype | None) -> bool:
    """fp16 needs loss scaling to keep small gradients from underflowing; bf16 and fp32 do not."""
    return dtype == torch.float16


# ---------------------------------------------------------------- randomness


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed python, numpy and torch (all GPUs); deterministic=True also asks for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.are_deterministic_algorithms_enabled():  # undo an earlier run's setting (the call is slow)
        torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = deterministic


def rng_state() -> dict[str, Any]:
    """All RNG states as tensors and plain data (survives torch.save + torch.load(weights_only=True))."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() returned; a CUDA state is restored only where GPUs are there."""
    py = state["python"]
    gauss = py["gauss"]
    random.setstate((int(py["version"]), tuple(int(x) for x in py["state"].tolist()), gauss))
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["kind"],
            npst["keys"].numpy().astype(np.uint32),
            int(npst["pos"]),
            int(npst["has_gauss"]),
            float(npst["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([t.cpu() for t in cuda])


# ---------------------------------------------------------------- memory

_OOM_MESSAGES = ("out of memory", "cudnn_status_alloc_failed", "cublas_status_alloc_failed", "failed to allocate")


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error on any device."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if isinstance(exc, RuntimeError):
        msg = str(exc).lower()
        return any(m in msg for m in _OOM_MESSAGES)
    return False


def release_memory() -> None:
    """Collect garbage and hand cached device memory back (call after dropping model references)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if _mps_available():
        try:
            torch.mps.empty_cache()
        except (AttributeError, RuntimeError):
            pass
