"""A backbone that starts from random weights has nothing to transfer: the model says so (random_init), and a
run that still keeps it frozen ("head only") is warned before it spends its time."""

from __future__ import annotations

from finetune_gui.config import validate_dict
from finetune_gui.core import plan
from finetune_gui.core.models import build_model
from finetune_gui.core.training.events import EventLog, LogMessage
from finetune_gui.core.training.prepare import prepare


def image_config(images, **model):
    return validate_dict(
        {
            "task": {"kind": "image-classification"},
            "data": {"path": str(images), "image_size": 32},
            "model": {"name": "resnet18", "allow_random_init": True, **model},
        }
    )


def test_a_model_without_pretrained_weights_says_it_starts_random(image_folder):
    assert build_model(image_config(image_folder, pretrained=False), 3).random_init


def test_a_model_from_a_weights_file_does_not(image_folder, tmp_path):
    import torch
    from torchvision.models import resnet18

    path = tmp_path / "weights.pth"
    torch.save(resnet18().state_dict(), path)
    assert not build_model(image_config(image_folder, pretrained=False, weights_path=str(path)), 3).random_init


def test_head_only_on_a_random_backbone_is_warned_before_training(image_folder):
    log = EventLog()
    prepare(image_config(image_folder, pretrained=False, freeze="head-only"), log)
    assert plan.FROZEN_RANDOM_BACKBONE in [e.text for e in log.of(LogMessage)]
    quiet = EventLog()
    prepare(image_config(image_folder, pretrained=False, freeze="none"), quiet)
    assert plan.FROZEN_RANDOM_BACKBONE not in [e.text for e in quiet.of(LogMessage)]
