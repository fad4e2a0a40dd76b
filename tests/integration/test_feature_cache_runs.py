"""Runs that train the head from cached frozen features: the same results as live passes, a new cache when
the weights, the image size or the files change, a damaged cache file rebuilt, frozen BatchNorm statistics
untouched, and a log line that says whether the cache is used and why not."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file

from finetune_gui.core.features.cache import CACHE_FOLDER, FeatureCache, find_cut
from finetune_gui.core.training.prepare import prepare
from tests.conftest import make_image_folder
from tests.faults.helpers import fit_saying_cache, image_config

NO_AUGMENT = {"random_resized_crop": False, "hflip": 0.0}


@pytest.fixture
def images(tmp_path):
    return make_image_folder(tmp_path / "images", per_class=8)


def _config(images, cache="auto", **overrides):
    sections = {
        "augment": dict(NO_AUGMENT),
        "model": {"freeze": "head-only"},
        "train": {"epochs": 3, "feature_cache": cache},
    }
    for key, value in overrides.items():
        sections.setdefault(key, {}).update(value)
    return image_config(images, **sections)


def test_metrics_with_the_cache_equal_those_of_live_passes(tmp_path, tinynet, images):
    cached, logs = fit_saying_cache(_config(images), tmp_path / "runs")
    live, live_logs = fit_saying_cache(_config(images, "off"), tmp_path / "runs")
    assert logs[0].startswith("feature cache: on - the input of fc is computed once per split")
    assert live_logs == ["feature cache: off - train.feature_cache is off"]
    for key, value in live.val_metrics.items():
        assert cached.val_metrics[key] == pytest.approx(value, abs=1e-4), key
    for key, value in live.test_metrics.items():
        assert cached.test_metrics[key] == pytest.approx(value, abs=1e-4), key
    a, b = load_file(str(cached.run_dir / "model.safetensors")), load_file(str(live.run_dir / "model.safetensors"))
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_last_n_freezing_trains_the_last_block_from_the_cache_as_live_passes_do(tmp_path, tinynet, images):
    model = {"freeze": "last-n", "unfreeze_last_n": 1}  # features.3 (the second conv) and fc train
    cached, logs = fit_saying_cache(_config(images, model=model), tmp_path / "runs")
    live, _ = fit_saying_cache(_config(images, "off", model=model), tmp_path / "runs")
    assert logs[0].startswith("feature cache: on - the output of features_2 is computed once per split")
    for key, value in live.val_metrics.items():
        assert cached.val_metrics[key] == pytest.approx(value, abs=1e-4), key
    a, b = load_file(str(cached.run_dir / "model.safetensors")), load_file(str(live.run_dir / "model.safetensors"))
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    assert not torch.equal(
        a["features.3.weight"], prepare(_config(images, model=model)).model.state_dict()["features.3.weight"]
    )


def test_random_augmentation_falls_back_to_live_passes_and_names_the_knob_that_would_cache_it(
    tmp_path, tinynet, images
):
    _, logs = fit_saying_cache(_config(images, augment={"random_resized_crop": True}), tmp_path / "runs")
    assert logs == ["feature cache: off - random crop acts before the cut "
                    "(set train.feature_cache_aug_copies to extract augmented copies once)"]  # fmt: skip
    assert not (tmp_path / "runs" / CACHE_FOLDER).exists()


def test_gradual_unfreezing_does_not_use_the_cache(tmp_path, tinynet, images):
    _, logs = fit_saying_cache(_config(images, model={"gradual_unfreeze_every": 1}), tmp_path / "runs")
    assert logs == ["feature cache: off - gradual unfreezing moves the cut"]


def test_a_second_run_reuses_the_cache_and_a_change_of_image_size_or_files_builds_a_new_one(tmp_path, tinynet, images):
    runs = tmp_path / "runs"
    first, logs = fit_saying_cache(_config(images), runs)
    assert sum("cache: computed" in line for line in logs) == 3  # train, val, test
    again, logs = fit_saying_cache(_config(images), runs)
    assert sum("reused" in line for line in logs) == 3 and not any("cache: computed" in line for line in logs)
    assert again.test_metrics == first.test_metrics

    _, logs = fit_saying_cache(_config(images, data={"image_size": 28}), runs)
    assert sum("cache: computed" in line for line in logs) == 3

    picture = sorted((images / "circle").iterdir())[0]
    os.utime(picture, ns=(picture.stat().st_atime_ns, picture.stat().st_mtime_ns + 10**9))
    _, logs = fit_saying_cache(_config(images), runs)
    assert sum("cache: computed" in line for line in logs) == 1  # only the split holding that picture


def test_the_key_changes_with_the_frozen_weights_but_not_with_the_head(tmp_path, tinynet, images):
    p = prepare(_config(images))
    cut = find_cut(p)

    def key():
        return FeatureCache(p, cut, tmp_path, print).key(p.data.train)

    before = key()
    with torch.no_grad():
        p.model.fc.weight.add_(1.0)
    assert key() == before
    with torch.no_grad():
        p.model.features[0].weight.add_(1e-3)
    assert key() != before


def test_a_damaged_cache_file_is_rebuilt_and_the_run_ends_as_before(tmp_path, tinynet, images):
    runs = tmp_path / "runs"
    first, _ = fit_saying_cache(_config(images), runs)
    (train_file,) = (runs / CACHE_FOLDER).glob("train-*.features")
    data = bytearray(train_file.read_bytes())
    data[len(data) // 3] ^= 0x55
    train_file.write_bytes(bytes(data))
    again, logs = fit_saying_cache(_config(images), runs)
    assert any("do not match their checksum; computing the train features again" in line for line in logs)
    assert again.test_metrics == first.test_metrics


def test_frozen_batchnorm_statistics_do_not_move(tmp_path, tinynet, images):
    config = _config(images)
    fresh = prepare(config).model.state_dict()
    result, _ = fit_saying_cache(config, tmp_path / "runs")
    final = load_file(str(result.run_dir / "model.safetensors"))
    for name in ("features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"):
        assert torch.equal(final[name], fresh[name]), name
    assert not torch.equal(final["fc.weight"], fresh["fc.weight"])  # the head did train


def test_memory_mapped_features_train_the_same_as_features_in_memory(tmp_path, tinynet, images):
    in_memory, _ = fit_saying_cache(_config(images), tmp_path / "a")
    mapped, logs = fit_saying_cache(_config(images, train={"feature_cache_ram_mb": 0}), tmp_path / "b")
    assert any("memory-mapped" in line for line in logs)
    assert mapped.test_metrics == in_memory.test_metrics


def test_a_cache_folder_that_cannot_be_made_means_live_passes_not_a_failed_run(tmp_path, tinynet, images):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result, logs = fit_saying_cache(
        _config(images, train={"feature_cache_dir": str(blocker / "cache")}), tmp_path / "runs"
    )
    assert logs == [f"feature cache: off - cannot write to {blocker / 'cache'} (set train.feature_cache_dir)"]


def test_the_cache_folder_is_kept_under_its_size_limit_least_recently_used_first(tmp_path, tinynet, images):
    runs = tmp_path / "runs"
    folder = runs / CACHE_FOLDER
    folder.mkdir(parents=True)
    stale = folder / "train-stale.features"
    stale.write_bytes(b"\0" * 2 * 2**20)
    os.utime(stale, (1, 1))
    _, logs = fit_saying_cache(_config(images, train={"feature_cache_disk_mb": 1}), runs)
    assert not stale.exists()
    assert any(line.startswith("feature cache: removed 1 least recently used file(s) (2.0 MB): train-stale.features")
               for line in logs)  # fmt: skip
    ours = sorted(folder.glob("*.features"))
    assert len(ours) == 3  # this run's train, val and test files

    for path in ours:
        os.utime(path, (1, 1))
    _, logs = fit_saying_cache(_config(images, train={"feature_cache_disk_mb": 1}), runs)
    assert sum("reused" in line for line in logs) == 3
    assert all(path.stat().st_mtime > 1 for path in ours)  # a read marks the file as used
