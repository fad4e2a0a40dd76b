"""The image input of the Try it page: the picture being predicted (or an invitation to drop one) and a
"Choose image…" button with the chosen file's name."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

#: A cheap check of a dropped file's name; the predictor itself reads the image with Pillow.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class DropArea(QLabel):
    """Shows the image being predicted, or an invitation to drop one (the page handles the drop)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tryit-drop")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setMinimumSize(280, 280)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet(
            "QLabel#tryit-drop { border: 2px dashed palette(mid); border-radius: 8px; color: palette(dark); }"
        )
        self.invite()

    def invite(self) -> None:
        self.clear()
        self.setText("Drop an image here\nor use “Choose image…”")


class ImageInput(QWidget):
    """The drop area over a "Choose image…" row; `chosen` carries the path picked in the file dialog."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.drop_area = DropArea()
        self.choose_button = QPushButton("Choose image…")
        self.choose_button.setObjectName("tryit-choose")
        self.choose_button.clicked.connect(self.choose_image)
        self.path_label = QLabel("")
        self.path_label.setObjectName("tryit-image-path")
        self.path_label.setStyleSheet("color: palette(dark);")
        row = QHBoxLayout()
        row.addWidget(self.choose_button)
        row.addWidget(self.path_label, 1)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.drop_area, 1)
        v.addLayout(row)

    def choose_image(self) -> None:
        start = str(Path(self.path_label.toolTip()).parent) if self.path_label.toolTip() else ""
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose an image", start, "Images (" + " ".join("*" + s for s in IMAGE_SUFFIXES) + ")"
        )
        if path:
            self.chosen.emit(path)

    def set_path(self, path: str) -> None:
        self.path_label.setText(Path(path).name)
        self.path_label.setToolTip(str(path))

    def clear(self) -> None:
        self.drop_area.invite()
        self.path_label.setText("")
