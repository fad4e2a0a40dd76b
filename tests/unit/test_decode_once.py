"""Decode once: images decoded and resized on first read, kept as uint8, read from there afterwards; the
budget that decides memory, disk or decoding at every read; and the loader settings chosen for the machine."""

from __future__ import annotations

import gc
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from finetune_gui.config import RunConfig
from finetune_gui.core.data import build_data
from finetune_gui.core.data import decoded as decoded_mod
from finetune_gui.core.data.decoded import DecodedImageDataset, DecodeStore, plan_image_pipeline
from finetune_gui.core.data.images import ImageDataset
from finetune_gui.core.data.loader_settings import SMALL_DATASET, choose_loader_settings
from finetune_gui.core.training.events import LogMessage
from finetune_gui.core.training.sampling import EpochSampler, SeededSamples

SIZE = 24


def noisy_images(root: Path, per_class: int = 6) -> Path:
    """Seeded noise pictures of odd, non-square sizes (resizing and cropping both matter), a few not RGB."""
    rng = random.Random(0)
    for name in ("a", "b"):
        for i in range(per_class):
            w, h = rng.randrange(13, 61), rng.randrange(13, 61)
            pixels = np.random.default_rng(rng.randrange(10**6)).integers(0, 256, (h, w, 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            image = image.convert("L") if i == 1 else image.convert("RGBA") if i == 2 else image
            (root / name).mkdir(parents=True, exist_ok=True)
            image.save(root / name / f"{i}.png")
    return root


def config(root: Path, **settings) -> RunConfig:
    sections = {
        "task": {"kind": "image-classification"},
        "data": {"path": str(root), "image_size": SIZE, "val_fraction": 0.25, "test_fraction": 0.25},
        "augment": {"random_resized_crop": False, "hflip": 0.0},
    }
    for key, value in settings.items():
        section, name = key.split("__")
        sections.setdefault(section, {})[name] = value
    return RunConfig.model_validate(sections).with_base_dir(root.parent)


def every_sample(ds) -> list[tuple[torch.Tensor, int]]:
    return [ds[i] for i in range(len(ds))]


def test_validation_and_test_tensors_from_the_decode_cache_equal_those_decoded_at_every_read_exactly(tmp_path):
    # the cache keeps the uint8 picture the old pipeline made before its float conversion, from the same PIL
    # resize and crop, and the same conversion and normalisation run on it: no rounding differs, so tolerance 0
    root = noisy_images(tmp_path / "data")
    cached = build_data(config(root), mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3])
    plain = build_data(config(root, data__decode_cache="off"), mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3])
    assert isinstance(cached.val, DecodedImageDataset) and type(plain.val) is ImageDataset
    for split in ("val", "test", "train"):  # train too: without random crops its kept picture is the final one
        for (x, y), (x0, y0) in zip(every_sample(getattr(cached, split)), every_sample(getattr(plain, split))):
            assert x.dtype == x0.dtype == torch.float32 and x.shape == x0.shape == (3, SIZE, SIZE)
            assert torch.equal(x, x0) and y == y0
        for x, _ in every_sample(getattr(cached, split)):  # read again, now from the cache
            assert x.shape == (3, SIZE, SIZE)
    assert torch.equal(every_sample(cached.val)[0][0], every_sample(plain.val)[0][0])


def test_each_training_image_is_decoded_once_over_three_epochs(tmp_path, monkeypatch):
    root = noisy_images(tmp_path / "data")
    data = build_data(config(root, augment__random_resized_crop=True, augment__hflip=0.5))
    decodes: list[str] = []
    real = decoded_mod.load_rgb
    monkeypatch.setattr(decoded_mod, "load_rgb", lambda path: decodes.append(path) or real(path))
    sampler = EpochSampler(len(data.train), seed=3)
    loader = DataLoader(SeededSamples(data.train, 3), batch_size=4, sampler=sampler)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(torch.cat([x for x, _ in loader]))
    assert sorted(decodes) == sorted(data.train.paths)  # every image once, none again
    assert epochs[0].shape == (len(data.train), 3, SIZE, SIZE)
    assert not torch.equal(epochs[0], epochs[1])  # the random crops and flips still differ per epoch
    sampler.set_epoch(1)  # and an epoch read from the cache repeats exactly, sample for sample
    assert torch.equal(torch.cat([x for x, _ in loader]), epochs[1])


