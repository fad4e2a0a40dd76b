"""Fixtures of the fault-injection suite."""

from __future__ import annotations

import pytest

from tests.conftest import make_image_folder


@pytest.fixture
def images(tmp_path):
    """36 small pictures in three classes (ImageFolder layout)."""
    return make_image_folder(tmp_path / "images")
