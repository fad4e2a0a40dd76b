"""Columns guessed from a table's contents when the configured names are not in the file."""

from __future__ import annotations

from finetune_gui.core.data.columns import guess_columns


def test_long_texts_and_a_few_repeated_values_are_text_and_label():
    rows = [{"id": str(i), "review": f"A long enough review, number {i}.", "kind": "ab"[i % 2]} for i in range(30)]
    assert guess_columns(["id", "review", "kind"], rows) == {"text_column": "review", "label_columns": ["kind"]}


def test_a_column_of_image_file_names_is_the_image_path_column():
    rows = [{"file": f"pics/{i}.JPG", "tag": "cat"} for i in range(10)]
    assert guess_columns(["tag", "file"], rows) == {"path_column": "file"}


def test_numbers_make_a_label_for_regression_and_short_codes_are_no_text():
    rows = [
        {"text_body": f"Some sentence that is long {i}", "score": f"{i / 7:.3f}", "code": f"C{i}"} for i in range(30)
    ]
    assert guess_columns(["code", "text_body", "score"], rows) == {
        "text_column": "text_body",
        "label_columns": ["score"],
    }
    assert guess_columns(["code"], [{"code": f"C{i}"} for i in range(30)]) == {}
