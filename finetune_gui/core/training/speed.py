"""The GPU path, tuned: which speed settings a run uses on its device (a pure choice, `plan_speed`), and the
model made ready for them (`make_ready`: cudnn.benchmark, channels_last, torch.compile with an eager fallback).

Autocast itself is entered where a batch goes through the model (batches.forward_batch); the optimiser's
fused/foreach kernels are chosen by optim.optimizer_kernel. This module only puts the choices together and
says them in one line of the run's log.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from finetune_gui.config import TrainConfig
from finetune_gui.core import devices
from finetune_gui.core.errors import FinetuneError
from finetune_gui.core.training.events import Listener, LogMessage
from finetune_gui.core.training.optim import optimizer_kernel

__all__ = [
    "BatchStart",
    "CompiledForward",
    "SpeedPlan",
    "compile_usable",
    "is_cnn",
    "make_ready",
    "plan_speed",
    "train_through",
]

OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}


@dataclass(frozen=True)
class SpeedPlan:
    """The speed settings of one run, as chosen for its device and model."""

    precision: str  # "fp32", "bf16" or "fp16"
    loss_scaling: bool  # fp16 needs a GradScaler
    channels_last: bool
    cudnn_benchmark: bool
    optimizer: str  # "AdamW", ...
    optimizer_kernel: str  # "fused", "foreach" or "default"
    compile: bool

    def describe(self) -> str:
        """One line for the run's log, e.g. "speed: bf16 autocast, channels_last, fused AdamW, cudnn.benchmark;
        compile off"."""
        parts = ["fp32" if self.precision == "fp32" else f"{self.precision} autocast"]
        if self.loss_scaling:
            parts[0] += " with loss scaling"
        if self.channels_last:
            parts.append("channels_last")
        kernel = "" if self.optimizer_kernel == "default" else f"{self.optimizer_kernel} "
        parts.append(f"{kernel}{self.optimizer}")
        if self.cudnn_benchmark:
            parts.append("cudnn.benchmark")
        return f"speed: {', '.join(parts)}; compile {'on' if self.compile else 'off'}"


def is_cnn(model: nn.Module) -> bool:
    """True for a convolutional network: more than one Conv2d (a ViT has one, its patch embedding)."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules()) > 1


def plan_speed(train: TrainConfig, device_type: str, amp_dtype: torch.dtype | None, cnn: bool) -> SpeedPlan:
    """The speed settings for `train` on a device of `device_type` ("cuda", "mps", "cpu") and a model that is a
    CNN or not. `amp_dtype` is devices.autocast_dtype's answer for train.precision on that device.

    channels_last only helps convolutions, so it is never applied to other models; "auto" uses it on CUDA,
    where tensor cores want it. train.compile = "auto" compiles CNNs on CUDA when torch.compile can run there. cudnn.benchmark picks the fastest convolution algorithms, which may differ
    between runs, so a deterministic run goes without it.
    """
    fmt = train.memory_format
    channels_last = cnn and (fmt == "channels_last" or (fmt == "auto" and device_type == "cuda"))
    return SpeedPlan(
        precision=str(amp_dtype or "fp32").replace("torch.", "").replace("bfloat16", "bf16").replace("float16", "fp16"),
        loss_scaling=devices.needs_grad_scaler(amp_dtype),
        channels_last=channels_last,
        cudnn_benchmark=device_type == "cuda" and not train.deterministic,
        optimizer=OPTIMIZER_NAMES.get(train.optimizer, train.optimizer),
        optimizer_kernel=optimizer_kernel(train.optimizer, device_type),
        compile=train.compile is True or (train.compile == "auto" and cnn and compile_usable(device_type)),
    )


def compile_usable(device_type: str) -> bool:
    """Whether torch.compile's default backend can make kernels for `device_type`: on CUDA it needs Triton. The
    CPU (a C++ compiler) and Apple GPUs are left to an explicit train.compile = true."""
    return device_type == "cuda" and importlib.util.find_spec("triton") is not None


class CompiledForward:
    """Calls the model through torch.compile; when compiling fails (at once or at a later recompilation), says
    so once in the log and goes on with the eager model for the rest of the run. Out-of-memory errors are
    not compile failures and pass through.

    The backward graph is compiled later, at the first .backward(): `train_through` guards that one."""

    def __init__(self, model: nn.Module, say: Listener):
        self.model = model
        self.say = say
        self.compiled: Callable[..., Any] | None = None
        self.backward_proven = False  # a backward through the compiled model has worked
        try:
            self.compiled = torch.compile(model)
        except Exception as e:  # noqa: BLE001 - whatever stops compiling, the run goes on eagerly
            self.fall_back(e)

    @property
    def active(self) -> bool:
        """True while the compiled model is in use (False after a fallback)."""
        return self.compiled is not None

    def fall_back(self, error: BaseException) -> None:
        self.compiled = None
        self.warn(error)

    def warn(self, error: BaseException) -> None:
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        self.say(
            LogMessage(
                "warning",
                f"torch.compile failed ({type(error).__name__}: {first_line}); the run goes on without compiling "
                "(eager mode). Set train.compile = false to skip the attempt.",
            )
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as e:
                if devices.is_oom(e):
                    raise
                self.fall_back(e)
        return self.model(*args, **kwargs)


def train_through(runner: Any, batch_step: Callable[[Any], None], batch: Any) -> None:
    """Run `batch_step(batch)` (one batch's forward and backward through `runner`). The first one through a compiled
    model is guarded: should it fail (its backward compiles then), the model's buffers, its gradients and the
    random state go back to what they were before it, and the batch is done again eagerly, so the run goes on
    as if it had never compiled. The compile error is then one warning line; an error the eager batch raises
    too is the run's own and fails it. Out-of-memory errors and the engine's own errors pass through."""
    if not isinstance(runner, CompiledForward) or not runner.active or runner.backward_proven:
        batch_step(batch)
        return
    before = BatchStart(runner.model)
    try:
        batch_step(batch)
    except Exception as e:
        if devices.is_oom(e) or isinstance(e, FinetuneError) or not runner.active:  # not a compile failure
            raise
        before.restore()
        runner.compiled = None
        batch_step(batch)
        runner.warn(e)  # said once the eager batch has worked: a compile failure, not the run's own error
    runner.backward_proven = True


class BatchStart:
    """What a training batch changes besides the optimiser: the model's buffers (batch-norm statistics), its
    parameters' gradients and the random number generators, kept to be put back."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        self.grads = [(p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()]
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    def restore(self) -> None:
        with torch.no_grad():
            for name, b in self.model.named_buffers():
                if name in self.buffers:
                    b.copy_(self.buffers[name])
        for p, grad in self.grads:
            p.grad = grad
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


def make_ready(model: nn.Module, plan: SpeedPlan, say: Listener) -> Callable[..., Any]:
    """Apply `plan` to `model` (already on its device) and return what the loop calls to run it: the model
    itself, or a CompiledForward around it. The model's weights and their names stay as they were."""
    torch.backends.cudnn.benchmark = plan.cudnn_benchmark  # set either way: an earlier run may have turned it on
    if plan.channels_last:
        model.to(memory_format=torch.channels_last)
    say(LogMessage("info", plan.describe()))
    if plan.compile:
        return CompiledForward(model, say)
    return model
