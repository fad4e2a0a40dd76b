"""Live plots: points land in the buffers at once; plots sharing a refresher are drawn one per tick."""

from __future__ import annotations

import numpy as np

from finetune_gui.gui.widgets.live_plot import LivePlot, PlotRefresher


def _drawn(plot: LivePlot, name: str) -> list[float]:
    ys = plot.series[name].item.getData()[1]
    return [] if ys is None else list(ys)


def test_a_plot_without_a_refresher_draws_each_point_at_once(qtbot):
    plot = LivePlot("Loss", "step", "loss", "no points yet")
    qtbot.addWidget(plot)
    plot.add_series("train")
    assert not plot.showing_plot
    plot.series["train"].append(1, 0.5)
    assert plot.showing_plot and _drawn(plot, "train") == [0.5]


def test_plots_sharing_a_refresher_are_redrawn_one_per_tick_with_every_point(qtbot):
    refresher = PlotRefresher(interval_ms=20)
    plots = [LivePlot(f"Plot {i}", "step", "y", "no points yet", refresher=refresher) for i in range(3)]
    for plot in plots:
        qtbot.addWidget(plot)
        plot.add_series("y")
    for step in range(1, 6):  # five steps arrive before the first tick
        for plot in plots:
            plot.series["y"].append(step, step / 10)

    assert all(p.showing_plot for p in plots)  # the hint gives way at once
    assert refresher.pending == 3  # each plot waits once, however many points it got
    assert all(_drawn(p, "y") == [] for p in plots)
    qtbot.waitUntil(lambda: refresher.pending == 2, timeout=2000)
    assert [len(_drawn(p, "y")) for p in plots] == [5, 0, 0]  # the first tick drew the oldest change only
    qtbot.waitUntil(lambda: refresher.pending == 0, timeout=2000)
    for plot in plots:
        assert np.allclose(_drawn(plot, "y"), [0.1, 0.2, 0.3, 0.4, 0.5])


def test_flush_draws_every_waiting_plot_now(qtbot):
    refresher = PlotRefresher(interval_ms=10_000)
    plot = LivePlot("Loss", "step", "loss", "no points yet", refresher=refresher)
    qtbot.addWidget(plot)
    plot.add_series("train")
    plot.series["train"].append(1, 0.5)
    refresher.flush()
    assert refresher.pending == 0 and _drawn(plot, "train") == [0.5]