def test_random_crops_are_cut_from_the_kept_square_at_114_percent_of_the_image_size(tmp_path):
    root = noisy_images(tmp_path / "data")
    data = build_data(config(root, augment__random_resized_crop=True))
    assert data.train.store.pixels.shape == (len(data.train), 3, int(SIZE * 256 / 224), int(SIZE * 256 / 224))
    assert data.val.store.pixels.shape == (len(data.val), 3, SIZE, SIZE)
    assert data.train[0][0].shape == (3, SIZE, SIZE)


def test_images_decoded_by_forked_loader_workers_are_kept_for_the_main_process(tmp_path, monkeypatch):
    root = noisy_images(tmp_path / "data")
    data = build_data(config(root))
    first = torch.cat([x for x, _ in DataLoader(data.val, batch_size=2, num_workers=2)])
    assert bool(data.val.store.filled.all())  # written by the workers into memory the parent shares
    monkeypatch.setattr(decoded_mod, "load_rgb", lambda path: pytest.fail(f"{path} decoded a second time"))
    assert torch.equal(torch.cat([x for x, _ in DataLoader(data.val, batch_size=2)]), first)


def test_a_store_sent_to_a_spawned_worker_keeps_its_pixels_in_memory_and_on_disk(tmp_path):
    for folder in (None, tmp_path / "cache"):
        store = DecodeStore(3, 4, folder)
        store.pixels[1] = 7
        store.filled[1] = 1
        copy = pickle.loads(pickle.dumps(store))
        assert torch.equal(copy.pixels, store.pixels) and copy.filled.tolist() == [0, 1, 0]


