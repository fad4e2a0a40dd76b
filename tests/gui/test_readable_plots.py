"""The Train page's plots can be read (issue 13, item 8): a loss that spans more than 100× goes on a log axis the
user can switch off, legends sit above the curves, a lone point is a dot with a range around it, and a run opened
or resumed from its folder shows the steps it took before."""

from __future__ import annotations

import json
from pathlib import Path

import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox

from tests.conftest import make_image_folder
from tests.factories import image_sections, train_run
from tests.gui.driving import go

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readable-plots")
    make_image_folder(root / "images")
    return train_run(root, image_sections())


def open_run(qtbot, window, run: Path):
    """File → Open run folder, then the Train page once it has drawn the run's curves."""
    window.show()
    window.state.set_run_dir(run)
    page = go(qtbot, window, "monitor")
    qtbot.waitUntil(lambda: "Previous run" in page.status_label.text(), timeout=30_000)
    page.plot_area.refresher.flush()
    return page


def steps_with_a_spike(run: Path, tmp_path: Path) -> Path:
    """A copy of `run` whose steps.jsonl has one loss of 8e4 among losses near 1."""
    import shutil

    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    rows = [{"step": s, "epoch": 0, "loss": 1.0 / s, "lr": 1e-3, "grad_norm": 1.0} for s in range(1, 11)]
    rows[3]["loss"] = 8e4
    (copy / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return copy


def view_y(plot) -> tuple[float, float]:
    return tuple(plot.plot.getViewBox().viewRange()[1])


def test_a_loss_spanning_more_than_100x_is_plotted_on_a_log_axis_the_user_can_switch_off(
    qtbot, window, finished_run, tmp_path
):
    page = open_run(qtbot, window, steps_with_a_spike(finished_run, tmp_path))
    loss = page.plots["loss"]
    assert list(loss.series["train"].y[:4]) == pytest.approx([1.0, 0.5, 1 / 3, 8e4])
    low, high = view_y(loss)  # log10 units: the small losses get most of the height
    assert low < -0.9 and 4.9 < high < 6, f"y from {low} to {high}"
    log_box = loss.findChild(QCheckBox, "logScale")
    assert log_box.isVisible() and log_box.isChecked()

    qtbot.mouseClick(log_box, Qt.MouseButton.LeftButton)
    assert not log_box.isChecked() and view_y(loss)[1] >= 8e4
    loss.series["train"].append(11, 0.05)  # new points do not turn it back on: the user chose
    page.plot_area.refresher.flush()
    assert not log_box.isChecked() and view_y(loss)[1] >= 8e4

    qtbot.mouseClick(log_box, Qt.MouseButton.LeftButton)
    assert view_y(loss)[1] < 6


def test_legends_sit_above_the_curves(qtbot, window, finished_run):
    page = open_run(qtbot, window, finished_run)
    loss = page.plots["loss"]
    [legend] = [item for item in loss.plot.scene().items() if isinstance(item, pg.LegendItem)]
    legend, view = legend.sceneBoundingRect(), loss.plot.getViewBox().sceneBoundingRect()
    assert legend.height() > 0 and legend.bottom() <= view.top() + 1
    assert not legend.intersects(view.adjusted(0, 2, 0, 0))


def test_a_single_step_and_epoch_are_drawn_as_dots_with_a_range_around_them(qtbot, long_image_run):
    window = long_image_run
    window.state.set_value("train", "epochs", 1)
    window.state.set_value("train", "max_steps", 1)
    window.state.set_value("train", "schedule", "constant")  # cosine would end its one step at lr 0
    window.show()
    page = go(qtbot, window, "monitor")
    with qtbot.waitSignal(window.bridge.run_finished, timeout=240_000):
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=60_000)
    page.plot_area.refresher.flush()
    for name, series in (("loss", "train"), ("lr", "lr"), ("grad", "grad norm"), ("metric", "metric")):
        plot = page.plots[name]
        s = plot.series[series]
        assert len(s) == 1 and plot.showing_plot, name
        assert s.item.opts["symbol"] is not None, f"{name}: a lone point without a dot is invisible"
        (x0, x1), (y0, y1) = plot.plot.getViewBox().viewRange()
        x, y = s.x[0], s.y[0]
        assert x0 < x < x1 and x1 - x0 <= 3, f"{name}: x range {x0}…{x1} around {x}"
        assert y0 < y < y1 and y1 - y0 <= 0.5 * abs(y) + 1e-9, f"{name}: y range {y0}…{y1} around {y}"


def stopped_run(window, tmp_path) -> Path:
    """Train the long image run in the engine until step 12, stopped there with a checkpoint."""
    from finetune_gui.core.training.engine import fit
    from finetune_gui.core.training.events import RunControl, StepMetrics

    control = RunControl()

    def listener(event):
        if isinstance(event, StepMetrics) and event.step >= 12:
            control.stop()

    config = window.state.config.model_copy(deep=True).with_base_dir(window.state.config.base_dir)
    config.train.log_every = 1
    result = fit(config, listener, control, output_dir=tmp_path / "runs")
    assert result.status == "stopped"
    return Path(result.run_dir)


def test_a_resumed_run_shows_the_steps_it_took_before(qtbot, long_image_run, tmp_path):
    window = long_image_run
    run = stopped_run(window, tmp_path)
    page = open_run(qtbot, window, run)
    before = {
        name: page.plots[p].series[name].x.copy()
        for p, name in (("loss", "train"), ("lr", "lr"), ("grad", "grad norm"))
    }
    for name, steps in before.items():
        assert list(steps) == list(range(1, 13)), name
    assert page.resume_run_button.isEnabled()

    resumed = []
    window.bridge.run_started.connect(resumed.append)
    with qtbot.waitSignal(window.bridge.step, timeout=240_000):
        qtbot.mouseClick(page.resume_run_button, Qt.MouseButton.LeftButton)
    try:
        qtbot.waitUntil(lambda: len(page.plots["loss"].series["train"]) > 13, timeout=120_000)
        at = resumed[0].resumed_from_step
        train = page.plots["loss"].series["train"].x
        assert 0 < at <= 12 and list(train[:at]) == list(range(1, at + 1))  # the steps before the checkpoint stay
        assert train[at] > at
    finally:
        window.bridge.stop()
        qtbot.waitUntil(lambda: not window.bridge.is_training, timeout=60_000)


def test_a_run_saved_before_steps_were_kept_shows_its_epochs_lrs_and_says_grad_norms_were_not_saved(
    qtbot, window, finished_run, tmp_path
):
    import shutil

    old = tmp_path / finished_run.name
    shutil.copytree(finished_run, old)
    (old / "steps.jsonl").unlink()
    page = open_run(qtbot, window, old)
    epochs = [json.loads(line) for line in (old / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in epochs if "split" not in r]
    assert list(page.plots["lr"].series["lr"].y) == pytest.approx(lrs)
    assert not page.plots["grad"].showing_plot and "not save" in page.plots["grad"].hint.text()
