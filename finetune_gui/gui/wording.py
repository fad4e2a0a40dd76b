"""Words for people: the config keys in a message ("check data.path") become the field as the window shows it
("check the “Data folder or file” field (Data page)").

The engine's messages name config keys, which is right for the CLI and config files. The GUI rewords them where
it shows them. Labels are read from the window itself: a ConfigForm editor is named `section.key` and its label
is its form row's; any other editor carries the key in its CONFIG_KEY property and has a QLabel buddy or a form
row. Settings made by choosing rather than typing (the model, the freezing) are described in CHOSEN_ELSEWHERE.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from finetune_gui.config import RunConfig

#: Qt property holding the config key ("data.path") of an editor that is not named after it.
CONFIG_KEY = "configKey"

#: Settings that no labelled field edits: what the person chooses instead, or where else to set it.
CHOSEN_ELSEWHERE = {
    "model.name": "the model chosen on the Model page",
    "model.source": "the model chosen on the Model page",
    "model.weights_path": "the weights file opened on the Model page",
    "model.freeze": "the freezing chosen on the Model page",
    "model.unfreeze_last_n": "the freezing chosen on the Model page",
    "model.frozen_modules": "the freezing chosen on the Model page",
    "model.lora": "the LoRA box on the Model page",
    "model.lora.enabled": "the LoRA box on the Model page",
    "checkpoint.output_dir": "the runs folder (output_dir in the [checkpoint] part of a saved preset)",
    "data.decode_memory_mb": "the memory for decoded images (decode_memory_mb in the [data] part of a saved preset)",
    "data.decode_disk_mb": "the disk for decoded images (decode_disk_mb in the [data] part of a saved preset)",
    "train.feature_cache_dir": "the feature cache's folder (feature_cache_dir in the [train] part of a saved preset)",
    "train.feature_cache_disk_mb": "the feature cache folder's size limit (feature_cache_disk_mb in the [train] part "
    "of a saved preset)",
}


def config_keys(model: type = RunConfig, prefix: str = "") -> set[str]:
    """Every dotted key of the config ("data.path", "model.lora.r"); top-level scalars have no dot and are left out."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = field.annotation
        if isinstance(sub, type) and hasattr(sub, "model_fields"):
            if prefix:
                keys.add(key)
            keys |= config_keys(sub, f"{key}.")
        elif prefix:
            keys.add(key)
    return keys


def _by_tail(keys: frozenset[str]) -> dict[str, set[str]]:
    """ "lora.r" -> {"model.lora.r"}: the LoRA box names its editors without their section."""
    tails: dict[str, set[str]] = {}
    for key in keys:
        for i in range(1, key.count(".")):
            tails.setdefault(key.split(".", i)[-1], set()).add(key)
    return tails


KEYS = frozenset(config_keys())
_BY_TAIL = _by_tail(KEYS)
# longest first, so data.path_column is never read as data.path; no word, dot-word or path character around it
_KEY_RE = re.compile(
    r"(?<![\w./\\-])(" + "|".join(re.escape(k) for k in sorted(KEYS, key=len, reverse=True)) + r")(?![\w-]|\.\w)"
)
_TAGS = re.compile(r"<[^>]+>")


def key_of(editor: QWidget) -> str | None:
    """The config key an editor edits, or None."""
    key = editor.property(CONFIG_KEY) or editor.objectName()
    if key in KEYS:
        return key
    found = _BY_TAIL.get(key, set())
    return next(iter(found)) if len(found) == 1 else None


def field_places(root: QWidget) -> dict[str, str]:
    """Config key -> 'the “Label” field (Page page, Box)' for every labelled editor under root (first one wins)."""
    buddies = {}
    for label in root.findChildren(QLabel):
        if label.buddy() is not None:
            buddies.setdefault(label.buddy(), label)
    places: dict[str, str] = {}
    for editor in root.findChildren(QWidget):
        key = key_of(editor)
        if key is None or key in places:
            continue
        text = _label_text(editor, buddies)
        if text:
            places[key] = f"the “{text}” field ({_where(editor)})"
    return places


def rewording(root: QWidget | None) -> Callable[[str], str]:
    """A function that rewords messages for the window holding root (reads the labels once)."""
    places = dict(CHOSEN_ELSEWHERE)
    if root is not None:
        places.update(field_places(root))

    def reword(message: str) -> str:
        def name(match: re.Match) -> str:
            words = places.get(match.group(1))
            if words is None:
                return match.group(1)
            before = message[: match.start()].rstrip()
            return words[0].upper() + words[1:] if not before or before.endswith((".", ":")) else words

        return _KEY_RE.sub(name, message)

    return reword


def reword(message: str, widget: QWidget | None) -> str:
    """message with its config keys named as the window holding widget shows them."""
    return rewording(widget.window() if widget is not None else None)(message)


def _label_text(editor: QWidget, buddies: dict) -> str:
    label = buddies.get(editor)
    parent = editor.parentWidget()
    if label is None and parent is not None and isinstance(parent.layout(), QFormLayout):
        label = parent.layout().labelForField(editor)
    if not isinstance(label, QLabel):
        return ""
    return _TAGS.sub("", label.text()).replace("&", "").strip().rstrip(":")


def _where(editor: QWidget) -> str:
    """'Data page' or 'Data page, Split': the page an editor is on, and the box around it."""
    page = box = ""
    w = editor.parentWidget()
    while w is not None and not page:
        if isinstance(w, QGroupBox) and not box:
            box = _TAGS.sub("", w.title()).replace("&", "").strip()
        title = getattr(w, "title", None)
        if isinstance(title, str) and getattr(w, "key", ""):  # a Page: its title is its sidebar entry
            page = f"{title} page"
        w = w.parentWidget()
    return ", ".join(part for part in (page, box) if part) or "this window"
