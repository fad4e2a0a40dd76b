"""Case 7: out of memory. A simulated `torch.OutOfMemoryError` (raised, after a big allocation, by every step on a
batch larger than the "device" holds): the run fails with a message naming a batch size that fits — found by
trying smaller steps on the run's own model — all memory the run held is released, and the next run in the same
process succeeds. The batch-size finder (`find_batch_size`, `finetune-gui find-batch-size`) finds the largest
size that fits. On a CUDA machine, a real OOM is forced too."""

from __future__ import annotations

import gc
import json
import warnings

import pytest
import torch

from finetune_gui.cli import EXIT_OOM, main
from finetune_gui.core.errors import OutOfMemory
from finetune_gui.core.training.batch_size import find_batch_size, search_batch_size
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import EventLog, RunFailed
from tests.faults.helpers import image_config, replace_forward_batch

FITS = 6  # the simulated device holds batches of up to 6 images


@pytest.mark.parametrize("limit", [1, 2, 3, 6, 7, 100, 4096])
@pytest.mark.parametrize("start", [1, 5, 32, 4096])
def test_the_search_finds_the_largest_size_that_fits_in_few_tries(limit, start):
    tried = []

    def fits(n):
        tried.append(n)
        return n <= limit

    result = search_batch_size(fits, start, upper=4096)
    assert result.batch_size == limit
    assert result.limit == ("cap" if limit == 4096 else "memory")
    assert len(tried) <= 2 * 13 + 1 and len(set(tried)) == len(tried)  # ~2 log2(4096) steps, none repeated


def test_the_search_refuses_when_not_even_one_sample_fits():
    with pytest.raises(OutOfMemory, match="even a batch of 1 sample"):
        search_batch_size(lambda n: False, 8, upper=64)


def live_tensor_bytes() -> int:
    """Bytes of all tensor storages alive in this process (CPU "device memory", measured exactly)."""
    gc.collect()
    seen, total = set(), 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance() on some torch module objects warns about deprecations
        for obj in gc.get_objects():
            if isinstance(obj, torch.Tensor) and not obj.is_meta:
                storage = obj.untyped_storage()
                if storage.data_ptr() not in seen:
                    seen.add(storage.data_ptr())
                    total += storage.nbytes()
    return total


@pytest.fixture
def small_device(monkeypatch):
    """Steps on more than FITS images allocate 64 MB, then raise torch.OutOfMemoryError as CUDA would."""
    calls = {"oom": 0}

    def make(real_forward):
        def forward_batch(p, batch, *, train):
            images = batch[0]
            if train and images.shape[0] > FITS:
                activations = torch.ones(16 * 2**20)  # 64 MB held by this frame when the error flies  # noqa: F841
                calls["oom"] += 1
                raise torch.OutOfMemoryError(
                    f"CUDA out of memory. Tried to allocate 2.00 GiB (batch {images.shape[0]})"
                )
            return real_forward(p, batch, train=train)

        return forward_batch

    replace_forward_batch(monkeypatch, make)
    return calls


def test_find_batch_size_tries_real_steps_and_returns_the_largest_that_fits(tinynet, images, small_device):
    result = find_batch_size(image_config(images, train={"batch_size": 2}))
    assert result.batch_size == FITS
    assert result.tried[:3] == [(2, True), (4, True), (8, False)]
    assert small_device["oom"] >= 2


def test_find_batch_size_stops_at_the_training_split(tinynet, images):
    result = find_batch_size(image_config(images, train={"batch_size": 4}))  # nothing runs out of memory
    assert result.batch_size == 18 and result.limit == "data"  # 36 images, half held out


def test_an_oom_run_names_a_size_that_fits_frees_its_memory_and_the_next_run_succeeds(
    tmp_path, tinynet, images, small_device
):
    baseline = live_tensor_bytes()
    log = EventLog()
    result = fit(image_config(images, train={"batch_size": 16}), log, output_dir=tmp_path / "runs")
    assert result.status == "failed"
    (failed,) = log.of(RunFailed)
    assert failed.error_type == "OutOfMemory" and not failed.details
    assert f"batch size {FITS} fits" in failed.message and f"train.batch_size = {FITS}" in failed.message
    assert json.loads((result.run_dir / "status.json").read_text())["error"] == "OutOfMemory"
    del log, failed
    grown = live_tensor_bytes() - baseline  # with the result still held, as the GUI holds it
    assert grown < 2**20, f"{grown / 2**20:.1f} MB of tensors still alive after the failed run"

    again = fit(image_config(images, train={"batch_size": FITS}), None, output_dir=tmp_path / "runs")
    assert again.status == "completed"
    assert live_tensor_bytes() - baseline < 2**20
    assert isinstance(result.error, OutOfMemory)


def test_cli_exits_6_with_the_size_and_find_batch_size_prints_it(tmp_path, tinynet, images, small_device, capsys):
    path = tmp_path / "c.toml"
    path.write_text(image_config(images, train={"batch_size": 12}).to_toml())
    assert main(["train", str(path), "--output", str(tmp_path / "runs"), "--quiet"]) == EXIT_OOM
    err = capsys.readouterr().err
    assert f"train.batch_size = {FITS}" in err and "Traceback" not in err
    assert main(["find-batch-size", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"largest batch size that fits: {FITS}" in out and "out of memory" in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the lent device machine)")
def test_a_real_cuda_oom_is_reported_with_a_size_that_fits_and_memory_returns(tmp_path, tinynet, images):
    """resnet50 at 512 px: a batch of 18 (all training images) takes ~20 GB of activations in fp32. The
    device is limited to 6 GB for this process, so it runs out of memory for real."""
    torch.cuda.set_per_process_memory_fraction(6 * 2**30 / torch.cuda.get_device_properties(0).total_memory)
    try:
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        config = image_config(
            images,
            model={"name": "resnet50"},
            data={"image_size": 512},
            train={"batch_size": 18, "device": "cuda", "precision": "fp32", "epochs": 1},
        )
        log = EventLog()
        result = fit(config, log, output_dir=tmp_path / "runs")
        (failed,) = log.of(RunFailed)
        assert failed.error_type == "OutOfMemory", failed
        assert "fits" in failed.message and "train.batch_size =" in failed.message
        size = int(failed.message.split("train.batch_size = ")[1].split()[0])
        del result, log, failed
        gc.collect()
        assert torch.cuda.memory_allocated() - base < 2**20
        ok = fit(
            image_config(
                images,
                model={"name": "resnet50"},
                data={"image_size": 512},
                train={"batch_size": size, "device": "cuda", "precision": "fp32", "epochs": 1},
            ),
            None,
            output_dir=tmp_path / "runs",
        )
        assert ok.status == "completed"
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
