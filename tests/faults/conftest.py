"""Fixtures of the fault-injection suite."""

from __future__ import annotations

import hashlib

import pytest

from finetune_gui.core.training import engine
from tests.conftest import make_image_folder


@pytest.fixture
def images(tmp_path):
    """36 small pictures in three classes (ImageFolder layout)."""
    return make_image_folder(tmp_path / "images")


@pytest.fixture
def batches(monkeypatch) -> list[str]:
    """Fingerprints of every training batch (inputs, images or cached features, and targets), in the order the
    loop trains on them."""
    seen: list[str] = []
    real_forward = engine.forward_batch

    def recording_forward(p, batch, *, train):
        if train:
            inputs, targets = batch
            seen.append(hashlib.sha256(inputs.numpy().tobytes() + targets.numpy().tobytes()).hexdigest()[:16])
        return real_forward(p, batch, train=train)

    monkeypatch.setattr(engine, "forward_batch", recording_forward)
    return seen
