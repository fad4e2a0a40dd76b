"""Whether the configured model can be had on this computer now, asked before anything is built: its folder
or weights file is here, its weights are cached, or a download can be tried. Cheap (files and one connection
try), so the GUI can keep Start disabled with the reason while it is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune_gui.core.errors import ModelLoadError

if TYPE_CHECKING:
    from finetune_gui.config import RunConfig


def model_problem(config: RunConfig) -> str | None:
    """Why config.model cannot be used now, in plain words; None when it can (or only building it will tell)."""
    from finetune_gui.core.models import resolve_source

    try:
        source = resolve_source(config)
        if source == "huggingface":
            return _huggingface_problem(config)
        if source == "torchvision":
            return _torchvision_problem(config)
    except ModelLoadError as e:
        return str(e)
    return None


def _huggingface_problem(config: RunConfig) -> str | None:
    from finetune_gui.core.models.hf import cached_file, locate
    from finetune_gui.core.models.network import hub_endpoint, why_no_downloads

    source, is_local = locate(config)
    if is_local or cached_file(source) is not None:
        return None
    blocked = why_no_downloads(hub_endpoint())
    if blocked:
        return f"'{source}' is not on this computer and cannot be downloaded now: {blocked}."
    return None


def _torchvision_problem(config: RunConfig) -> str | None:
    from finetune_gui.core.models.network import why_no_downloads
    from finetune_gui.core.models.vision import hub_checkpoint_path, torchvision_weights

    mc = config.model
    if mc.weights_path.strip():
        path = config.resolve(mc.weights_path.strip())
        return None if path.is_file() else f"the weights file {path} is not there."
    if not mc.pretrained or mc.allow_random_init:
        return None
    weights = torchvision_weights(mc.name.strip(), mc.weights)
    if weights is None or hub_checkpoint_path(weights.url).is_file():
        return None
    blocked = why_no_downloads(weights.url)
    if blocked:
        return f"the pretrained weights of {mc.name} are not on this computer and cannot be downloaded now: {blocked}."
    return None
