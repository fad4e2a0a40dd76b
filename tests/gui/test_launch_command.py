"""'Copy launch command' on the Training setup page: the torchrun line for the current config on one machine or
several, copied with the config saved as a new file every machine can read, never over an existing one."""

from __future__ import annotations

import shlex

from PySide6.QtWidgets import QApplication

from finetune_gui.config import load_config


def open_dialog(window, tmp_path):
    window.state.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))
    window.state.set_value("train", "epochs", 7)
    window.show_page("setup")
    return window.pages["setup"].show_launch_command()


def test_one_machine_gets_a_standalone_command_and_the_copy_saves_the_config(window, tmp_path, qtbot):
    dialog = open_dialog(window, tmp_path)
    dialog.gpus.setValue(4)
    words = shlex.split(dialog.command.toPlainText())
    assert words[:4] == ["torchrun", "--standalone", "--nproc-per-node", "4"]
    assert words[4:7] == ["-m", "finetune_gui", "train"]
    assert not dialog.master.isEnabled(), "one machine needs no meeting point"
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == dialog.command.toPlainText()
    saved = load_config(words[7])
    assert saved.train.epochs == 7, "the command trains the config as it is on screen"


def test_several_machines_meet_at_the_first_machine_and_a_bad_address_is_said(window, tmp_path):
    dialog = open_dialog(window, tmp_path)
    dialog.nodes.setValue(3)
    dialog.gpus.setValue(8)
    dialog.master.setText("gpu-a:29411")
    words = shlex.split(dialog.command.toPlainText())
    assert words[:10] == ["torchrun", "--nnodes", "3", "--nproc-per-node", "8", "--rdzv-backend", "c10d",
                          "--rdzv-endpoint", "gpu-a:29411", "--rdzv-id"]  # fmt: skip
    dialog.master.setText("gpu-a:99999")
    assert not dialog.copy_button.isEnabled()
    assert "port" in dialog.note.text().lower()
    assert dialog.note.text().startswith("First machine:"), "the window names its own field, not the CLI's option"


def test_copying_twice_never_overwrites_the_first_saved_config(window, tmp_path):
    first = open_dialog(window, tmp_path)
    first.copy_button.click()
    second = window.pages["setup"].show_launch_command()
    assert second.config_path != first.config_path
    second.copy_button.click()
    assert first.config_path.is_file() and second.config_path.is_file()
