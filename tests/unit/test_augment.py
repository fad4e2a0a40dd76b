"""AugmentConfig → transforms: shapes, normalisation, previews, MixUp/CutMix and advice."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from finetune_gui.config import AugmentConfig
from finetune_gui.core.data.augment import augment_preview, build_batch_mixer, build_image_transforms, warnings_for
from finetune_gui.core.plan import IMAGENET_MEAN, IMAGENET_STD


def picture(w=40, h=30) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"random_resized_crop": False, "hflip": 0.0},
        {"vflip": 1.0, "rotation": 30, "color_jitter": 0.4, "random_erasing": 1.0},
        {"auto_augment": "randaugment"},
        {"auto_augment": "trivialaugment", "crop_scale_min": 0.1},
    ],
)
def test_train_transform_gives_normalised_float_tensor_of_image_size(settings):
    tf = build_image_transforms(AugmentConfig(**settings), 32, None, None, train=True)
    x = tf(picture())
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert pickle.loads(pickle.dumps(tf)) is not None  # DataLoader workers get a copy


def test_train_transform_contains_the_configured_steps():
    aug = AugmentConfig(
        crop_scale_min=0.3,
        hflip=0.2,
        vflip=0.1,
        rotation=10,
        color_jitter=0.4,
        auto_augment="randaugment",
        random_erasing=0.25,
    )
    steps = build_image_transforms(aug, 32, None, None, train=True).transforms
    names = [type(t).__name__ for t in steps]
    assert names == [
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "RandomVerticalFlip",
        "RandomRotation",
        "ColorJitter",
        "RandAugment",
        "ToImage",
        "ToDtype",
        "Normalize",
        "RandomErasing",
    ]
    assert steps[0].scale == (0.3, 1.0) and steps[1].p == 0.2 and steps[9].p == 0.25
    jitter = steps[4]
    assert jitter.brightness == (0.6, 1.4) and jitter.hue == (-0.1, 0.1)
    plain = [
        type(t).__name__ for t in build_image_transforms(AugmentConfig(hflip=0), 32, None, None, train=True).transforms
    ]
    assert plain == ["RandomResizedCrop", "ToImage", "ToDtype", "Normalize"]


def test_eval_transform_resizes_then_centre_crops_deterministically():
    tf = build_image_transforms(AugmentConfig(), 224, None, None, train=False)
    assert [type(t).__name__ for t in tf.transforms] == ["Resize", "CenterCrop", "ToImage", "ToDtype", "Normalize"]
    assert tf.transforms[0].size == [256]
    small = build_image_transforms(AugmentConfig(), 32, None, None, train=False)
    assert torch.equal(small(picture()), small(picture()))
    assert small(picture()).shape == (3, 32, 32)


def test_normalisation_uses_imagenet_by_default_and_given_statistics_otherwise():
    mean_colour = tuple(round(m * 255) for m in IMAGENET_MEAN)
    flat = Image.new("RGB", (40, 40), mean_colour)
    x = build_image_transforms(AugmentConfig(), 32, None, None, train=False)(flat)
    assert x.abs().max() < 0.02
    y = build_image_transforms(AugmentConfig(), 32, [0.5] * 3, [0.5] * 3, train=False)(
        Image.new("RGB", (40, 40), "white")
    )
    assert torch.allclose(y, torch.ones_like(y))
    assert IMAGENET_STD == (0.229, 0.224, 0.225)


def test_preview_is_reproducible_and_leaves_torch_rng_alone():
    aug = AugmentConfig(rotation=40, color_jitter=0.5, hflip=0.5, random_erasing=0.5)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = augment_preview(picture(), aug, 32, n=4, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    again = augment_preview(picture(), aug, 32, n=4, seed=7)
    other = augment_preview(picture(), aug, 32, n=4, seed=8)
    assert len(first) == 4 and all(im.size == (32, 32) and im.mode == "RGB" for im in first)
    as_arrays = [np.asarray(im) for im in first]
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(as_arrays, again))
    assert not all(np.array_equal(a, np.asarray(b)) for a, b in zip(as_arrays, other))
    assert not np.array_equal(as_arrays[0], as_arrays[1])  # n different versions, not one repeated


def test_preview_is_not_normalised():
    out = augment_preview(Image.new("RGB", (40, 40), (200, 100, 50)), AugmentConfig(hflip=0), 32, n=1, seed=0)
    assert out[0].getpixel((16, 16)) == (200, 100, 50)


def test_mixer_is_none_without_mixup_or_cutmix():
    assert build_batch_mixer(AugmentConfig(), 5) is None


@pytest.mark.parametrize(
    "settings", [{"mixup_alpha": 0.4}, {"cutmix_alpha": 1.0}, {"mixup_alpha": 0.2, "cutmix_alpha": 1.0}]
)
def test_mixer_returns_mixed_images_and_soft_targets(settings):
    torch.manual_seed(0)
    mixer = build_batch_mixer(AugmentConfig(**settings), 5)
    images = torch.rand(8, 3, 16, 16)
    labels = torch.arange(8) % 5
    mixed, soft = mixer(images, labels)
    assert mixed.shape == images.shape and soft.shape == (8, 5) and soft.dtype == torch.float32
    assert torch.allclose(soft.sum(dim=1), torch.ones(8))
    assert (soft.max(dim=1).values < 1).any()  # truly mixed, not one-hot


def test_warnings_explain_risky_settings():
    assert warnings_for(AugmentConfig()) == []
    [vflip] = warnings_for(AugmentConfig(vflip=0.5))
    assert "upside down" in vflip and "satellite" in vflip
    assert any("rotation" in w for w in warnings_for(AugmentConfig(rotation=90)))
