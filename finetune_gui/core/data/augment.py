"""AugmentConfig → torchvision transforms.v2 pipelines, previews, MixUp/CutMix and advice."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torchvision.transforms import v2

from finetune_gui.config import AugmentConfig
from finetune_gui.core.plan import IMAGENET_MEAN, IMAGENET_STD


def _geometric_and_colour(aug: AugmentConfig, image_size: int, *, resized: bool = False) -> list:
    """The random part of the training pipeline; resized: the input is already Resize + CenterCrop'ed."""
    t: list = []
    if aug.random_resized_crop:
        t.append(v2.RandomResizedCrop(image_size, scale=(aug.crop_scale_min, 1.0), antialias=True))
    elif not resized:
        t += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    if aug.hflip > 0:
        t.append(v2.RandomHorizontalFlip(p=aug.hflip))
    if aug.vflip > 0:
        t.append(v2.RandomVerticalFlip(p=aug.vflip))
    if aug.rotation > 0:
        t.append(v2.RandomRotation(aug.rotation))
    if aug.color_jitter > 0:
        j = aug.color_jitter
        t.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(0.5, j / 4)))
    if aug.auto_augment == "randaugment":
        t.append(v2.RandAugment())
    elif aug.auto_augment == "trivialaugment":
        t.append(v2.TrivialAugmentWide())
    return t


def _normalise(mean: Sequence[float] | None, std: Sequence[float] | None) -> v2.Normalize:
    """Normalisation by the model's mean and std (ImageNet's when not given)."""
    mean = list(mean) if mean is not None else list(IMAGENET_MEAN)
    std = list(std) if std is not None else list(IMAGENET_STD)
    return v2.Normalize(mean=mean, std=std)


def build_image_transforms(
    aug: AugmentConfig,
    image_size: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    *,
    train: bool,
) -> v2.Compose:
    """The pipeline from an RGB PIL image to a normalised float32 CxHxW tensor."""
    to_tensor = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), _normalise(mean, std)]
    if not train:
        return v2.Compose(
            [v2.Resize(eval_resize_size(image_size), antialias=True), v2.CenterCrop(image_size), *to_tensor]
        )
    t = _geometric_and_colour(aug, image_size) + to_tensor
    if aug.random_erasing > 0:
        t.append(v2.RandomErasing(p=aug.random_erasing))
    return v2.Compose(t)


def eval_resize_size(image_size: int) -> int:
    """The shorter side evaluation resizes to before its centre crop (the usual 256 for 224)."""
    return int(image_size * 256 / 224)


def stored_image_size(aug: AugmentConfig, image_size: int, *, train: bool) -> int:
    """Side of the square uint8 image kept by the decode cache for a split (see build_store_transform)."""
    return eval_resize_size(image_size) if train and aug.random_resized_crop else image_size


def build_store_transform(aug: AugmentConfig, image_size: int, *, train: bool) -> v2.Compose:
    """RGB PIL image → the uint8 3×S×S tensor the decode cache keeps: the deterministic start of the pipeline.

    Evaluation and training without random crops store exactly what build_image_transforms would have made
    before converting to float. Training with random crops stores the centre square at eval_resize_size
    (1.14 × image_size): the crops are then cut from that square, not from the full-size original, so they
    never reach the edges of a non-square picture and small crops are upscaled from fewer pixels.
    """
    if not train:
        prefix = [v2.Resize(eval_resize_size(image_size), antialias=True), v2.CenterCrop(image_size)]
    else:
        side = stored_image_size(aug, image_size, train=True)
        prefix = [v2.Resize(side, antialias=True), v2.CenterCrop(side)]
    return v2.Compose([*prefix, v2.PILToTensor()])


def build_stored_image_transforms(
    aug: AugmentConfig,
    image_size: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    *,
    train: bool,
) -> v2.Compose:
    """The rest of build_image_transforms' pipeline, on the uint8 tensor build_store_transform made."""
    t = _geometric_and_colour(aug, image_size, resized=True) if train else []
    t += [v2.ToDtype(torch.float32, scale=True), _normalise(mean, std)]
    if train and aug.random_erasing > 0:
        t.append(v2.RandomErasing(p=aug.random_erasing))
    return v2.Compose(t)


def augment_preview(image: Image.Image, aug: AugmentConfig, image_size: int, n: int, seed: int) -> list[Image.Image]:
    """n augmented versions of image (not normalised, for display); the same seed gives the same pictures.

    Torch's global random state is left as it was.
    """
    t = _geometric_and_colour(aug, image_size) + [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if aug.random_erasing > 0:
        t.append(v2.RandomErasing(p=aug.random_erasing))
    pipeline = v2.Compose(t)
    to_pil = v2.ToPILImage()
    image = image.convert("RGB") if image.mode != "RGB" else image
    out: list[Image.Image] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(n):
            out.append(to_pil(pipeline(image).clamp(0, 1)))
    return out


def build_batch_mixer(
    aug: AugmentConfig, num_classes: int
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
    """MixUp and/or CutMix on a batch (images, int labels) → (mixed images, soft targets [B, num_classes])."""
    mixers: list = []
    if aug.mixup_alpha > 0:
        mixers.append(v2.MixUp(alpha=aug.mixup_alpha, num_classes=num_classes))
    if aug.cutmix_alpha > 0:
        mixers.append(v2.CutMix(alpha=aug.cutmix_alpha, num_classes=num_classes))
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)


def warnings_for(aug: AugmentConfig) -> list[str]:
    """Plain-language cautions about settings that often hurt."""
    w: list[str] = []
    if aug.vflip > 0:
        w.append(
            "vertical flips turn most photos upside down; use only for top-down images such as satellite or "
            "microscope pictures"
        )
    if aug.rotation > 45:
        w.append(
            f"rotations up to {aug.rotation:g}° are large; they suit images without an up direction, otherwise "
            "keep them under about 30°"
        )
    if aug.random_resized_crop and aug.crop_scale_min < 0.2:
        w.append(
            f"crops as small as {aug.crop_scale_min:.0%} of the image can cut the object out entirely; "
            "raise crop_scale_min for small datasets or small objects"
        )
    if aug.color_jitter > 0.5:
        w.append("strong colour jitter changes colours a lot; avoid it when colour tells the classes apart")
    if aug.random_erasing > 0.5:
        w.append("random erasing on most images hides much of the data; 0.1–0.25 is usual")
    if aug.mixup_alpha > 0 or aug.cutmix_alpha > 0:
        w.append("MixUp/CutMix apply to single-label classification only and need more epochs to pay off")
        if aug.auto_augment != "none" and aug.random_erasing > 0:
            w.append(
                "MixUp/CutMix together with auto-augment and random erasing is heavy regularisation; "
                "on small datasets the model may underfit"
            )
    return w
