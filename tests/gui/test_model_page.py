"""The model page: catalog search and badges, the layer tree built off the main thread, freeze checkboxes and
quick actions that edit the config, the running trainable total, LoRA for Hugging Face models, inline errors."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from finetune_gui.config import TaskKind
from finetune_gui.gui.pages.model import TREE_DEBOUNCE_MS, ModelPage
from tests.factories import tiny_bert_dir

RESNET18_BACKBONE = 11_176_512  # torchvision resnet18 without its fc layer
TREE_WAIT_MS = 2 * TREE_DEBOUNCE_MS


def fc(outputs: int) -> int:
    return 512 * outputs + outputs


def open_page(qtbot, state, bridge) -> ModelPage:
    page = ModelPage(state, bridge)
    qtbot.addWidget(page)
    page.resize(1110, 740)
    page.show()  # the first show loads the catalog and the tree
    return page


def wait_idle(qtbot, page: ModelPage, timeout: int = 60000) -> None:
    qtbot.waitUntil(lambda: not page.tree_loading and not page.bridge.busy, timeout=timeout)


@pytest.fixture
def resnet_state(state):
    state.set_value("model", "pretrained", False)  # random init: nothing to download
    state.set_value("model", "freeze", "head-only")  # chosen, so random weights do not make every layer train
    return state


def test_tree_of_resnet18_shows_modules_counts_and_head_only_as_chosen(qtbot, resnet_state, bridge):
    page = open_page(qtbot, resnet_state, bridge)
    wait_idle(qtbot, page)
    names = page.freezing.layer_tree.module_names()
    assert {"conv1", "bn1", "layer1", "layer1.0", "layer1.0.conv1", "layer4", "fc"} <= set(names)
    assert "relu" not in names  # modules without parameters are left out
    assert page.trainable_count() == (fc(2), RESNET18_BACKBONE + fc(2))  # 2 outputs until the data is scanned
    assert page.freezing.layer_tree.check_state("fc") == Qt.CheckState.Checked
    assert page.freezing.layer_tree.check_state("layer1") == Qt.CheckState.Unchecked
    assert page.freezing.layer_tree.total_label.text().startswith(
        f"Trainable: 1,026 of {RESNET18_BACKBONE + 1026:,} parameters"
    )
    assert page.freezing.last_n_spin.maximum() == 6  # conv1, bn1, layer1..4
    assert not page.lora_box.isEnabled()  # LoRA is for Hugging Face models


def test_the_head_follows_the_labels_found_by_the_scan(qtbot, resnet_state, bridge):
    from finetune_gui.core.data.common import ScanReport

    page = open_page(qtbot, resnet_state, bridge)
    wait_idle(qtbot, page)
    resnet_state.set_scan(ScanReport("x", "folder", TaskKind.IMAGE_CLASSIFICATION, 50, {c: 10 for c in "abcde"}))
    qtbot.waitUntil(lambda: page.trainable_count()[0] == fc(5), timeout=60000)
    wait_idle(qtbot, page)


def test_unticking_and_ticking_modules_writes_the_module_list_and_updates_the_total(qtbot, resnet_state, bridge):
    resnet_state.set_value("model", "freeze", "none")
    page = open_page(qtbot, resnet_state, bridge)
    wait_idle(qtbot, page)
    tree, model = page.freezing.layer_tree, resnet_state.config.model
    total = RESNET18_BACKBONE + fc(2)
    assert page.trainable_count() == (total, total)

    tree.set_checked("layer1", False)
    assert (model.freeze, model.frozen_modules) == ("modules", ["layer1"])
    assert tree.params_of("layer1") == 147_968
    assert page.trainable_count()[0] == total - 147_968
    assert f"Trainable: {total - 147_968:,} of" in tree.total_label.text()

    tree.set_checked("layer2.0", False)
    tree.set_checked("layer2.1", False)
    assert model.frozen_modules == ["layer1", "layer2"]  # both blocks frozen: written as their parent
    assert tree.check_state("layer2") == Qt.CheckState.Unchecked

    tree.set_checked("layer2.1", True)  # a child of a frozen module trains again: the parent is split up
    assert model.frozen_modules == ["layer1", "layer2.0"]
    assert tree.check_state("layer2") == Qt.CheckState.PartiallyChecked

    tree.set_checked("layer1", True)
    assert model.frozen_modules == ["layer2.0"]
    assert page.trainable_count()[0] == total - tree.params_of("layer2.0")

    resnet_state.set_value("model", "frozen_modules", ["layer2.0", "nosuch"])
    assert "Not in this model: nosuch" in page.freezing.strategy_label.text()


def test_quick_actions_set_the_strategy_and_the_boxes_follow(qtbot, resnet_state, bridge):
    resnet_state.set_value("model", "freeze", "none")
    page = open_page(qtbot, resnet_state, bridge)
    wait_idle(qtbot, page)
    model, tree = resnet_state.config.model, page.freezing.layer_tree

    qtbot.mouseClick(page.freezing.head_only_button, Qt.MouseButton.LeftButton)
    assert model.freeze == "head-only"
    assert page.trainable_count()[0] == fc(2)

    page.freezing.last_n_spin.setValue(2)
    qtbot.mouseClick(page.freezing.last_n_button, Qt.MouseButton.LeftButton)
    assert (model.freeze, model.unfreeze_last_n) == ("last-n", 2)
    assert [tree.check_state(n) for n in ("layer2", "layer3", "layer4", "fc")] == [
        Qt.CheckState.Unchecked,
        Qt.CheckState.Checked,
        Qt.CheckState.Checked,
        Qt.CheckState.Checked,
    ]
    page.freezing.last_n_spin.setValue(3)  # while last-n is on, the spin box edits N directly
    assert model.unfreeze_last_n == 3 and tree.check_state("layer2") == Qt.CheckState.Checked

    qtbot.mouseClick(page.freezing.all_button, Qt.MouseButton.LeftButton)
    assert model.freeze == "none"
    assert page.trainable_count()[0] == page.trainable_count()[1]
    assert "Everything trains" in page.freezing.strategy_label.text()


def test_tiny_bert_folder_tree_last_n_and_lora(qtbot, state, bridge, tmp_path):
    folder = tiny_bert_dir(tmp_path)
    state.set_value("task", "kind", TaskKind.TEXT_CLASSIFICATION)
    page = open_page(qtbot, state, bridge)
    assert page.catalog.open_local(folder)  # a Hugging Face folder becomes the model
    assert (state.config.model.name, state.config.model.source) == (str(folder.resolve()), "huggingface")
    wait_idle(qtbot, page)
    tree = page.freezing.layer_tree
    assert {
        "bert",
        "bert.embeddings",
        "bert.encoder.layer.0",
        "bert.encoder.layer.1",
        "bert.pooler",
        "classifier",
    } <= set(tree.module_names())
    assert tree.check_state("classifier") == Qt.CheckState.Checked  # head-only by default
    assert tree.check_state("bert") == Qt.CheckState.Unchecked

    page.freezing.unfreeze_last(1)
    assert tree.check_state("bert.encoder.layer.1") == Qt.CheckState.Checked
    assert tree.check_state("bert.pooler") == Qt.CheckState.Checked  # the tail after the last block trains too
    assert tree.check_state("bert.encoder.layer.0") == Qt.CheckState.Unchecked
    assert tree.check_state("bert") == Qt.CheckState.PartiallyChecked
    full_last_n = page.trainable_count()[0]

    assert page.lora_box.isEnabled()
    page.lora_box.setChecked(True)
    assert state.config.model.lora.enabled
    qtbot.waitUntil(lambda: any(n.startswith("base_model.model.") for n in tree.module_names()), timeout=60000)
    wait_idle(qtbot, page)
    assert not page.freezing.head_only_button.isEnabled()  # with LoRA the adapters train, not a strategy
    assert 0 < page.trainable_count()[0] < full_last_n
    assert "LoRA" in page.freezing.strategy_label.text()


def test_catalog_lists_models_for_the_task_and_search_filters_them(qtbot, resnet_state, bridge, tmp_path):
    import os

    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    assert os.environ["TORCH_HOME"] == str(tmp_path / "torch-home")
    hub.mkdir(parents=True)
    (hub / "resnet18-f37072fd.pth").write_bytes(b"")  # the cached-weights badge only looks for the file
    page = open_page(qtbot, resnet_state, bridge)
    wait_idle(qtbot, page)
    names = page.catalog.visible_names()
    assert "resnet18" in names and "bert-base-uncased" not in names
    badges = {
        page.catalog.model.item(r, 0).text(): page.catalog.model.item(r, 5).text()
        for r in range(page.catalog.model.rowCount())
    }
    assert badges["resnet18"] == "● cached" and badges["resnet34"] == "↓ download"

    qtbot.keyClicks(page.catalog.search, "mobile")
    assert page.catalog.visible_names() == ["mobilenet_v3_small", "mobilenet_v3_large"]
    page.catalog.search.clear()
    resnet_state.set_value("task", "kind", TaskKind.TEXT_CLASSIFICATION)
    assert "bert-base-uncased" in page.catalog.visible_names()
    assert "resnet18" not in page.catalog.visible_names()
    resnet_state.set_value("task", "kind", TaskKind.IMAGE_CLASSIFICATION)

    row = page.catalog.visible_names().index("resnet34")
    page.catalog.table.setCurrentIndex(page.catalog.filter.index(row, 0))
    assert (resnet_state.config.model.name, resnet_state.config.model.source) == ("resnet34", "torchvision")
    qtbot.waitUntil(lambda: page.trainable_count()[1] == 21_284_672 + fc(2), timeout=60000)
    wait_idle(qtbot, page)


def test_offline_load_error_is_said_once_beside_the_layers_with_its_ways_out(qtbot, state, bridge):
    page = ModelPage(state, bridge)  # pretrained resnet18 with no cached weights and no network
    qtbot.addWidget(page)
    dialogs = []
    page.error.connect(lambda *args: dialogs.append(args))
    page.show()
    qtbot.waitUntil(lambda: page.freezing.error_frame.isVisible(), timeout=60000)
    wait_idle(qtbot, page)
    assert "cannot be downloaded" in page.freezing.error_label.text()
    assert page.freezing.open_local_button.isVisible() and page.freezing.retry_button.isVisible()
    assert dialogs == []  # inline only: no error dialog on top of the same words
    assert not page.freezing.layer_tree.loaded
    assert state.model_ready is False and "cannot be downloaded" in state.model_reason

    state.set_value("model", "allow_random_init", True)  # the way out the message names
    qtbot.waitUntil(lambda: page.freezing.layer_tree.loaded, timeout=60000)
    wait_idle(qtbot, page)
    assert not page.freezing.error_frame.isVisible()
    assert "random weights" in page.freezing.warnings_label.text()
    assert state.model_ready is True


def test_a_weights_file_sets_weights_path_and_a_plain_folder_is_refused(qtbot, resnet_state, bridge, tmp_path):
    page = open_page(qtbot, resnet_state, bridge)
    weights = tmp_path / "mine.safetensors"
    weights.write_bytes(b"x")
    assert page.catalog.open_local(weights)
    assert resnet_state.config.model.weights_path == str(weights.resolve())
    assert page.catalog.clear_weights_button.isVisibleTo(page)
    (tmp_path / "empty").mkdir()
    assert not page.catalog.open_local(tmp_path / "empty")
    assert page.freezing.error_frame.isVisible() and "no config.json" in page.freezing.error_label.text()
    qtbot.mouseClick(page.catalog.clear_weights_button, Qt.MouseButton.LeftButton)
    assert resnet_state.config.model.weights_path == ""
    wait_idle(qtbot, page)


def test_a_hidden_page_rebuilds_the_tree_only_when_shown_again(qtbot, resnet_state, bridge):
    page = open_page(qtbot, resnet_state, bridge)
    wait_idle(qtbot, page)
    page.hide()
    resnet_state.set_value("model", "name", "resnet34")
    qtbot.wait(TREE_WAIT_MS)
    assert not page.tree_loading and page.trainable_count()[1] == RESNET18_BACKBONE + fc(2)
    page.show()
    page.on_shown()  # as the main window does when the page comes up
    qtbot.waitUntil(lambda: page.trainable_count()[1] == 21_284_672 + fc(2), timeout=60000)
    wait_idle(qtbot, page)
