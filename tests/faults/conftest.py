"""Fixtures of the fault-injection suite."""

from __future__ import annotations

import pytest

from tests.conftest import make_image_folder
from tests.faults.helpers import register_tinynet, unregister_tinynet


@pytest.fixture
def tinynet():
    """The tiny CNN in torchvision's registry for this test only."""
    added = register_tinynet()
    yield "tinynet"
    if added:
        unregister_tinynet()


@pytest.fixture
def images(tmp_path):
    """36 small pictures in three classes (ImageFolder layout)."""
    return make_image_folder(tmp_path / "images")


@pytest.fixture
def bridge(qapp, qtbot):
    """A WorkerBridge for the GUI cases; afterwards its training thread and every worker thread have ended."""
    from finetune_gui.gui.worker import WorkerBridge, live_worker_threads

    b = WorkerBridge()
    yield b
    assert b.shutdown(60000), "the training thread did not end"
    qtbot.waitUntil(lambda: not b.busy and not live_worker_threads(), timeout=10000)
