"""The class bar chart: labels are painted whole when there is room, cut with … only when a label would take more
than a third of the chart."""

from __future__ import annotations

from finetune_gui.gui.widgets.bar_chart import MAX_BARS, BarChart


def chart(qtbot, counts: dict[str, int], width: int) -> BarChart:
    widget = BarChart()
    qtbot.addWidget(widget)
    widget.set_counts(counts)
    widget.resize(width, 200)
    return widget


def test_class_names_that_fit_are_shown_whole(qtbot):
    names = ["bag", "dress", "sneaker", "trouser", "ankle boot"]
    assert chart(qtbot, dict.fromkeys(names, 60), width=385).shown_labels() == names


def test_a_name_longer_than_a_third_of_the_chart_is_cut_with_an_ellipsis(qtbot):
    long = "a very long class name that no chart of this width can hold"
    shown = chart(qtbot, {long: 3, "short": 5}, width=300).shown_labels()
    assert shown[0].endswith("…") and long.startswith(shown[0][:-1]) and shown[1] == "short"


def test_beyond_the_bar_limit_the_smallest_classes_share_one_bar(qtbot):
    counts = {f"c{i:02d}": 100 - i for i in range(MAX_BARS + 5)}
    bars = chart(qtbot, counts, width=400).bars()
    assert len(bars) == MAX_BARS and bars[-1] == ("… 6 more", sum(100 - i for i in range(MAX_BARS - 1, MAX_BARS + 5)))
