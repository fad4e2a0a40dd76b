"""What a scan says about training (issue 13, item 11): a folder that is not a dataset is called so, in words,
with what to do; real data passes; data that cannot train says why."""

from __future__ import annotations

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data import ScanReport, scan_data
from finetune_gui.core.data.verdict import cannot_train, doubt
from tests.conftest import make_image_folder
from tests.factories import make_docs_tree


def scan(path) -> ScanReport:
    config = RunConfig()
    config.data.path = str(path)
    return scan_data(config)


def test_a_documentation_folder_does_not_look_like_a_dataset(tmp_path):
    report = scan(make_docs_tree(tmp_path / "docs"))
    assert report.num_samples == 65 and len(report.labels) == 11 and len(report.problems) == 90

    found = doubt(report)

    assert found is not None and found.no_dataset
    assert found.headline == "This folder does not look like a dataset"
    assert "90 files or folders could not be used and only 65 images could" in found.what
    assert "9 of 11 classes have fewer than 5 images: arrows (2), badges (1), buttons (3), cursors (3)" in found.what
    assert "and 4 more" in found.what
    assert "one subfolder per class" in found.todo and "Add images to the small classes" in found.todo
    assert cannot_train(report) is None  # it can train; it should not without asking


def test_an_image_folder_with_enough_images_per_class_raises_no_doubt(tmp_path):
    report = scan(make_image_folder(tmp_path / "shapes", per_class=6))
    assert doubt(report) is None and cannot_train(report) is None


def test_one_small_class_in_a_good_dataset_is_named_without_calling_it_no_dataset(tmp_path):
    root = make_image_folder(tmp_path / "pets", classes=("cat", "dog", "owl"), per_class=8)
    for extra in sorted((root / "owl").glob("*.png"))[3:]:
        extra.unlink()

    found = doubt(scan(root))

    assert found is not None
    assert found.headline == "Some classes have too few images to learn"
    assert found.reasons == ("1 of 3 classes have fewer than 5 images: owl (3)",)


def test_mostly_small_classes_without_problems_are_small_classes_not_a_wrong_folder(tmp_path):
    root = make_image_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=12)
    make_image_folder(root, classes=("fox", "owl", "emu"), per_class=2)

    found = doubt(scan(root))

    assert found is not None and not found.no_dataset
    assert found.headline == "Some classes have too few images to learn"
    assert found.reasons == ("3 of 5 classes have fewer than 5 images: emu (2), fox (2), owl (2)",)


def test_problems_outnumbering_rows_of_a_table_are_counted_as_rows(tmp_path):
    rows = ["text,label"] + [f"review {i},{'good' if i % 2 else 'bad'}" for i in range(12)] + [",good"] * 13
    table = tmp_path / "reviews.csv"
    table.write_text("\n".join(rows) + "\n")

    found = doubt(scan(table))

    assert found is not None and found.headline == "This file does not look like a dataset"
    assert "13 rows or files could not be used and only 12 texts could" in found.what
    assert "columns are set right" in found.todo


def test_cannot_train_says_why_for_no_samples_and_for_one_class():
    empty = ScanReport(source="x", format="csv", suggested_kind=TaskKind.TEXT_CLASSIFICATION, num_samples=0)
    one = ScanReport("x", "folder", TaskKind.IMAGE_CLASSIFICATION, 30, labels={"cat": 30})
    numbers = ScanReport("x", "csv", TaskKind.TEXT_REGRESSION, 30)

    assert cannot_train(empty) == "no usable texts were found"
    assert cannot_train(one) == "classification needs at least two classes and only one was found"
    assert cannot_train(numbers) is None and doubt(numbers) is None
    assert doubt(empty) is None and doubt(one) is None  # cannot_train speaks for these
