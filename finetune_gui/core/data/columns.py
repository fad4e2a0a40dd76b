"""Which columns of a table hold what, when the configured names are not in the file: a column of image file
names is the image path column; otherwise the column of longest texts is the text and the column with few
distinct values (or numbers) the label."""

from __future__ import annotations

from typing import Any

from finetune_gui.core.data.common import cell, looks_numeric

SAMPLE_ROWS = 500
MIN_TEXT_LENGTH = 15  # a mean shorter than this is a code or a category, not text to learn from
MAX_LABEL_SHARE = 0.2  # a label column repeats: at most this share of the rows are distinct values


def guess_columns(columns: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The data settings the table's contents suggest ({} when nothing fits): {"path_column": …} for images,
    or {"text_column": …, "label_columns": […]} for text (the label left out when no column fits)."""
    from finetune_gui.core.data.image_records import IMAGE_EXTENSIONS

    sample = rows[:SAMPLE_ROWS]
    values = {c: [cell(r, c) for r in sample] for c in columns}
    filled = {c: [v for v in vs if v] for c, vs in values.items()}
    for c in columns:
        vs = filled[c]
        if vs and sum(v.lower().endswith(tuple(IMAGE_EXTENSIONS)) for v in vs) >= 0.8 * len(vs):
            return {"path_column": c}
    lengths = {c: sum(map(len, vs)) / len(vs) for c, vs in filled.items() if vs and not looks_numeric(vs)}
    texts = [c for c in lengths if lengths[c] >= MIN_TEXT_LENGTH]
    if not texts:
        return {}
    text = max(texts, key=lambda c: lengths[c])
    guess: dict[str, Any] = {"text_column": text}
    labels = [
        c
        for c in columns
        if c != text
        and filled[c]
        and (looks_numeric(filled[c]) or 2 <= len(set(filled[c])) <= max(2, MAX_LABEL_SHARE * len(filled[c])))
    ]
    if labels:
        guess["label_columns"] = [min(labels, key=lambda c: len(set(filled[c])))]
    return guess
