"""Models already on this computer besides the curated catalog: Hugging Face models in the hub cache and
model folders the user opened before. Offline, these are the ones that can be used, so they are listed first.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from math import prod
from pathlib import Path

from finetune_gui.config import TaskKind
from finetune_gui.core.models.catalog import CATALOG, CatalogEntry
from finetune_gui.paths import expand_user

ENCODER_TASKS = (TaskKind.TEXT_CLASSIFICATION, TaskKind.TEXT_REGRESSION)
DECODER_TASKS = (TaskKind.CAUSAL_LM, TaskKind.TEXT_CLASSIFICATION, TaskKind.TEXT_REGRESSION)
_DECODER_HINTS = ("ForCausalLM", "LMHeadModel")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _safetensors_params(path: Path) -> int:
    """Parameters in a .safetensors file, from its header alone (nothing is loaded)."""
    try:
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100_000_000:
                return 0
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error):
        return 0
    return sum(prod(t.get("shape", [])) for k, t in header.items() if k != "__metadata__" and isinstance(t, dict))


def folder_entry(folder: Path, name: str, description: str, source: str = "") -> CatalogEntry | None:
    """A catalog row for a Hugging Face model folder (a config.json inside), or None when it is not one.
    `source` is where the model is loaded from (the folder itself unless given: a hub id for the cache)."""
    config = _read_json(folder / "config.json")
    if not config:
        return None
    architectures = [str(a) for a in config.get("architectures") or []]
    decoder = any(hint in a for a in architectures for hint in _DECODER_HINTS)
    params = sum(_safetensors_params(p) for p in folder.glob("*.safetensors"))
    size = config.get("max_position_embeddings") or config.get("n_positions") or 512
    return CatalogEntry(
        name=name,
        family="huggingface",
        tasks=DECODER_TASKS if decoder else ENCODER_TASKS,
        params_m=round(params / 1e6, 2),
        input_size=int(size) if isinstance(size, int) else 512,
        licence="—",  # a folder says nothing reliable about it; its model card does
        source=source or str(folder),
        description=description,
    )


def hub_cache_entries() -> list[CatalogEntry]:
    """Models in the Hugging Face cache that the catalog does not list (read from disk; no network)."""
    try:
        from huggingface_hub import constants, scan_cache_dir

        repos = scan_cache_dir(constants.HF_HUB_CACHE).repos  # the cache as configured now, as lookups use it
    except Exception:  # noqa: BLE001 - no cache, or one it cannot read: nothing cached to offer
        return []
    known = {e.name for e in CATALOG.values()} | {e.source for e in CATALOG.values()}
    found = []
    for repo in sorted(repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or repo.repo_id in known:
            continue
        snapshots = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
        for revision in snapshots[:1]:
            entry = folder_entry(
                Path(revision.snapshot_path), repo.repo_id, "In the Hugging Face cache on this computer.", repo.repo_id
            )
            if entry is not None:
                found.append(entry)
    return found


def opened_folder_entries(folders: Iterable[str]) -> list[CatalogEntry]:
    """Rows for model folders opened before that are still there, newest first; gone ones are left out."""
    rows, seen = [], set()
    for text in folders:
        try:
            folder = expand_user(text).resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        key = str(folder)
        if key in seen or not folder.is_dir():
            continue
        seen.add(key)
        entry = folder_entry(folder, key, f"A model folder on this computer: {folder.name}")
        if entry is not None:
            rows.append(entry)
    return rows
