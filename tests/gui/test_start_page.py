"""The start page: preset cards by task, loading a preset, open buttons and recent items."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QGroupBox, QLabel, QPushButton

from finetune_gui.config import load_config
from finetune_gui.presets import builtin_presets_dir, list_presets, save_user_preset


@pytest.fixture
def page(qtbot, state, bridge):
    from finetune_gui.gui.pages.start import StartPage

    p = StartPage(state, bridge)
    qtbot.addWidget(p)
    return p


def _group_of(page, card_name: str) -> str:
    return page.cards[card_name].parentWidget().objectName()


def test_every_preset_has_a_card_in_the_group_of_its_task(page):
    presets = list_presets()
    assert presets and set(page.cards) == {p.name for p in presets}
    assert _group_of(page, "demo-fashion") == "presetGroup-image"
    assert _group_of(page, "fashion-brightness-regression") == "presetGroup-image"
    assert _group_of(page, "minilm-sentiment") == "presetGroup-text"
    assert _group_of(page, "gpt2-finetune") == "presetGroup-lm"
    texts = [label.text() for label in page.cards["demo-fashion"].findChildren(QLabel)]
    assert load_config(builtin_presets_dir() / "demo-fashion.toml").description in texts


def test_clicking_a_card_loads_the_preset_and_goes_to_the_data_page(qtbot, page, state):
    path = builtin_presets_dir() / "minilm-sentiment.toml"
    with qtbot.waitSignal(page.navigate) as nav:
        qtbot.mouseClick(page.cards["minilm-sentiment"], Qt.MouseButton.LeftButton)
    assert nav.args == ["data"]
    assert state.config == load_config(path)
    assert state.config_path == path
    assert state.config.base_dir == path.parent.resolve()  # relative data paths resolve from the preset


def test_user_presets_appear_when_the_page_is_shown_and_broken_files_cannot_be_opened(qtbot, page, state):
    from finetune_gui.presets import user_presets_dir

    config = load_config(builtin_presets_dir() / "demo-fashion.toml")
    config.description = "my own fashion setup"
    save_user_preset(config, "my-fashion")
    (user_presets_dir() / "broken.toml").write_text("this is = = not toml", encoding="utf-8")
    assert "my-fashion" not in page.cards
    page.on_shown()
    card = page.cards["my-fashion"]
    assert _group_of(page, "my-fashion") == "presetGroup-image"
    assert any("(yours)" in label.text() for label in card.findChildren(QLabel))
    broken = page.cards["broken"]
    assert _group_of(page, "broken") == "presetGroup-invalid" and not broken.isEnabled()
    with qtbot.assertNotEmitted(page.navigate):
        qtbot.mouseClick(broken, Qt.MouseButton.LeftButton)
    assert state.config_path is None


def test_the_open_buttons_hand_the_chosen_path_to_the_window_and_cancel_does_nothing(
    qtbot, page, monkeypatch, tmp_path
):
    chosen = {"file": str(tmp_path / "setup.toml"), "dir": str(tmp_path / "runs" / "run-1")}
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (chosen["file"], "Config (*.toml)"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: chosen["dir"])
    seen: list[str] = []
    page.open_path_requested.connect(seen.append)
    qtbot.mouseClick(page.findChild(QPushButton, "openConfig"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.findChild(QPushButton, "openRun"), Qt.MouseButton.LeftButton)
    assert seen == [chosen["file"], chosen["dir"]]
    assert QSettings().value("folders/configs") == str(tmp_path)  # the next dialog starts there
    chosen["file"], chosen["dir"] = "", ""
    qtbot.mouseClick(page.findChild(QPushButton, "openConfig"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.findChild(QPushButton, "openRun"), Qt.MouseButton.LeftButton)
    assert len(seen) == 2


def test_recent_items_come_from_settings_and_missing_ones_are_disabled(qtbot, page, tmp_path):
    run = tmp_path / "runs" / "demo-1"
    run.mkdir(parents=True)
    config = str(builtin_presets_dir() / "demo-fashion.toml")
    settings = QSettings()
    settings.setValue("recent/configs", [config, str(tmp_path / "gone.toml")])
    settings.setValue("recent/runs", [str(run)])
    page.on_shown()
    configs = page.findChild(QGroupBox, "recentConfigs").findChildren(QPushButton)
    runs = page.findChild(QGroupBox, "recentRuns").findChildren(QPushButton)
    assert [b.text() for b in configs] == ["demo-fashion", "gone  (missing)"]
    assert configs[0].isEnabled() and not configs[1].isEnabled()
    seen: list[str] = []
    page.open_path_requested.connect(seen.append)
    qtbot.mouseClick(configs[0], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(runs[0], Qt.MouseButton.LeftButton)
    assert seen == [config, str(run)]


def test_the_page_says_data_can_be_dropped_on_the_window(page):
    assert "drop" in page.findChild(QLabel, "dropHint").text().lower()


def test_no_recent_items_says_so(page):
    notes = [label.text() for label in page.findChild(QGroupBox, "recentRuns").findChildren(QLabel)]
    assert notes == ["No runs yet."]
