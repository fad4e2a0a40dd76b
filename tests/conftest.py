"""Shared fixtures: everything offline, runs and settings under tmp_path, tiny data made on the fly."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent

# Hypothesis profiles. `ci` (the default): the same 60 examples on every run and machine, so a red CI run is
# red again when rerun; a failure prints its reproduction blob. `explore`: 2000 fresh random examples per
# property test, for the marked run that hunts new failures (README, Tests); pin each one found with @example.
_HYPOTHESIS_COMMON = {"deadline": None, "print_blob": True, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=60, derandomize=True, database=None, **_HYPOTHESIS_COMMON)
settings.register_profile("explore", max_examples=2000, derandomize=False, **_HYPOTHESIS_COMMON)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """No test reads or writes the user's caches, presets or settings, and nothing goes online."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("FINETUNE_GUI_PRESETS_DIR", str(tmp_path / "user-presets"))
    monkeypatch.setenv("FINETUNE_GUI_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from finetune_gui.core.models.network import forget_probes

    forget_probes()  # each test asks the (monkeypatched) network afresh


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """A machine with no network where nobody said "offline": no offline switch, an empty Hugging Face cache,
    and every connection fails. Returns the (host, port) of each connection tried."""
    import socket

    import huggingface_hub.constants

    monkeypatch.delenv("FINETUNE_GUI_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    tries = []

    def refuse(address, *args, **kwargs):
        tries.append(address)
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return tries


@pytest.fixture
def bridge(qapp, qtbot):
    """A WorkerBridge for GUI-side tests; afterwards its training thread and every worker thread have ended."""
    from finetune_gui.gui.worker import WorkerBridge, live_worker_threads

    b = WorkerBridge()
    yield b
    assert b.shutdown(60000), "a worker thread did not end within 60 s"
    qtbot.waitUntil(lambda: not b.busy and not live_worker_threads(), timeout=10000)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module's tests: on a shared 2-core machine two threads contend and run
    ~10x slower. Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_image_folder(root: Path, classes=("circle", "square", "stripes"), per_class: int = 12, size: int = 20) -> Path:
    """Small coloured pictures whose class is visible in the pixels, in ImageFolder layout."""
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    for ci, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(rng.randrange(0, 60) for _ in range(3)))
            d = ImageDraw.Draw(img)
            colour = [(230, 40, 40), (40, 230, 40), (40, 40, 230), (230, 230, 40)][ci % 4]
            if ci % 3 == 0:
                d.ellipse([3, 3, size - 3, size - 3], fill=colour)
            elif ci % 3 == 1:
                d.rectangle([4, 4, size - 4, size - 4], fill=colour)
            else:
                for x in range(0, size, 4):
                    d.line([x, 0, x, size], fill=colour, width=2)
            img.save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "images")


def make_reviews_csv(path: Path, n: int = 40) -> Path:
    good = ["great", "wonderful", "lovely", "brilliant", "moving", "fun"]
    bad = ["awful", "boring", "dull", "terrible", "messy", "slow"]
    rng = random.Random(1)
    lines = ["text,label"]
    for i in range(n):
        words, label = (good, "positive") if i % 2 == 0 else (bad, "negative")
        lines.append(f"the film was {rng.choice(words)} and {rng.choice(words)},{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    return make_reviews_csv(tmp_path / "reviews.csv")


@pytest.fixture
def tinynet():
    """The tiny CNN in torchvision's registry for this test only."""
    from tests.faults.helpers import register_tinynet, unregister_tinynet

    added = register_tinynet()
    yield "tinynet"
    if added:
        unregister_tinynet()
