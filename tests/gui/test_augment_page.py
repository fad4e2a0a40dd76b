"""The augmentation page: live previews of real samples, regeneration, warnings, and text tasks."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QLabel, QPushButton

from finetune_gui.config import validate_dict
from finetune_gui.gui.pages import augment as augment_page
from tests.conftest import make_image_folder, make_reviews_csv


@pytest.fixture
def make_page(qtbot, state, bridge):
    from finetune_gui.gui.pages.augment import AugmentPage

    def make():
        page = AugmentPage(state, bridge)
        qtbot.addWidget(page)
        page.resize(1110, 760)
        page.show()
        page.on_shown()  # as the main window does when the page comes up
        return page

    return make


def settle(qtbot, page, bridge):
    qtbot.waitUntil(lambda: not page.busy and not bridge.busy, timeout=30000)


def image_state(state, tmp_path, kind="image-classification", **augment):
    folder = make_image_folder(tmp_path / "images", per_class=6, size=24)
    state.set_config(
        validate_dict({"task": {"kind": kind}, "data": {"path": str(folder), "image_size": 32}, "augment": augment})
    )


def thumbnails(page) -> list[bytes]:
    """The pixels of every picture in the preview grid, in order."""
    out = []
    for label in page.grid.findChildren(QLabel, "thumbnail"):
        image = label.pixmap().toImage()
        out.append(bytes(image.constBits()))
    return out


def test_the_preview_shows_augmented_versions_of_one_sample_per_class(qtbot, make_page, state, bridge, tmp_path):
    image_state(state, tmp_path)
    page = make_page()
    settle(qtbot, page, bridge)
    rows = page.grid.row_captions()
    assert augment_page.PREVIEW_SAMPLES == 4
    assert [r.split("\n")[0] for r in rows] == ["circle", "square", "stripes", "circle"]  # classes in turn
    assert len(set(rows)) == 4  # four different files
    assert page.grid.image_count() == 4 * (1 + augment_page.PREVIEW_VERSIONS)
    assert len(thumbnails(page)) == page.grid.image_count()


def test_regenerate_draws_new_versions_and_a_knob_change_regenerates_by_itself(
    qtbot, make_page, state, bridge, tmp_path
):
    image_state(state, tmp_path, hflip=0.5, crop_scale_min=0.3)
    page = make_page()
    settle(qtbot, page, bridge)
    first = thumbnails(page)
    qtbot.mouseClick(page.findChild(QPushButton, "regenerate"), Qt.MouseButton.LeftButton)
    settle(qtbot, page, bridge)
    second = thumbnails(page)
    originals = slice(0, None, 1 + augment_page.PREVIEW_VERSIONS)
    assert second[originals] == first[originals]  # the same real images …
    assert second != first  # … in new random versions
    crop = page.form.editors["random_resized_crop"]
    assert isinstance(crop, QCheckBox)
    crop.setChecked(False)  # through the form, as a user would
    assert page.busy  # a preview is on its way after a short pause
    settle(qtbot, page, bridge)
    assert thumbnails(page) != second
    assert state.config.augment.random_resized_crop is False


def test_the_same_seed_gives_the_same_pictures(qtbot, make_page, state, bridge, tmp_path):
    image_state(state, tmp_path, hflip=0.5)
    page = make_page()
    settle(qtbot, page, bridge)
    before = thumbnails(page)
    page.refresh_preview()
    settle(qtbot, page, bridge)
    assert thumbnails(page) == before


def test_harmful_choices_are_warned_about_and_the_warning_goes_when_undone(qtbot, make_page, state, bridge, tmp_path):
    image_state(state, tmp_path)
    page = make_page()
    settle(qtbot, page, bridge)
    warnings = page.findChild(QLabel, "augmentWarnings")
    assert warnings.isHidden()
    vflip = page.form.editors["vflip"]
    assert isinstance(vflip, QDoubleSpinBox)
    vflip.setValue(0.5)
    settle(qtbot, page, bridge)
    assert warnings.isVisible() and "upside down" in warnings.text()
    vflip.setValue(0.0)
    settle(qtbot, page, bridge)
    assert warnings.isHidden()


def test_mixup_with_regression_and_strong_augmentation_on_few_images_are_flagged(
    qtbot, make_page, state, bridge, tmp_path
):
    from finetune_gui.core.data import ScanReport

    image_state(state, tmp_path, kind="image-regression")
    page = make_page()
    state.set_value("augment", "mixup_alpha", 0.2)
    state.set_value("augment", "auto_augment", "randaugment")
    text = " ".join(page.warnings())
    assert "MixUp/CutMix are not used for image-regression" in text
    assert "images, with" not in text  # the amount of data is not known yet
    state.set_scan(ScanReport(source="x", format="csv", suggested_kind=None, num_samples=40))
    assert "only 40 images, with auto-augment, MixUp/CutMix" in " ".join(page.warnings())
    state.set_value("augment", "mixup_alpha", 0.0)
    assert not any("MixUp" in w for w in page.warnings())
    settle(qtbot, page, bridge)


def test_text_tasks_say_augmentation_is_for_images_and_make_no_preview(qtbot, make_page, state, bridge, tmp_path):
    csv = make_reviews_csv(tmp_path / "reviews.csv")
    state.set_config(validate_dict({"task": {"kind": "text-classification"}, "data": {"path": str(csv)}}))
    page = make_page()
    assert not bridge.busy and not page.busy
    assert page.findChild(QLabel, "textNotice").isVisible()
    assert page.grid.isHidden() and page.findChild(QPushButton, "regenerate").isHidden()
    assert not page.form.isEnabled()
    state.set_value("task", "kind", "image-classification")
    assert page.grid.isVisible() and page.findChild(QLabel, "textNotice").isHidden()


def test_without_data_the_page_asks_for_it_and_still_checks_the_settings(qtbot, make_page, state, bridge):
    state.set_value("augment", "rotation", 90.0)
    page = make_page()
    settle(qtbot, page, bridge)
    assert page.grid.image_count() == 0
    assert "Choose image data on the Data page" in page.grid.findChild(QLabel, "gridMessage").text()
    assert any("rotations up to 90°" in w for w in page.warnings())


def test_data_that_cannot_be_read_shows_why_in_place_of_the_preview(qtbot, make_page, state, bridge, tmp_path):
    state.set_config(validate_dict({"data": {"path": str(tmp_path / "nowhere")}}))
    page = make_page()
    with qtbot.assertNotEmitted(page.error):
        settle(qtbot, page, bridge)
    message = page.grid.findChild(QLabel, "gridMessage").text()
    assert message.startswith("No preview:") and "nowhere" in message
