"""The streaming safetensors writer produces files that safetensors itself reads back exactly."""

from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from finetune_gui.core.tensor_files import write_safetensors


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "bn.num_batches_tracked": torch.tensor(7),  # 0-dim int64
        "half": torch.randn(5, generator=g).half(),
        "brain": torch.randn(2, 3, generator=g).bfloat16(),
        "mask": torch.tensor([True, False, True]),
        "bytes": torch.arange(5, dtype=torch.uint8),
        "empty": torch.zeros(0, 4),
        "transposed": torch.randn(3, 5, generator=g).t(),  # not contiguous
    }


def test_a_written_file_loads_back_bit_for_bit_with_its_metadata(tmp_path):
    tensors = _tensors()
    path = tmp_path / "w.safetensors"
    with open(path, "wb") as f:
        digest = write_safetensors(f, tensors, {"task": "image-classification", "labels": '["a", "b"]'})

    loaded = load_file(str(path))
    assert sorted(loaded) == sorted(tensors)
    for name, t in tensors.items():
        assert loaded[name].dtype == t.dtype and loaded[name].shape == t.shape, name
        assert torch.equal(loaded[name], t), name
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"task": "image-classification", "labels": '["a", "b"]'}
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_unusual_dtypes_still_round_trip_through_safetensors_own_writer(tmp_path):
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("this torch has no float8")
    tensors = {"f8": torch.randn(4).to(torch.float8_e4m3fn), "x": torch.ones(2)}
    path = tmp_path / "w.safetensors"
    with open(path, "wb") as f:
        digest = write_safetensors(f, tensors)
    loaded = load_file(str(path))
    assert torch.equal(loaded["f8"].float(), tensors["f8"].float()) and torch.equal(loaded["x"], tensors["x"])
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
