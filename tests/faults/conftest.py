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
