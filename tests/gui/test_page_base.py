"""What every page gets from the Page base class: a first-show hook that runs once, however often it shows."""

from __future__ import annotations

from finetune_gui.gui.pages.base import Page


class CountingPage(Page):
    key = "counting"
    title = "Counting"

    def __init__(self, state, bridge):
        super().__init__(state, bridge)
        self.first_shows = 0

    def on_first_shown(self) -> None:
        self.first_shows += 1


def test_the_first_show_hook_runs_once_across_several_shows(qtbot, state, bridge):
    page = CountingPage(state, bridge)
    qtbot.addWidget(page)
    assert page.first_shows == 0 and not page.shown_once  # a page nobody looked at does no work
    for _ in range(3):
        page.show()
        assert page.first_shows == 1 and page.shown_once
        page.hide()
    page.on_shown()  # the main window's switch hook is not a first show
    assert page.first_shows == 1


def test_a_real_page_activates_once_when_the_user_comes_back_to_it(qtbot, window, monkeypatch):
    from finetune_gui.gui.pages.setup import SetupPage

    calls = []
    monkeypatch.setattr(SetupPage, "on_first_shown", lambda self: calls.append(self.key))
    window.show()
    assert calls == []  # the start page shows first
    for key in ("setup", "data", "setup", "model", "setup"):
        window.show_page(key)
    assert calls == ["setup"]
