"""Image models: torchvision classification models by name (optionally timm), with a new head.

Pretrained weights come from torchvision's weight URLs through the torch hub cache
($TORCH_HOME/hub/checkpoints), or from a local .safetensors/.pth file. Without a cached file and without a
network the user gets an OfflineError naming the exact file and folder, unless random init is allowed.
"""

from __future__ import annotations

import os
import pickle
import socket
import urllib.error
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch
from torch import nn

from finetune_gui.core.errors import ModelLoadError, OfflineError
from finetune_gui.core.models.network import offline_mode, reachable
from finetune_gui.core.models.weights import load_weights_file
from finetune_gui.core.plan import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    from finetune_gui.config import RunConfig
    from finetune_gui.core.models.bundle import ModelBundle


_NETWORK_ERRORS = (urllib.error.URLError, socket.timeout, socket.gaierror, ConnectionError, TimeoutError)


def hub_checkpoint_path(url: str) -> Path:
    """Where torch.hub keeps (and looks for) the file downloaded from `url`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def torchvision_weights(name: str, weights: str = "DEFAULT"):
    """The torchvision weights enum member for a model name and a weights name (DEFAULT, IMAGENET1K_V2...)."""
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(name)
    except (ValueError, KeyError):
        return None
    key = (weights or "DEFAULT").strip()
    if "." in key:  # "ResNet50_Weights.IMAGENET1K_V2"
        key = key.split(".")[-1]
    if key.upper() == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[key]
    except KeyError:
        known = ", ".join(["DEFAULT", *[m.name for m in enum]])
        raise ModelLoadError(f"model.weights: {name} has no weights '{weights}'; choose one of: {known}") from None


def _safe_weights(name: str):
    try:
        return torchvision_weights(name, "DEFAULT")
    except ModelLoadError:
        return None


def _list_models() -> list[str]:
    from torchvision.models import list_models

    return sorted(list_models())


def _create_torchvision(name: str, weights: Any) -> nn.Module:
    from torchvision.models import get_model

    kwargs: dict[str, Any] = {}
    if name in ("googlenet", "inception_v3"):
        # Without the auxiliary heads the model returns plain logits in train mode too.
        kwargs["aux_logits"] = False
        if name == "googlenet" and weights is None:
            kwargs["init_weights"] = True
        if name == "inception_v3" and weights is None:
            kwargs["init_weights"] = True
    return get_model(name, weights=weights, **kwargs)


# ---------------------------------------------------------------- heads and blocks


def find_head(model: nn.Module) -> str:
    """Name of the final classification layer of a torchvision (or similar) model."""
    from torchvision.models import VisionTransformer

    if isinstance(model, VisionTransformer):
        return "heads.head"
    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Linear):
        return "fc"
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Linear):
        return "classifier"
    if isinstance(classifier, nn.Sequential) and len(classifier) and isinstance(classifier[-1], nn.Linear):
        return f"classifier.{len(classifier) - 1}"
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        # SqueezeNet: the classifier is a 1x1 convolution.
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d):
                last = name
        if last is None or not last.startswith("classifier"):
            raise ModelLoadError(f"cannot find the classification layer of {type(model).__name__}")
    return last


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def replace_head(model: nn.Module, head_name: str, num_outputs: int, head_dropout: float) -> nn.Module:
    """Swap `head_name` for a fresh layer with `num_outputs` outputs (Dropout + Linear when head_dropout > 0)."""
    old = model.get_submodule(head_name)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_outputs)
    elif isinstance(old, nn.Conv2d):
        new = nn.Conv2d(old.in_channels, num_outputs, kernel_size=old.kernel_size)
    else:
        raise ModelLoadError(f"cannot replace the head {head_name} ({type(old).__name__})")
    if head_dropout > 0:
        new = nn.Sequential(nn.Dropout(head_dropout), new)
    _set_submodule(model, head_name, new)
    return new


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def find_blocks(model: nn.Module, head: list[str]) -> list[str]:
    """Ordered backbone blocks, earliest first, for last-n freezing and gradual unfreezing."""
    from torchvision.models import VisionTransformer

    def not_head(name: str) -> bool:
        return not any(name == h or name.startswith(h + ".") or h.startswith(name + ".") for h in head)

    if isinstance(model, VisionTransformer):
        return ["conv_proj"] + [f"encoder.layers.{n}" for n, _ in model.encoder.layers.named_children()]
    if hasattr(model, "layer4"):  # ResNet family: stem, then the four stages
        names = [n for n, m in model.named_children() if _has_params(m) and not_head(n)]
        return names
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        return [f"features.{n}" for n, m in features.named_children() if _has_params(m)]
    trunk = getattr(model, "trunk_output", None)  # RegNet
    if isinstance(trunk, nn.Sequential):
        stem = ["stem"] if hasattr(model, "stem") else []
        return stem + [f"trunk_output.{n}" for n, m in trunk.named_children() if _has_params(m)]
    blocks: list[str] = []
    for n, m in model.named_children():
        if not _has_params(m) or not not_head(n):
            continue
        if isinstance(m, (nn.Sequential, nn.ModuleList)) and len(m) > 1:
            blocks += [f"{n}.{c}" for c, cm in m.named_children() if _has_params(cm) and not_head(f"{n}.{c}")]
        else:
            blocks.append(n)
    return blocks


def set_dropout(model: nn.Module, p: float, skip: list[str] = ()) -> int:
    """Set p of the model's nn.Dropout modules (not those under `skip`); returns how many were changed."""
    count = 0
    for name, module in model.named_modules():
        if any(name == s or name.startswith(s + ".") for s in skip):
            continue
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = p
            count += 1
    return count


