"""Augmented copies in the feature cache (train.feature_cache_aug_copies): with random per-sample augmentation,
K copies of each training image are extracted once, copy k drawn as live passes would draw epoch k; epoch e
trains on copy e mod K; a change of K, of the augmentation or of the seed builds the training copies anew."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch
from safetensors.torch import load_file

from finetune_gui.core.features.cache import FeatureCache, find_cut
from finetune_gui.core.features.copies import copies_to_extract
from finetune_gui.core.training import engine
from finetune_gui.core.training.prepare import prepare
from finetune_gui.core.training.sampling import SeededSamples
from tests.conftest import make_image_folder
from tests.faults.helpers import fit_saying_cache, image_config

AUGMENT = {"random_resized_crop": True, "hflip": 0.5}


@pytest.fixture
def images(tmp_path):
    return make_image_folder(tmp_path / "images", per_class=8)  # 12 training pictures, 3 batches of 4


def _config(images, copies=2, epochs=3, **overrides):
    sections = {
        "augment": dict(AUGMENT),
        "model": {"freeze": "head-only"},
        "train": {"epochs": epochs, "feature_cache": "auto", "feature_cache_aug_copies": copies},
    }
    for key, value in overrides.items():
        sections.setdefault(key, {}).update(value)
    return image_config(images, **sections)


def test_each_copy_is_the_sample_as_live_passes_augment_it_in_that_epoch(tmp_path, tinynet, images):
    p = prepare(_config(images, copies=3))
    cache = FeatureCache(p, find_cut(p), tmp_path, print)
    features = cache.get("train", p.data.train).tensors["features"]
    n = len(p.data.train)
    assert features.shape[0] == 3 * n
    copies = features.view(3, n, -1)
    assert not torch.allclose(copies[0], copies[1]) and not torch.allclose(copies[1], copies[2])

    seeded = SeededSamples(p.data.train, p.config.train.seed)
    p.model.eval()
    with torch.no_grad():
        for epoch in range(3):
            live = torch.stack([seeded[(i, epoch)][0] for i in range(n)])
            assert torch.allclose(p.model.features(live), copies[epoch], atol=1e-6), epoch

    plain_p = prepare(_config(images, copies=0, augment={"random_resized_crop": False, "hflip": 0.0}))
    plain = FeatureCache(plain_p, find_cut(plain_p), tmp_path, print).get("train", plain_p.data.train)
    assert plain.tensors["features"].shape[0] == n
    assert all(not torch.allclose(copies[k], plain.tensors["features"]) for k in range(3))


def test_epoch_e_trains_on_copy_e_mod_k(tmp_path, tinynet, images, monkeypatch):
    seen: list[list[str]] = [[], [], []]
    real_forward = engine.forward_batch

    def recording_forward(p, batch, *, train):
        if train:
            epoch = p.sampler.epoch
            seen[epoch] += [hashlib.sha256(row.numpy().tobytes()).hexdigest() for row in batch[0]]
        return real_forward(p, batch, train=train)

    monkeypatch.setattr(engine, "forward_batch", recording_forward)
    _, logs = fit_saying_cache(_config(images, copies=2, epochs=3), tmp_path / "runs")
    assert logs[0].startswith("feature cache: on - 2 augmented copies of each training image, extracted once")
    assert len(seen[0]) == 12
    assert sorted(seen[2]) == sorted(seen[0])  # copy 0 again, in epoch 2's order
    assert set(seen[1]).isdisjoint(seen[0])  # copy 1


def test_as_many_copies_as_epochs_train_as_live_passes_do(tmp_path, tinynet, images):
    cached, logs = fit_saying_cache(_config(images, copies=3, epochs=3), tmp_path / "cached")
    live, live_logs = fit_saying_cache(
        _config(images, copies=3, epochs=3, train={"feature_cache": "off"}), tmp_path / "live"
    )
    assert any("computing 3 augmented copies of the train features" in line for line in logs)
    a, b = load_file(str(cached.run_dir / "model.safetensors")), load_file(str(live.run_dir / "model.safetensors"))
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    assert cached.val_metrics == pytest.approx(live.val_metrics, abs=1e-4)


def test_more_copies_than_epochs_are_not_extracted(tmp_path, tinynet, images):
    _, logs = fit_saying_cache(_config(images, copies=8, epochs=2), tmp_path / "runs")
    assert logs[0].startswith(
        "feature cache: on - 2 augmented copies of each training image, extracted once "
        "(train.feature_cache_aug_copies is 8; the cache serves 2 epochs)"
    )
    lp_ft = {"recipe": "lp-ft", "lp_epochs": 1}  # only the probe stage trains from the cache
    assert copies_to_extract(_config(images, copies=8, epochs=3, train=lp_ft)) == 1


def test_a_change_of_copies_augmentation_or_seed_builds_the_training_copies_anew(tmp_path, tinynet, images):
    runs = tmp_path / "runs"

    def computed(config):
        _, logs = fit_saying_cache(config, runs)
        return sorted(line.split(" features of")[0].split("computing ")[1] for line in logs if "computing" in line)

    assert computed(_config(images)) == ["2 augmented copies of the train", "the test", "the val"]
    assert computed(_config(images)) == []  # all reused
    assert computed(_config(images, copies=3)) == ["3 augmented copies of the train"]
    assert computed(_config(images, augment={"hflip": 0.3})) == ["2 augmented copies of the train"]
    assert computed(_config(images, augment={"crop_scale_min": 0.3})) == ["2 augmented copies of the train"]
    assert computed(_config(images, copies=0, augment={"random_resized_crop": False, "hflip": 0.0})) == [
        "the train"  # no random augmentation: the plain features, whatever the knob says
    ]

    p = prepare(_config(images))  # the seed draws the copies: with pretrained weights it is all that differs
    cut = find_cut(p)

    def key(config):
        return FeatureCache(dataclasses.replace(p, config=config), cut, tmp_path, print).key(p.data.train, 2)

    assert key(_config(images)) != key(_config(images, train={"seed": 8}))


def test_mixup_keeps_the_cache_off_even_with_copies(tmp_path, tinynet, images):
    _, logs = fit_saying_cache(_config(images, augment={"mixup_alpha": 0.2}), tmp_path / "runs")
    assert logs == ["feature cache: off - MixUp acts before the cut (it mixes the images of a batch; "
                    "augmented copies cannot hold that)"]  # fmt: skip