def test_over_the_memory_budget_the_images_go_to_a_file_in_the_cache_folder_removed_afterwards(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(decoded_mod, "physical_memory", lambda: 4_000)  # a quarter: 1 kB, less than one image
    root = noisy_images(tmp_path / "data")
    cached = build_data(config(root))
    plain = build_data(config(root, data__decode_cache="off"))
    assert cached.input_pipeline.where == "disk"
    files = list((tmp_path / "cache" / "finetune-gui" / "decoded").iterdir())
    assert len(files) == 3  # train, val, test
    assert "images decoded once into " + str(tmp_path / "cache") in cached.input_pipeline.describe()
    for (x, _), (x0, _) in zip(every_sample(cached.test), every_sample(plain.test)):
        assert torch.equal(x, x0)
    del cached
    gc.collect()
    assert not any(f.exists() for f in files)


def test_when_the_cache_file_cannot_be_made_the_images_are_decoded_at_every_read_and_the_log_says_so(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(decoded_mod, "physical_memory", lambda: 4_000)

    def disk_full(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(decoded_mod.os, "posix_fallocate", disk_full, raising=False)
    monkeypatch.setattr(decoded_mod.os, "ftruncate", disk_full)
    data = build_data(config(noisy_images(tmp_path / "data")))
    assert all(type(ds) is ImageDataset for ds in (data.train, data.val, data.test))
    assert "images decoded at every read (the cache file in" in data.input_pipeline.describe()
    assert "No space left on device" in data.input_pipeline.describe()
    assert not list((tmp_path / "cache" / "finetune-gui" / "decoded").iterdir())  # no half-made file left


def test_over_both_budgets_images_are_decoded_at_every_read_and_the_run_log_says_why(tmp_path, monkeypatch):
    from finetune_gui.core.training.prepare import prepare

    monkeypatch.setattr(decoded_mod, "physical_memory", lambda: 4_000)
    root = noisy_images(tmp_path / "data")
    cfg = config(root, data__decode_disk_mb=0, model__name="resnet18", model__allow_random_init=True)
    said: list = []
    p = prepare(cfg, said.append)
    assert type(p.data.train) is ImageDataset
    info = [e.text for e in said if isinstance(e, LogMessage) and e.level == "info" and "input pipeline" in e.text]
    assert len(info) == 1
    assert "images decoded at every read (decoded they would take 0 MB, over the memory budget of 0 MB" in info[0]
    assert "(data.decode_memory_mb, data.decode_disk_mb)" in info[0]
    assert "0 loader workers" in info[0] and "pin_memory off" in info[0]


def test_the_budget_is_the_configured_megabytes_or_a_quarter_of_the_memory():
    counts = {"train": 1000, "val": 100, "test": 100}  # 1000 x 3 x 73 x 73 + 200 x 3 x 64 x 64 = 18.44 MB
    cfg = RunConfig.model_validate({"data": {"image_size": 64, "decode_memory_mb": 19}})
    plan = plan_image_pipeline(cfg, 64, counts)
    assert plan.shapes["train"] == (1000, 3, 73, 73) and plan.shapes["val"] == (100, 3, 64, 64)
    assert plan.nbytes == 1000 * 3 * 73 * 73 + 200 * 3 * 64 * 64
    assert plan.where == "memory"
    cfg = RunConfig.model_validate({"data": {"image_size": 64, "decode_memory_mb": 18, "decode_disk_mb": 0}})
    assert plan_image_pipeline(cfg, 64, counts).where == "off"
    cfg = RunConfig.model_validate({"data": {"image_size": 64, "decode_disk_mb": 0}})
    assert plan_image_pipeline(cfg, 64, counts, memory=4 * 18_450_000).where == "memory"
    assert plan_image_pipeline(cfg, 64, counts, memory=4 * 18_440_000).where == "off"
    cfg = RunConfig.model_validate({"data": {"image_size": 64, "decode_cache": "off"}})
    assert plan_image_pipeline(cfg, 64, counts).why_off == "data.decode_cache is off"


def test_an_image_damaged_after_the_scan_is_reported_with_its_name_stood_in_for_and_not_kept(tmp_path):
    root = noisy_images(tmp_path / "data")
    data = build_data(config(root, data__val_fraction=0.0, data__test_fraction=0.0))
    ds = data.train
    victim = Path(ds.paths[0])
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 3])
    x, y = ds[0]
    assert x.shape == (3, SIZE, SIZE) and y == ds.targets[1]  # the next image stood in
    assert [Path(p.path) for p in ds.failures] == [victim]
    assert "could not be decoded while training" in ds.failures[0].reason
    assert ds.store.filled.tolist()[:2] == [0, 1]  # nothing kept for the damaged file
    victim.write_bytes(good)  # repaired: read at its next turn
    assert ds[0][1] == ds.targets[0] and ds.store.filled[0] == 1


@pytest.mark.parametrize(
    ("requested", "device", "decoded", "samples", "cores", "start", "workers", "pin", "why"),
    [
        (3, "cpu", "memory", 50_000, 2, "fork", 3, False, "data.num_workers"),  # the user's number wins
        (0, "cuda", "off", 50_000, 32, "fork", 0, True, "data.num_workers"),
        (None, "cuda", "off", SMALL_DATASET - 1, 32, "fork", 0, True, "starting workers would cost more"),
        (None, "cpu", "memory", 50_000, 2, "fork", 0, False, "images decoded once need little work"),
        (None, "cpu", "off", 50_000, 2, "fork", 0, False, "2 CPU cores"),
        (None, "cpu", "off", 50_000, 16, "fork", 4, False, "decoding at every read"),
        (None, "cuda", "memory", 50_000, 16, "fork", 4, True, "augmenting decoded images"),
        (None, "cuda", "memory", 50_000, 16, "spawn", 0, True, "shared with forked workers only"),
        (None, "cuda", "disk", 50_000, 16, "spawn", 4, True, "augmenting decoded images"),
        (None, "cuda", "off", 50_000, 16, "fork", 8, True, "decoding at every read"),
        (None, "mps", "off", 50_000, 2, "spawn", 0, False, "2 CPU cores"),
        (None, "cuda", "tokens", 50_000, 16, "fork", 0, True, "token ids in memory already"),
    ],
)
def test_loader_settings_follow_the_machine_and_the_data(requested, device, decoded, samples, cores, start, workers, pin, why):  # fmt: skip
    s = choose_loader_settings(
        requested, device_type=device, decoded=decoded, samples=samples, cores=cores, start_method=start
    )
    assert (s.num_workers, s.pin_memory, s.persistent_workers) == (workers, pin, workers > 0)
    assert why in s.why
    assert s.prefetch_factor is None if workers == 0 else s.prefetch_factor >= 2
    assert s.describe().startswith(f"{workers} loader worker")