# ---------------------------------------------------------------- building


def _offline_message(name: str, weights: Any, file: Path) -> str:
    return (
        f"Pretrained weights for {name} ({weights}) are needed but cannot be downloaded (offline). "
        f"Download {file.name} from {weights.url} on a connected machine and put it in {file.parent} "
        f"(so the file is {file}); or set model.weights_path to a local .safetensors/.pth file; "
        f"or turn on model.allow_random_init to train from random weights."
    )


def mean_std(weights: Any) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The normalisation (mean, std) a torchvision weights entry was trained with; ImageNet's when unknown."""
    if weights is None:
        return IMAGENET_MEAN, IMAGENET_STD
    try:
        t = weights.transforms()
        mean, std = tuple(float(x) for x in t.mean), tuple(float(x) for x in t.std)
        if len(mean) == 3 and len(std) == 3:
            return mean, std  # type: ignore[return-value]
    except Exception:  # noqa: BLE001 - metadata is optional
        pass
    return IMAGENET_MEAN, IMAGENET_STD


def build_vision(config: RunConfig, num_outputs: int) -> ModelBundle:
    from finetune_gui.core.models.bundle import ModelBundle

    mc = config.model
    if mc.source == "timm" or mc.name.startswith(("timm/", "hf-hub:")):
        return build_timm(config, num_outputs)
    if mc.source == "huggingface":
        raise ModelLoadError(
            f"model.source: image tasks use torchvision (or timm) models, not Hugging Face ('{mc.name}')"
        )
    name = mc.name.strip()
    available = _list_models()
    if name not in available:
        import difflib

        close = difflib.get_close_matches(name.lower(), available, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see the model catalog for choices"
        raise ModelLoadError(f"model.name: '{name}' is not a torchvision model{hint}")

    warnings: list[str] = []
    weights_path = mc.weights_path.strip()
    weights = torchvision_weights(name, mc.weights) if (mc.pretrained and not weights_path) else None
    if mc.pretrained and not weights_path and weights is None:
        msg = f"torchvision has no pretrained weights for {name}"
        if not mc.allow_random_init:
            raise ModelLoadError(msg + "; turn off model.pretrained or turn on model.allow_random_init")
        warnings.append(msg + "; training starts from random weights.")

    model: nn.Module | None = None
    used_weights = None
    if weights is not None:
        cached = hub_checkpoint_path(weights.url)
        failure: str | None = None
        if not cached.is_file() and (offline_mode() or not reachable(weights.url)):
            failure = _offline_message(name, weights, cached)
        else:
            try:
                model = _create_torchvision(name, weights)
                used_weights = weights
            except _NETWORK_ERRORS as e:
                failure = _offline_message(name, weights, cached) + f" ({e})"
            except OSError as e:
                if isinstance(e.__cause__, _NETWORK_ERRORS) or "urlopen" in str(e).lower():
                    failure = _offline_message(name, weights, cached) + f" ({e})"
                else:
                    raise ModelLoadError(f"cannot read the weights file {cached}: {e}") from e
            except (RuntimeError, pickle.UnpicklingError, EOFError) as e:
                raise ModelLoadError(
                    f"the cached weights file {cached} cannot be used for {name}: {e}. Delete it and download it again."
                ) from e
        if failure is not None:
            if not mc.allow_random_init:
                raise OfflineError(failure)
            warnings.append(
                f"Pretrained weights for {name} were unavailable offline ({cached.name} is not in {cached.parent}); "
                "training starts from random weights."
            )
    if model is None:
        model = _create_torchvision(name, None)

    if mc.backbone_dropout is not None:
        set_dropout(model, mc.backbone_dropout)
    head_name = find_head(model)
    replace_head(model, head_name, num_outputs, mc.head_dropout)

    source_desc = f"torchvision, {used_weights.name}" if used_weights is not None else "torchvision, random init"
    if weights_path:
        path = config.resolve(weights_path)
        warnings += load_weights_file(model, path)
        source_desc = f"torchvision, weights from {path.name}"
        used_weights = torchvision_weights(name, mc.weights) if mc.pretrained else None

    image_size = config.data.image_size
    fixed = getattr(model, "image_size", None)
    if isinstance(fixed, int) and fixed != image_size:
        warnings.append(
            f"{name} takes {fixed}x{fixed} images only; data.image_size {image_size} is replaced by {fixed}."
        )
        image_size = fixed
    meta_weights = used_weights or _safe_weights(name)
    min_size = (getattr(meta_weights, "meta", None) or {}).get("min_size")
    if min_size and image_size < max(min_size):
        warnings.append(
            f"{name} needs images of at least {min_size[0]}x{min_size[1]} pixels; data.image_size is {image_size}."
        )
    mean, std = mean_std(used_weights)
    return ModelBundle(
        model=model,
        kind="vision",
        tokenizer=None,
        image_size=image_size,
        mean=mean,
        std=std,
        head=[head_name],
        blocks=find_blocks(model, [head_name]),
        warnings=warnings,
        description=f"{name} ({source_desc})",
        random_init=used_weights is None and not weights_path,
    )


def build_timm(config: RunConfig, num_outputs: int) -> ModelBundle:
    """timm models (optional dependency, imported only here)."""
    from finetune_gui.core.models.bundle import ModelBundle

    try:
        import timm  # type: ignore[import-not-found]
    except ImportError:
        raise ModelLoadError(
            "model.source is 'timm' but the timm package is not installed; install it with "
            "`pip install timm` (or `pip install finetune-gui[timm]`), or use a torchvision model"
        ) from None
    mc = config.model
    name = mc.name.strip()
    warnings: list[str] = []
    kwargs: dict[str, Any] = {"num_classes": num_outputs, "drop_rate": mc.head_dropout}
    if mc.backbone_dropout is not None:
        kwargs["drop_path_rate"] = mc.backbone_dropout
    pretrained = mc.pretrained and not mc.weights_path
    try:
        if pretrained and offline_mode():
            raise OSError("offline mode is on")
        model = timm.create_model(name, pretrained=pretrained, **kwargs)
    except (OSError, *_NETWORK_ERRORS) as e:
        if not pretrained:
            raise ModelLoadError(f"cannot create timm model {name}: {e}") from e
        if not mc.allow_random_init:
            raise OfflineError(
                f"Pretrained weights for timm model {name} cannot be downloaded ({e}). Download them on a connected "
                "machine into the Hugging Face cache, set model.weights_path to a local file, or turn on "
                "model.allow_random_init."
            ) from e
        warnings.append(f"Pretrained weights for {name} were unavailable offline; training starts from random weights.")
        model = timm.create_model(name, pretrained=False, **kwargs)
    except RuntimeError as e:
        raise ModelLoadError(f"cannot create timm model {name}: {e}") from e
    head_name = getattr(model, "default_cfg", {}).get("classifier", None) or find_head(model)
    if isinstance(head_name, (list, tuple)):
        head_name = head_name[0]
    if mc.weights_path:
        warnings += load_weights_file(model, config.resolve(mc.weights_path))
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", {}) or {}
    mean = tuple(cfg.get("mean", IMAGENET_MEAN))
    std = tuple(cfg.get("std", IMAGENET_STD))
    blocks_attr = next(
        (a for a in ("blocks", "stages", "layers") if isinstance(getattr(model, a, None), nn.Sequential)), None
    )
    blocks = (
        [f"{blocks_attr}.{n}" for n, _ in getattr(model, blocks_attr).named_children()]
        if blocks_attr
        else find_blocks(model, [head_name])
    )
    return ModelBundle(
        model=model,
        kind="vision",
        tokenizer=None,
        image_size=config.data.image_size,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        head=[head_name],
        blocks=blocks,
        warnings=warnings,
        description=f"{name} (timm{', pretrained' if pretrained else ''})",
        random_init=not mc.weights_path and (not pretrained or any("random weights" in w for w in warnings)),
    )
