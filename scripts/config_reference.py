"""Write the config reference (every field, its default, range and description) into README.md.

Run `python scripts/config_reference.py` after changing finetune_gui/config.py; a test checks it is current.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pydantic import BaseModel

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from finetune_gui.config import RunConfig  # noqa: E402

BEGIN, END = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"


def _range(field) -> str:
    parts = []
    for m in field.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                parts.append(f"{sym} {getattr(m, attr)}")
        if getattr(m, "pattern", None):
            parts.append(f"`{m.pattern}`")
    ann = str(field.annotation)
    if "Literal[" in ann:
        words = re.findall(r"'([^']*)'", ann)
        parts.append(" / ".join((["true", "false"] if "bool" in ann else []) + words))  # bool | Literal[...]
    elif "TaskKind" in ann:
        from finetune_gui.config import TaskKind

        parts.append(" / ".join(k.value for k in TaskKind))
    return ", ".join(parts)


def _default(field) -> str:
    value = field.get_default(call_default_factory=True)
    if hasattr(value, "value"):
        value = value.value
    if isinstance(value, BaseModel):
        return ""
    return f"`{value!r}`".replace("|", "\\|") if value not in (None, "") else ('`""`' if value == "" else "none")


def reference() -> str:
    lines = ["| key | default | allowed | what it does |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
                continue
            desc = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{prefix}{name}` | {_default(field)} | {_range(field)} | {desc} |")

    walk(RunConfig, "")
    return "\n".join(lines)


def updated_readme(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + reference() + "\n" + text[end:]


if __name__ == "__main__":
    readme = REPO / "README.md"
    readme.write_text(updated_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
    print("README.md config reference updated")
