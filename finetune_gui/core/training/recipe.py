"""The lp-ft recipe (`train.recipe = "lp-ft"`; Kumar et al., ICLR 2022): linear probe, then fine-tune.

Stage 1 trains only the head for `train.lp_epochs` epochs, from cached features when the feature cache applies.
Stage 2 fine-tunes the chosen layers from that head (every layer when `model.freeze` is head-only, which stage 1
already is) at `train.lr × train.ft_lr_mult`. Fine-tuning from a trained head instead of a random one keeps the
first large gradients from distorting the pretrained features. The LR schedule runs once per stage
(`optim.lr_multiplier`), so the plan and the LR plot show both.
"""

from __future__ import annotations

from typing import Any

from finetune_gui.config import ModelConfig, RunConfig
from finetune_gui.core.models.bundle import ModelBundle
from finetune_gui.core.models.freezing import apply_freeze, param_groups
from finetune_gui.core.training.events import Listener, LogMessage


def is_lp_ft(config: RunConfig) -> bool:
    return config.train.recipe == "lp-ft"


def probe_stage(config: RunConfig) -> RunConfig:
    """The config of stage 1: the same run with head-only freezing (and no gradual unfreezing)."""
    model = config.model.model_copy(update={"freeze": "head-only", "gradual_unfreeze_every": 0})
    return config.model_copy(update={"model": model}).with_base_dir(config.base_dir)


def fine_tune_model(config: RunConfig) -> ModelConfig:
    """The freezing of stage 2: the config's own, or every layer when it is head-only."""
    if config.model.freeze == "head-only":
        return config.model.model_copy(update={"freeze": "none"})
    return config.model


def optimiser_groups(bundle: ModelBundle, config: RunConfig) -> list[dict[str, Any]]:
    """Parameter groups covering every parameter that may train during the run (gradual unfreezing and lp-ft
    add some later); the parameters' requires_grad is left as the run starts."""
    tc, mc = config.train, config.model
    later = None
    if is_lp_ft(config):
        later = fine_tune_model(config)
    elif mc.gradual_unfreeze_every > 0:
        later = mc.model_copy(update={"freeze": "none"})
    if later is None:
        return param_groups(bundle, tc.lr, mc.backbone_lr_mult, tc.weight_decay)
    starting = {n: q.requires_grad for n, q in bundle.model.named_parameters()}
    apply_freeze(bundle, later)
    groups = param_groups(bundle, tc.lr, mc.backbone_lr_mult, tc.weight_decay)
    for n, q in bundle.model.named_parameters():
        q.requires_grad_(starting[n])
    return groups


class LpFt:
    """Which Prepared trains in which stage: `probe` (head-only, maybe from cached features) for the first
    `lp_epochs` epochs, then `live` with the fine-tuning freezing."""

    def __init__(self, config: RunConfig, live: Any, probe: Any, say: Listener):
        self.config, self.live, self.probe, self.say = config, live, probe, say
        self.fine_tuning = False

    def prepared(self, epoch: int) -> Any:
        """The Prepared for 0-based `epoch`; switches to fine-tuning once, at the first epoch past the probe."""
        if not self.fine_tuning and epoch >= self.config.train.lp_epochs:
            self.fine_tuning = True
            model = fine_tune_model(self.config)
            apply_freeze(self.live.bundle, model)
            tc = self.config.train
            self.say(LogMessage("info", f"lp-ft stage 2 from epoch {epoch + 1}: fine-tuning with freeze "
                                        f"'{model.freeze}' at LR {tc.lr * tc.ft_lr_mult:.3g} ({tc.ft_lr_mult:g} × train.lr)"))  # fmt: skip
        return self.live if self.fine_tuning else self.probe
