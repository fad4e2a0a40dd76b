"""A scrollable grid of thumbnails in captioned rows (class → its images, sample → its augmented versions).

Workers hand over plain RGB bytes (`rgb_of`), never Qt or torch objects; the grid makes the QImages on the
main thread.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

RgbImage = tuple[bytes, int, int]  # packed 8-bit RGB rows, width, height
Cell = tuple[RgbImage | QImage, str]  # an image and its caption (may be "")


def rgb_of(image: Any, max_side: int | None = None) -> RgbImage:
    """A PIL image as RGB bytes, shrunk to max_side if given. Pure Pillow: safe to call in a worker."""
    image = image.convert("RGB") if image.mode != "RGB" else image
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    return image.tobytes(), image.width, image.height


def to_qimage(rgb: RgbImage) -> QImage:
    data, w, h = rgb
    return QImage(data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # copy: own the pixels


class ImageGrid(QScrollArea):
    """Rows of thumbnails, each row with a caption on its left. Call set_rows on the main thread."""

    def __init__(self, cell_size: int = 96, caption_width: int = 110, parent: QWidget | None = None):
        super().__init__(parent)
        self.cell_size, self.caption_width = cell_size, caption_width
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self._inner = QWidget()
        self._outer = QVBoxLayout(self._inner)
        self._outer.setContentsMargins(0, 0, 0, 0)
        self._message = QLabel()
        self._message.setWordWrap(True)
        self._message.setObjectName("gridMessage")
        self._message.hide()
        self._outer.addWidget(self._message)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(8)
        self._outer.addWidget(self._grid_host, 0, Qt.AlignmentFlag.AlignLeft)
        self._outer.addStretch(1)
        self.setWidget(self._inner)
        self._count = 0

    def image_count(self) -> int:
        """How many thumbnails are shown."""
        return self._count

    def row_captions(self) -> list[str]:
        captions = []
        for r in range(self._grid.rowCount()):
            item = self._grid.itemAtPosition(r, 0)
            if item is not None and isinstance(item.widget(), QLabel):
                captions.append(item.widget().text())
        return captions

    def clear(self) -> None:
        while self._grid.count():
            widget = self._grid.takeAt(0).widget()
            if widget is not None:
                widget.setParent(None)
                widget.deleteLater()
        self._count = 0

    def set_message(self, text: str) -> None:
        """A line above the grid (e.g. 'loading…' or why there is nothing to show); '' hides it."""
        self._message.setText(text)
        self._message.setVisible(bool(text))

    def set_rows(self, rows: list[tuple[str, list[Cell]]]) -> None:
        self.clear()
        for r, (caption, cells) in enumerate(rows):
            head = QLabel(caption)
            head.setWordWrap(True)
            head.setFixedWidth(self.caption_width)
            head.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            head.setToolTip(caption)
            self._grid.addWidget(head, r, 0)
            for c, (image, text) in enumerate(cells, start=1):
                self._grid.addWidget(self._cell(image, text), r, c)
                self._count += 1

    def _cell(self, image: RgbImage | QImage, text: str) -> QWidget:
        qimage = image if isinstance(image, QImage) else to_qimage(image)
        side = self.cell_size
        # small pictures (what a 32 px model sees) are enlarged without blurring, big ones shrunk smoothly
        mode = (
            Qt.TransformationMode.FastTransformation
            if max(qimage.width(), qimage.height()) * 2 <= side
            else Qt.TransformationMode.SmoothTransformation
        )
        pixmap = QPixmap.fromImage(qimage).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        picture = QLabel()
        picture.setObjectName("thumbnail")
        picture.setPixmap(pixmap)
        picture.setFixedSize(side, side)
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        picture.setToolTip(text)
        layout.addWidget(picture)
        if text:
            label = QLabel(picture.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, side))
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("font-size: 10px;")
            label.setToolTip(text)
            layout.addWidget(label)
        return box
