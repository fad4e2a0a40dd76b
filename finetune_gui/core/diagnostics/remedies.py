"""A remedy applied: the config a new run starts from, and what changed, for the user to see first."""

from __future__ import annotations

import copy
from typing import Any

from finetune_gui.config import RunConfig, validate_dict
from finetune_gui.core.diagnostics.findings import Remedy


def apply_remedy(config: RunConfig, remedy: Remedy) -> RunConfig:
    """A validated copy of `config` with the remedy's changes ("section.key" → value); ConfigError if refused."""
    data = copy.deepcopy(config.to_dict())
    for dotted, value in remedy.changes.items():
        *parents, last = dotted.split(".")
        target = data
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return validate_dict(data).with_base_dir(config.base_dir)


def config_diff(before: RunConfig, after: RunConfig) -> list[tuple[str, Any, Any]]:
    """("section.key", old, new) for every value that differs, in config order."""
    out: list[tuple[str, Any, Any]] = []

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in dict.fromkeys([*a, *b]):
                walk(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)
        elif a != b:
            out.append((prefix, a, b))

    walk(before.to_dict(), after.to_dict(), "")
    return out
