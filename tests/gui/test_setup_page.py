"""The training setup page: the LR plan plot follows the knobs, steps come from the scan, the device combo
lists this machine's devices, knobs show for the chosen schedule, and the LR and batch-size finders run off the
main thread."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from finetune_gui.config import TaskKind
from finetune_gui.core.plan import ASSUMED_TRAIN_SAMPLES, planned_steps
from finetune_gui.gui.pages.setup import SetupPage
from tests.conftest import make_image_folder


def open_page(qtbot, state, bridge) -> SetupPage:
    page = SetupPage(state, bridge)
    qtbot.addWidget(page)
    page.resize(1110, 740)
    page.show()  # the first show makes the plots, lists the devices and draws the LR plan
    return page


def wait_plan(qtbot, page: SetupPage) -> None:
    qtbot.waitUntil(lambda: not page.lr_plan_pending and not page.bridge.busy, timeout=60000)


def expected_lrs(config, total: int, per_epoch: int) -> list[float]:
    from finetune_gui.core.training.optim import planned_lrs

    return planned_lrs(config.train, total, per_epoch)


def test_lr_plot_shows_the_planned_lrs_and_redraws_when_the_schedule_changes(qtbot, state, bridge):
    page = open_page(qtbot, state, bridge)
    wait_plan(qtbot, page)
    per_epoch = math.ceil(ASSUMED_TRAIN_SAMPLES / 32)  # no scan yet: an assumed dataset, said so
    assert planned_steps(state.config, None)[:2] == (per_epoch, per_epoch * 10)
    assert "estimated" in page.steps_label.text()
    cosine = page.lr_curve.lrs()
    assert np.allclose(cosine, expected_lrs(state.config, per_epoch * 10, per_epoch))
    assert cosine[0] == pytest.approx(1e-3) and cosine[-1] == pytest.approx(0.0)

    page.schedule_form.editors["schedule"].setCurrentText("step")
    page.schedule_form.editors["step_epochs"].setValue(3)
    assert np.array_equal(page.lr_curve.lrs(), cosine)  # debounced: not redrawn on every keystroke
    wait_plan(qtbot, page)
    step = page.lr_curve.lrs()
    assert np.allclose(step, expected_lrs(state.config, per_epoch * 10, per_epoch))
    assert sorted(set(np.round(step, 12))) == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3])  # drops every 3 epochs


def test_steps_per_epoch_come_from_the_scanned_training_split(qtbot, state, bridge):
    from finetune_gui.core.data.common import ScanReport

    page = open_page(qtbot, state, bridge)
    wait_plan(qtbot, page)
    state.set_scan(ScanReport("x", "folder", TaskKind.IMAGE_CLASSIFICATION, 200, {"a": 100, "b": 100}))
    state.set_value("train", "grad_accum", 2)
    wait_plan(qtbot, page)
    # 200 samples less 15 % val and 15 % test = 140; 5 batches of 32; 3 optimiser steps with accumulation 2
    assert planned_steps(state.config, state.scan)[:2] == (3, 30)
    assert len(page.lr_curve.lrs()) == 30
    assert "estimated" not in page.steps_label.text() and "140 training samples" in page.steps_label.text()


def test_only_the_knobs_of_the_chosen_schedule_and_optimiser_show(qtbot, state, bridge):
    page = open_page(qtbot, state, bridge)
    assert page.knob_visible("min_lr_ratio") and not page.knob_visible("step_epochs")
    assert not page.knob_visible("momentum")  # adamw has no momentum knob
    state.set_value("train", "schedule", "multistep")
    assert page.knob_visible("milestones") and page.knob_visible("gamma") and not page.knob_visible("min_lr_ratio")
    page.optimizer_form.editors["optimizer"].setCurrentText("sgd")
    assert state.config.train.optimizer == "sgd"
    assert page.knob_visible("momentum") and page.knob_visible("nesterov")
    wait_plan(qtbot, page)


def test_device_combo_lists_the_devices_of_this_machine(qtbot, state, bridge):
    import torch

    page = open_page(qtbot, state, bridge)
    wait_plan(qtbot, page)
    names = page.device_names()
    assert names[:2] == ["auto", "cpu"]
    assert ("cuda:0" in names) == torch.cuda.is_available()
    combo = page.device_combo
    assert combo.itemText(0) == f"auto ({'cuda:0' if torch.cuda.is_available() else 'cpu'} here)"
    combo.setCurrentIndex(combo.findData("cpu"))
    combo.activated.emit(combo.currentIndex())  # what picking an item does
    assert state.config.train.device == "cpu"
    state.set_value("train", "device", "cuda:7")  # e.g. from a preset made on a bigger machine
    assert "cuda:7 — not found on this machine" in [combo.itemText(i) for i in range(combo.count())]
    assert combo.currentData() == "cuda:7"


@pytest.mark.parametrize("mps, auto", [(False, "cpu"), (True, "mps")])
def test_auto_names_the_device_the_engine_picks_for_it(qtbot, state, bridge, monkeypatch, mps, auto):
    import torch

    from finetune_gui.core import devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: mps)
    page = open_page(qtbot, state, bridge)
    wait_plan(qtbot, page)
    assert page.device_combo.itemText(0) == f"auto ({auto} here)"


def test_when_the_devices_cannot_be_listed_auto_claims_no_device(qtbot, state, bridge, monkeypatch):
    from finetune_gui.core import devices

    def broken():
        raise RuntimeError("driver gone")

    monkeypatch.setattr(devices, "available_devices", broken)
    page = open_page(qtbot, state, bridge)
    with qtbot.waitSignal(page.error, timeout=30000):
        wait_plan(qtbot, page)
    assert page.device_combo.itemText(0) == "auto"


@pytest.fixture
def tiny_image_state(state, tmp_path, one_torch_thread):
    make_image_folder(tmp_path / "images")
    for section, key, value in [
        ("data", "path", str(tmp_path / "images")),
        ("data", "image_size", 32),
        ("model", "pretrained", False),
        ("model", "freeze", "none"),
        ("train", "batch_size", 8),
        ("train", "device", "cpu"),
    ]:
        assert state.set_value(section, key, value) is None
    return state


def test_lr_finder_plots_loss_against_lr_and_the_suggestion_can_be_used(qtbot, tiny_image_state, bridge):
    state = tiny_image_state
    page = open_page(qtbot, state, bridge)
    wait_plan(qtbot, page)
    page.lr_finder.finder_steps_spin.setValue(20)
    qtbot.mouseClick(page.lr_finder.find_button, Qt.MouseButton.LeftButton)
    assert (
        page.lr_finder.running
        and not page.lr_finder.find_button.isEnabled()
        and page.lr_finder.finder_busy.isVisibleTo(page)
    )
    qtbot.waitUntil(lambda: not page.lr_finder.running, timeout=180000)
    assert page.lr_finder.find_button.isEnabled() and not page.lr_finder.finder_busy.isVisibleTo(page)
    lrs, losses = page.lr_finder.finder_plot.curve()
    assert len(lrs) >= 8 and np.all(np.diff(lrs) > 0) and np.all(np.isfinite(losses))
    assert page.lr_finder.finder_plot.showing_plot
    suggested = page.lr_finder.finder_plot.suggested
    assert suggested is not None and lrs[0] <= suggested <= lrs[-1]
    assert page.lr_finder.use_suggested_button.isEnabled()
    assert f"{float(f'{suggested:.3g}'):g}" in page.lr_finder.use_suggested_button.text()

    qtbot.mouseClick(page.lr_finder.use_suggested_button, Qt.MouseButton.LeftButton)
    assert state.config.train.lr == pytest.approx(suggested, rel=5e-3)
    wait_plan(qtbot, page)
    assert page.lr_curve.lrs().max() == pytest.approx(state.config.train.lr)  # the plan follows the new LR


@pytest.fixture
def page_with_missing_data(qtbot, state, bridge, tmp_path) -> SetupPage:
    """The page, settled, for a config whose data folder does not exist."""
    state.set_value("data", "path", str(tmp_path / "missing"))
    state.set_value("model", "pretrained", False)
    page = open_page(qtbot, state, bridge)
    wait_plan(qtbot, page)
    return page


def test_lr_finder_failure_shows_on_the_page_and_as_a_signal(qtbot, page_with_missing_data):
    page = page_with_missing_data
    with qtbot.waitSignal(page.error, timeout=120000) as signal:
        page.lr_finder.start()
    assert signal.args[0] == "DataError"
    assert (
        "The LR finder failed" in page.lr_finder.finder_status.text()
        and "missing" in page.lr_finder.finder_status.text()
    )
    assert page.lr_finder.find_button.isEnabled() and not page.lr_finder.running


def test_stopping_the_lr_finder_ends_the_sweep_early(qtbot, tiny_image_state, bridge):
    page = open_page(qtbot, tiny_image_state, bridge)
    wait_plan(qtbot, page)
    page.lr_finder.finder_steps_spin.setValue(1000)
    page.lr_finder.start()
    qtbot.mouseClick(page.lr_finder.stop_finder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.lr_finder.running, timeout=180000)
    assert (
        "stopped by request" in page.lr_finder.finder_status.text()
        or "only 0 points" in page.lr_finder.finder_status.text()
    )
    assert not page.lr_finder.use_suggested_button.isEnabled()


@pytest.fixture
def memory_for_12_images(monkeypatch):
    """Training steps on more than 12 images raise torch.OutOfMemoryError, as a small GPU would."""
    import torch

    from tests.faults.helpers import replace_forward_batch

    def make(real):
        def forward_batch(p, batch, *, train):
            if train and batch[0].shape[0] > 12:
                raise torch.OutOfMemoryError(f"CUDA out of memory (batch {batch[0].shape[0]})")
            return real(p, batch, train=train)

        return forward_batch

    replace_forward_batch(monkeypatch, make)


def test_batch_size_finder_reports_the_largest_batch_that_fits_and_it_can_be_used(
    qtbot, tiny_image_state, bridge, memory_for_12_images
):
    state = tiny_image_state
    page = open_page(qtbot, state, bridge)
    wait_plan(qtbot, page)
    qtbot.mouseClick(page.batch_size_finder.find_batch_button, Qt.MouseButton.LeftButton)
    assert page.batch_size_finder.running and not page.batch_size_finder.find_batch_button.isEnabled()
    qtbot.waitUntil(lambda: not page.batch_size_finder.running, timeout=180000)
    text = page.batch_size_finder.batch_status.text()
    assert "<b>12</b>" in text and "ran out of memory" in text and "8 fits" in text, text
    assert (
        page.batch_size_finder.use_batch_button.text() == "Use 12"
        and page.batch_size_finder.use_batch_button.isEnabled()
    )
    assert state.config.train.batch_size == 8  # nothing changes until the user says so
    qtbot.mouseClick(page.batch_size_finder.use_batch_button, Qt.MouseButton.LeftButton)
    assert state.config.train.batch_size == 12
    assert page.length_form.editors["batch_size"].value() == 12  # the form shows it
    assert not page.batch_size_finder.use_batch_button.isEnabled()


def test_batch_size_finder_failure_shows_on_the_page_and_as_a_signal(qtbot, page_with_missing_data):
    page = page_with_missing_data
    with qtbot.waitSignal(page.error, timeout=120000) as signal:
        qtbot.mouseClick(page.batch_size_finder.find_batch_button, Qt.MouseButton.LeftButton)
    assert signal.args[0] == "DataError"
    assert (
        "batch-size search failed" in page.batch_size_finder.batch_status.text()
        and "missing" in page.batch_size_finder.batch_status.text()
    )
    assert (
        page.batch_size_finder.find_batch_button.isEnabled() and not page.batch_size_finder.use_batch_button.isEnabled()
    )


def test_stopping_the_batch_size_finder_ends_the_search_and_changes_nothing(
    qtbot, tiny_image_state, bridge, memory_for_12_images
):
    page = open_page(qtbot, tiny_image_state, bridge)
    wait_plan(qtbot, page)
    assert page.batch_size_finder.stop_batch_button.isHidden()
    qtbot.mouseClick(page.batch_size_finder.find_batch_button, Qt.MouseButton.LeftButton)
    assert page.batch_size_finder.stop_batch_button.isVisible() and page.batch_size_finder.stop_batch_button.isEnabled()
    qtbot.mouseClick(page.batch_size_finder.stop_batch_button, Qt.MouseButton.LeftButton)
    assert not page.batch_size_finder.stop_batch_button.isEnabled()  # pressed once; the search ends at its next trial
    qtbot.waitUntil(lambda: not page.batch_size_finder.running, timeout=180000)
    assert page.batch_size_finder.batch_status.text() == "The batch-size search was stopped."
    assert page.batch_size_finder.stop_batch_button.isHidden() and page.batch_size_finder.find_batch_button.isEnabled()
    assert not page.batch_size_finder.use_batch_button.isEnabled() and tiny_image_state.config.train.batch_size == 8


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine-warmup", "plateau"])
def test_at_the_windows_smallest_size_no_form_is_cut_off_at_the_right(qtbot, state, bridge, schedule):
    from PySide6.QtWidgets import QGroupBox, QScrollArea

    page = open_page(qtbot, state, bridge)  # 1110 px: the page's share of a 1280×800 window
    page.schedule_form.editors["schedule"].setCurrentText(schedule)  # each schedule shows its own knobs
    page.optimizer_form.editors["optimizer"].setCurrentText("sgd")  # the optimiser with the most
    wait_plan(qtbot, page)
    scroll = page.findChild(QScrollArea)
    viewport = scroll.viewport()
    qtbot.wait(100)  # the layout requests the knob changes posted
    boxes = scroll.widget().findChildren(QGroupBox)
    assert len(boxes) == 7  # optimiser, schedule, length, early stopping, hardware, speed, loss
    for box in boxes:
        right = box.mapTo(viewport, box.rect().topRight()).x()
        assert right < viewport.width(), f"{box.title()!r} ends at x={right}, the column is {viewport.width()} px"


def test_tensorboard_logs_are_a_box_to_tick_beside_the_logging_interval(qtbot, state, bridge):
    page = open_page(qtbot, state, bridge)
    box = page.logging_form.editors["tensorboard"]
    assert box.isVisible() and not box.isChecked()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert state.config.logging.tensorboard is True
    assert "tensorboard --logdir" in box.toolTip()


def test_the_speed_group_edits_precision_memory_format_and_compile_with_tooltips_from_the_config(qtbot, state, bridge):
    from PySide6.QtWidgets import QGroupBox

    from finetune_gui.config import field_info

    page = open_page(qtbot, state, bridge)
    speed = next(b for b in page.findChildren(QGroupBox) if b.title() == "Speed")
    form = page.speed_form
    assert form.isAncestorOf(form.editors["compile"]) and speed.isAncestorOf(form)
    assert set(form.editors) == {"precision", "memory_format", "compile", "feature_cache", "feature_cache_aug_copies"}
    assert "precision" not in page.hardware_form.editors  # moved, not shown twice
    assert form.editors["memory_format"].currentText() == "auto" and form.editors["compile"].currentText() == "off"
    assert form.editors["compile"].toolTip() == field_info("train", "compile")[0]
    form.editors["memory_format"].setCurrentText("channels_last")
    compile_box = form.editors["compile"]
    assert [compile_box.itemText(i) for i in range(compile_box.count())] == ["off", "on", "auto"]
    compile_box.setCurrentText("on")
    form.editors["precision"].setCurrentText("bf16")
    t = state.config.train
    assert (t.memory_format, t.compile, t.precision) == ("channels_last", True, "bf16")
    compile_box.setCurrentText("auto")
    assert state.config.train.compile == "auto"
    state.set_value("train", "compile", False)  # a config opened with compile = false shows off
    assert compile_box.currentText() == "off"
    wait_plan(qtbot, page)


def test_the_lp_ft_recipe_shows_its_knobs_and_the_lr_plan_shows_both_stages(qtbot, state, bridge):
    page = open_page(qtbot, state, bridge)
    wait_plan(qtbot, page)
    assert not page.knob_visible("lp_epochs") and not page.knob_visible("ft_lr_mult")
    state.set_value("train", "schedule", "constant")
    state.set_value("train", "recipe", "lp-ft")
    assert page.knob_visible("lp_epochs") and page.knob_visible("ft_lr_mult")
    qtbot.waitUntil(lambda: page.lr_plan_pending, timeout=5000)
    wait_plan(qtbot, page)
    lrs = page.lr_curve.lrs()
    lr = state.config.train.lr
    assert max(lrs) == pytest.approx(lr) and min(lrs) == pytest.approx(lr * 0.1)


def test_the_speed_group_sets_the_augmented_copies_of_the_feature_cache(qtbot, state, bridge):
    from finetune_gui.config import field_info

    page = open_page(qtbot, state, bridge)
    spin = page.speed_form.editors["feature_cache_aug_copies"]
    assert spin.value() == 0 and (spin.minimum(), spin.maximum()) == (0, 32)
    assert spin.toolTip() == field_info("train", "feature_cache_aug_copies")[0]
    spin.setValue(4)
    assert state.config.train.feature_cache_aug_copies == 4
    wait_plan(qtbot, page)
