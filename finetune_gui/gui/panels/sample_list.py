"""A titled list of scored samples (a confusion-matrix cell, the highest losses), with thumbnails for images.

Each row says what the sample is and what the model made of it; image thumbnails are scaled in a worker.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

THUMB = 56


def make_thumbnails(paths: list[str], size: int) -> list[QImage]:
    """Scaled QImages (safe to make outside the GUI thread); a null image for a file that cannot be read."""
    out = []
    for p in paths:
        image = QImage(p)
        if not image.isNull():
            image = image.scaled(
                size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        out.append(image)
    return out


def describe(r, images: bool) -> str:
    """Two lines for a sample (a core.inference.SampleRecord): what it is, and what the model made of it."""
    if images:
        name = "/".join(Path(r.source).parts[-2:])  # class folder / file
    else:
        name = "“" + (r.source if len(r.source) <= 160 else r.source[:159] + "…") + "”"
    if r.pred_value is not None:
        return f"{name}\ntrue {r.true} · predicted {r.predicted} · error {abs(r.pred_value - r.true_value):.3g}"
    confidence = r.scores.get(r.predicted)
    conf = f" ({confidence:.0%})" if confidence is not None else ""
    return f"{name}\ntrue {r.true or '–'} → predicted {r.predicted or '–'}{conf} · loss {r.loss:.3g}"


class SampleList(QWidget):
    """`title` over `list` (a QListWidget named `name`); `fill` shows records, their thumbnails follow."""

    def __init__(self, bridge, name: str, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self._fills = 0  # thumbnails for an earlier filling are dropped
        self.title = QLabel(title)
        self.title.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName(name)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        self.list.setUniformItemSizes(False)
        v = QVBoxLayout(self)
        v.setContentsMargins(4, 4, 4, 4)
        v.addWidget(self.title)
        v.addWidget(self.list, 1)

    def clear(self) -> None:
        self.list.clear()

    def fill(self, records: list, images: bool) -> None:
        self.list.clear()
        for r in records:
            item = QListWidgetItem(describe(r, images))
            item.setToolTip(r.source)
            item.setData(Qt.ItemDataRole.UserRole, r.index)
            self.list.addItem(item)
        self._fills += 1
        if images and records:
            self.bridge.run_task(
                make_thumbnails,
                [r.source for r in records],
                THUMB,
                on_result=partial(self._set_icons, self._fills),
            )

    def _set_icons(self, fill: int, images: list[QImage]) -> None:
        if fill != self._fills or self.list.count() != len(images):
            return  # the list was refilled meanwhile
        for i, image in enumerate(images):
            if not image.isNull():
                self.list.item(i).setIcon(QIcon(QPixmap.fromImage(image)))
