"""Feature cache files: what is written reads back the same, in memory or memory-mapped, and a file that was
cut short, altered or written for another key is never trusted."""

from __future__ import annotations

import pytest
import torch

from finetune_gui.core.features.store import DamagedCache, open_cache, read_header, write_cache


def _write(path, key="k1", rows=10):
    features = torch.arange(rows * 6, dtype=torch.float32).reshape(rows, 6) / 7
    targets = torch.arange(rows) % 3

    def fill(w):
        for start in range(0, rows, 4):  # streamed batch by batch, as the cache does
            w.add("features", features[start : start + 4])
        w.add("targets", targets)

    write_cache(path, key, fill)
    return features, targets


def test_tensors_read_back_equal_in_memory_and_memory_mapped(tmp_path):
    path = tmp_path / "train.features"
    features, targets = _write(path)
    in_memory = open_cache(path, "k1", ram_bytes=1 << 20)
    mapped = open_cache(path, "k1", ram_bytes=0)
    assert not in_memory.mapped and mapped.mapped
    for stored in (in_memory, mapped):
        assert torch.equal(stored.tensors["features"], features)
        assert torch.equal(stored.tensors["targets"], targets)


def test_bfloat16_features_and_odd_sizes_keep_their_bytes(tmp_path):
    path = tmp_path / "f.features"
    odd = torch.randn(3, 5).to(torch.bfloat16)  # 30 bytes: the next tensor must still start aligned
    write_cache(path, "k", lambda w: (w.add("a", odd), w.add("b", torch.tensor([1, 2, 3]))) and None)
    stored = open_cache(path, "k", ram_bytes=0)
    assert stored.tensors["a"].dtype == torch.bfloat16 and torch.equal(stored.tensors["a"], odd)
    assert torch.equal(stored.tensors["b"], torch.tensor([1, 2, 3]))


def test_a_changed_byte_in_the_features_is_found_by_the_checksum(tmp_path):
    path = tmp_path / "train.features"
    _write(path)
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedCache, match="do not match their checksum"):
        open_cache(path, "k1", ram_bytes=1 << 20)


@pytest.mark.parametrize("cut", [1, 100, 250])
def test_a_file_cut_short_is_damaged(tmp_path, cut):
    path = tmp_path / "train.features"
    _write(path)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(DamagedCache):
        read_header(path)


def test_a_file_of_another_key_is_not_used(tmp_path):
    path = tmp_path / "train.features"
    _write(path, key="old")
    with pytest.raises(KeyError):
        open_cache(path, "new", ram_bytes=1 << 20)


def test_a_failed_write_leaves_no_file_behind(tmp_path):
    path = tmp_path / "train.features"

    def fill(w):
        w.add("features", torch.ones(2, 2))
        raise RuntimeError("the model failed half-way")

    with pytest.raises(RuntimeError):
        write_cache(path, "k", fill)
    assert list(tmp_path.iterdir()) == []


def test_rows_of_another_shape_are_refused(tmp_path):
    def fill(w):
        w.add("features", torch.ones(2, 3))
        w.add("features", torch.ones(2, 4))

    with pytest.raises(ValueError, match="do not match"):
        write_cache(tmp_path / "x.features", "k", fill)
