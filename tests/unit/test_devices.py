from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch

from finetune_gui.config import ConfigError
from finetune_gui.core import devices


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


def test_auto_picks_cpu_without_gpus(no_gpu):
    assert devices.pick_device("auto") == torch.device("cpu")
    assert devices.pick_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("req", ["cuda", "cuda:1", "mps"])
def test_unavailable_device_is_a_config_error(no_gpu, req):
    with pytest.raises(ConfigError) as info:
        devices.pick_device(req)
    assert info.value.problems == [f"train.device: {req} is not available on this machine; available: cpu"]


def test_bad_device_name_is_a_config_error():
    with pytest.raises(ConfigError, match="train.device"):
        devices.pick_device("tpu")


def test_available_devices_lists_cpu_first(no_gpu):
    found = devices.available_devices()
    assert [d.name for d in found] == ["cpu"]
    assert "cores" in found[0].description


def test_cuda_index_beyond_count_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(
        devices, "available_devices", lambda: [devices.DeviceInfo("cpu", "x"), devices.DeviceInfo("cuda:0", "y")]
    )
    assert devices.pick_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match="cuda:3 is not available on this machine; available: cpu, cuda:0"):
        devices.pick_device("cuda:3")


# ---------------------------------------------------------------- precision


def test_autocast_dtype_cpu_and_mps():
    assert devices.autocast_dtype(torch.device("cpu"), "auto") is None
    assert devices.autocast_dtype("mps", "auto") is None
    assert devices.autocast_dtype("cpu", "fp32") is None
    assert devices.autocast_dtype("cpu", "bf16") is torch.bfloat16
    with pytest.raises(ConfigError, match="train.precision: fp16"):
        devices.autocast_dtype("cpu", "fp16")


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_autocast_dtype_cuda_auto(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert devices.autocast_dtype("cuda:0", "auto") is expected
    assert devices.autocast_dtype("cuda", "fp16") is torch.float16
    assert devices.autocast_dtype("cuda", "fp32") is None
    if not bf16:
        with pytest.raises(ConfigError, match="bf16"):
            devices.autocast_dtype("cuda", "bf16")


def test_needs_grad_scaler_only_for_fp16():
    assert devices.needs_grad_scaler(torch.float16)
    assert not devices.needs_grad_scaler(torch.bfloat16)
    assert not devices.needs_grad_scaler(None)


# ---------------------------------------------------------------- randomness


def _draw():
    return (random.random(), random.gauss(0, 1), float(np.random.rand()), np.random.randn(), torch.rand(3).tolist())


def test_seed_everything_repeats(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        devices.seed_everything(7, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        assert devices.os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        a = _draw()
        devices.seed_everything(7, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
        assert _draw() == a
        devices.seed_everything(8, deterministic=False)
        assert _draw() != a
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


def test_rng_state_round_trips_through_weights_only_load():
    devices.seed_everything(3, deterministic=False)
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    np.random.randn()  # and in numpy's
    state = devices.rng_state()
    buf = io.BytesIO()
    torch.save(state, buf)
    expected = _draw()
    _draw()  # move on
    buf.seek(0)
    devices.set_rng_state(torch.load(buf, weights_only=True))
    assert _draw() == expected


# ---------------------------------------------------------------- memory


def test_is_oom():
    assert devices.is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert devices.is_oom(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert devices.is_oom(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert not devices.is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not devices.is_oom(ValueError("out of memory"))


def test_release_memory_runs():
    devices.release_memory()
