"""The speed settings: what a run uses on the CPU and on a (mocked) CUDA GPU, the optimiser's fused/foreach
kernels, channels_last on CNNs, and torch.compile with its fallback to eager."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from finetune_gui.config import TrainConfig
from finetune_gui.core import devices
from finetune_gui.core.training import optim, speed
from finetune_gui.core.training.events import LogMessage
from finetune_gui.core.training.speed import CompiledForward, is_cnn, make_ready, plan_speed, train_through
from tests.factories import compile_whose_backward_breaks


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def cuda_plan(monkeypatch, bf16_native: bool, **train):
    # torch says an older GPU supports bf16 "including emulation" (slowly); only native support counts for auto
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation or bf16_native
    )
    t = TrainConfig(**train)
    return plan_speed(t, "cuda", devices.autocast_dtype("cuda", t.precision), cnn=True)


# ---------------------------------------------------------------- the choice per device


def test_the_cpu_keeps_fp32_the_default_layout_and_torchs_own_optimiser_loop():
    t = TrainConfig()
    plan = plan_speed(t, "cpu", devices.autocast_dtype("cpu", t.precision), cnn=True)
    assert (plan.precision, plan.channels_last, plan.cudnn_benchmark, plan.optimizer_kernel, plan.compile) == (
        "fp32",
        False,
        False,
        "default",
        False,
    )
    assert plan.describe() == "speed: fp32, AdamW; compile off"


def test_a_cuda_gpu_with_native_bf16_gets_bf16_autocast_channels_last_fused_adamw_and_cudnn_benchmark(monkeypatch):
    plan = cuda_plan(monkeypatch, bf16_native=True)
    assert plan.describe() == "speed: bf16 autocast, channels_last, fused AdamW, cudnn.benchmark; compile off"
    assert not plan.loss_scaling


def test_an_older_gpu_without_native_bf16_gets_fp16_with_loss_scaling(monkeypatch):
    plan = cuda_plan(monkeypatch, bf16_native=False)
    assert plan.precision == "fp16" and plan.loss_scaling
    assert plan.describe().startswith("speed: fp16 autocast with loss scaling, channels_last")


def test_a_deterministic_run_goes_without_cudnn_benchmark(monkeypatch):
    assert not cuda_plan(monkeypatch, True, deterministic=True).cudnn_benchmark


def test_compile_on_is_said_in_the_log_line(monkeypatch):
    assert cuda_plan(monkeypatch, True, compile=True).describe().endswith("; compile on")


def test_compile_auto_compiles_cnns_on_cuda_where_torch_compile_can_run_and_nothing_else(monkeypatch):
    def compiles(device: str, cnn: bool) -> bool:
        return plan_speed(TrainConfig(compile="auto"), device, None, cnn).compile

    monkeypatch.setattr(speed, "compile_usable", lambda device_type: device_type == "cuda")
    assert compiles("cuda", cnn=True)
    assert not compiles("cuda", cnn=False) and not compiles("cpu", cnn=True) and not compiles("mps", cnn=True)
    monkeypatch.setattr(speed, "compile_usable", lambda device_type: False)  # e.g. no Triton on this machine
    assert not compiles("cuda", cnn=True)
    assert plan_speed(TrainConfig(compile=True), "cpu", None, False).compile  # true compiles anything anywhere
    assert not plan_speed(TrainConfig(compile=False), "cuda", None, True).compile


@pytest.mark.parametrize("triton_found", [True, False])
def test_torch_compile_counts_as_usable_on_cuda_only_with_triton(monkeypatch, triton_found):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (object() if triton_found else None) if name == "triton" else real_find_spec(name, *a),
    )
    assert speed.compile_usable("cuda") == triton_found
    assert not speed.compile_usable("cpu") and not speed.compile_usable("mps")


@pytest.mark.parametrize("value", ["sometimes", 1, "yes"])
def test_train_compile_is_true_false_or_auto_and_says_so_otherwise(value):
    from finetune_gui.config import ConfigError, validate_dict

    assert [validate_dict({"train": {"compile": v}}).train.compile for v in (True, False, "auto")] == [
        True,
        False,
        "auto",
    ]
    with pytest.raises(ConfigError) as refused:
        validate_dict({"train": {"compile": value}})
    assert refused.value.problems == [f'train.compile: must be true, false or "auto", got {value!r}']


def test_channels_last_is_for_cnns_only_and_follows_memory_format():
    def layout(fmt: str, device: str, cnn: bool) -> bool:
        return plan_speed(TrainConfig(memory_format=fmt), device, None, cnn).channels_last

    assert layout("auto", "cuda", True) and not layout("auto", "cpu", True) and not layout("auto", "mps", True)
    assert layout("channels_last", "cpu", True)  # asked for: used on the CPU too
    assert not layout("channels_last", "cuda", False)  # a transformer has nothing to gain
    assert not layout("contiguous", "cuda", True)


def test_is_cnn_tells_a_convolutional_network_from_a_patch_embedding_transformer():
    assert is_cnn(small_cnn())
    vit_like = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.Flatten(2), nn.TransformerEncoderLayer(16, 2))
    assert not is_cnn(vit_like)
    assert not is_cnn(nn.Linear(4, 2))


# ---------------------------------------------------------------- the optimiser's kernels


@pytest.mark.parametrize(
    "name, device, kernel",
    [
        ("adamw", "cuda", "fused"),
        ("adam", "cuda", "fused"),
        ("sgd", "cuda", "fused"),
        ("rmsprop", "cuda", "foreach"),  # torch has no fused RMSprop
        ("adamw", "cpu", "default"),
        ("adamw", "mps", "default"),
    ],
)
def test_the_optimiser_kernel_is_fused_on_cuda_where_torch_has_one(name, device, kernel):
    assert optim.optimizer_kernel(name, device) == kernel


def groups_of(model: nn.Module) -> list[dict]:
    return [{"params": list(model.parameters()), "lr": 0.1, "weight_decay": 0.0, "name": "all"}]


def test_build_optimizer_passes_the_chosen_kernel_to_torch(monkeypatch):
    model = small_cnn()
    assert not optim.build_optimizer(TrainConfig(), groups_of(model)).defaults["fused"]  # CPU: torch's default
    monkeypatch.setattr(optim, "optimizer_kernel", lambda name, device: "fused" if name == "adamw" else "foreach")
    assert optim.build_optimizer(TrainConfig(), groups_of(model)).defaults["fused"] is True
    assert optim.build_optimizer(TrainConfig(optimizer="rmsprop"), groups_of(model)).defaults["foreach"] is True


def test_a_resumed_optimiser_keeps_its_own_kernel_choice_not_the_checkpoints(monkeypatch):
    model = small_cnn()
    monkeypatch.setattr(optim, "optimizer_kernel", lambda name, device: "fused")
    saved_by = optim.build_optimizer(TrainConfig(), groups_of(model))  # as on a GPU machine
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    saved_by.step()
    state = saved_by.state_dict()
    monkeypatch.undo()
    resumed = optim.build_optimizer(TrainConfig(), groups_of(model))  # on a machine without fused kernels
    optim.load_optimizer_state(resumed, state)
    assert not resumed.param_groups[0]["fused"]
    assert resumed.state_dict()["state"][0]["exp_avg"].equal(state["state"][0]["exp_avg"])
    resumed.step()  # the loaded state works with the loop kernel


# ---------------------------------------------------------------- preparing the model


def test_make_ready_puts_a_cnn_in_channels_last_when_the_plan_says_so():
    model, said = small_cnn(), []
    runner = make_ready(model, plan_speed(TrainConfig(memory_format="channels_last"), "cpu", None, True), said.append)
    assert runner is model
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert said == [LogMessage("info", "speed: fp32, channels_last, AdamW; compile off")]
    untouched = small_cnn()
    make_ready(untouched, plan_speed(TrainConfig(), "cpu", None, True), said.append)
    assert untouched[0].weight.is_contiguous() and not torch.backends.cudnn.benchmark


def test_compile_that_fails_at_once_warns_in_one_line_and_runs_eagerly(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no C++ compiler found\nsecond line of the story")

    monkeypatch.setattr(torch, "compile", broken)
    model, said = small_cnn(), []
    runner = make_ready(model, plan_speed(TrainConfig(compile=True), "cpu", None, True), said.append)
    x = torch.randn(2, 3, 8, 8)
    assert isinstance(runner, CompiledForward) and not runner.active
    assert torch.equal(runner(x), model(x))
    warning = said[-1]
    assert warning.level == "warning" and "\n" not in warning.text
    assert "torch.compile failed (RuntimeError: no C++ compiler found)" in warning.text
    assert "goes on without compiling" in warning.text


def test_compile_that_fails_on_the_first_batch_falls_back_once_and_stays_eager(monkeypatch):
    calls = []

    def compiled_that_breaks(*a, **k):
        calls.append(1)
        raise RuntimeError("BackendCompilerFailed: inductor")

    monkeypatch.setattr(torch, "compile", lambda model, **k: compiled_that_breaks)
    model, said = small_cnn(), []
    runner = CompiledForward(model, said.append)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(runner(x), model(x)) and torch.equal(runner(x), model(x))
    assert len(calls) == 1 and len(said) == 1 and not runner.active


def test_out_of_memory_in_a_compiled_model_is_not_taken_for_a_compile_failure(monkeypatch):
    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(torch, "compile", lambda model, **k: oom)
    runner = CompiledForward(small_cnn(), lambda e: None)
    with pytest.raises(torch.OutOfMemoryError):
        runner(torch.randn(2, 3, 8, 8))
    assert runner.active


# ---------------------------------------------------------------- a compile failure in the first backward


def cnn_with_batch_norm_and_dropout() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


def one_batch(model: nn.Module, forward) -> None:
    """A training batch as the loop does it: forward (random dropout), a loss with a part outside the model's
    graph (like train.l1), backward."""
    loss = forward(torch.ones(2, 3, 8, 8)).pow(2).sum() + 0.1 * model[0].weight.abs().sum()
    loss.backward()


def test_a_compile_failure_in_the_first_backward_redoes_the_batch_eagerly_as_if_it_had_never_compiled(monkeypatch):
    monkeypatch.setattr(torch, "compile", compile_whose_backward_breaks(torch.compile, RuntimeError("bw broke\nmore")))
    eager, model = cnn_with_batch_norm_and_dropout(), cnn_with_batch_norm_and_dropout()
    said = []
    runner = CompiledForward(model, said.append)
    assert runner.active

    torch.manual_seed(1)
    train_through(runner, lambda batch: one_batch(model, runner), None)
    after_fallback = torch.rand(1)
    torch.manual_seed(1)
    one_batch(eager, eager)
    after_eager = torch.rand(1)

    assert not runner.active
    for a, b in zip(model.parameters(), eager.parameters()):
        assert torch.equal(a.grad, b.grad)  # nothing of the failed backward is left in the gradients
    for a, b in zip(model.buffers(), eager.buffers()):
        assert torch.equal(a, b)  # batch-norm statistics counted once
    assert torch.equal(after_fallback, after_eager)  # the same random numbers from here on
    [warning] = said
    assert warning.level == "warning" and "\n" not in warning.text
    assert warning.text.startswith("torch.compile failed (RuntimeError: bw broke); the run goes on without compiling")


def test_only_the_first_batch_is_guarded_and_a_working_compile_stays_on(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda model, **k: lambda x: (calls.append(1), model(x))[1])
    model, said = cnn_with_batch_norm_and_dropout(), []
    runner = CompiledForward(model, said.append)
    for _ in range(2):
        train_through(runner, lambda batch: one_batch(model, runner), None)
    assert runner.active and runner.backward_proven and len(calls) == 2 and said == []


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        ValueError("the run's own mistake, raised eagerly too"),
    ],
)
def test_an_error_that_is_not_a_compile_failure_fails_the_batch_without_a_compile_warning(monkeypatch, error):
    monkeypatch.setattr(torch, "compile", lambda model, **k: model)
    model, said = cnn_with_batch_norm_and_dropout(), []
    runner = CompiledForward(model, said.append)

    def batch_step(batch):
        one_batch(model, runner)
        raise error

    with pytest.raises(type(error)):
        train_through(runner, batch_step, None)
    assert said == []
    assert runner.active == isinstance(error, torch.OutOfMemoryError)  # out of memory is no reason to stop compiling
