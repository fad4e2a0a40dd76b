"""The "Copy launch command" dialog: the torchrun line that trains the current config on several GPUs or
machines (core/distributed/launch.py builds it), with the config saved where every machine can read it."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.config import RunConfig
from finetune_gui.core.distributed.launch import DEFAULT_PORT, LaunchError, command_for, visible_gpu_count
from finetune_gui.core.runs import snapshot_config
from finetune_gui.files import atomic_write_text


def launch_config_path(output_dir: Path, config: RunConfig) -> Path:
    """Where the launch config is saved: a new file in the runs folder's `launch/` (never an existing one)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = output_dir / "launch" / f"{config.name or 'run'}-{stamp}"
    path, n = base.with_suffix(".toml"), 1
    while path.exists():
        n += 1
        path = base.parent / f"{base.name}-{n}.toml"
    return path


class LaunchCommandDialog(QDialog):
    """Machines, GPUs per machine and the meeting point in; the command to copy out."""

    def __init__(self, config: RunConfig, output_dir: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Launch command")
        self.config, self.output_dir = config, output_dir.resolve()
        self.config_path = launch_config_path(self.output_dir, config)
        self.nodes = QSpinBox(minimum=1, maximum=4096, value=1)
        self.nodes.setObjectName("launch-nodes")
        self.gpus = QSpinBox(minimum=1, maximum=64, value=visible_gpu_count() or 8)
        self.gpus.setObjectName("launch-gpus")
        self.master = QLineEdit(f"node1:{DEFAULT_PORT}")
        self.master.setObjectName("launch-master")
        self.master.setToolTip("The first machine's host name or IP address, and a port the others can reach")
        self.command = QPlainTextEdit(readOnly=True)
        self.command.setObjectName("launch-command")
        self.note = QLabel(wordWrap=True)
        form = QFormLayout()
        form.addRow("Machines", self.nodes)
        form.addRow("GPUs per machine", self.gpus)
        form.addRow("First machine (host:port)", self.master)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setObjectName("launch-copy")
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.command)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        for signal in (self.nodes.valueChanged, self.gpus.valueChanged, self.master.textChanged):
            signal.connect(self.refresh)
        self.resize(720, 320)
        self.refresh()

    def text(self) -> str:
        return command_for(str(self.config_path), self.nodes.value(), self.gpus.value(), self.master.text(),
                           str(self.output_dir))  # fmt: skip

    def refresh(self) -> None:
        self.master.setEnabled(self.nodes.value() > 1)
        try:
            self.command.setPlainText(self.text())
        except LaunchError as e:
            self.command.setPlainText("")
            self.note.setText(str(e))
            self.copy_button.setEnabled(False)
            return
        where = "on the machine with the GPUs" if self.nodes.value() == 1 else "on every machine, the same line"
        self.note.setText(
            f"Run it {where}, in the Python environment finetune-gui is installed in. Copy saves the config to "
            f"{self.config_path}; the data, that file and the runs folder must be at the same paths on every "
            "machine (docs/distributed.md)."
        )
        self.copy_button.setEnabled(True)

    def copy(self) -> None:
        """Save the config (a new file) and put the command on the clipboard."""
        text = self.text()
        try:
            self.config_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.config_path, snapshot_config(self.config).to_toml())
        except OSError as e:
            self.note.setText(f"The config could not be saved to {self.config_path}: {e.strerror or e}")
            return
        QApplication.clipboard().setText(text)
        self.note.setText(f"Copied. The config is saved to {self.config_path}.")
