"""The augmentation page: the knobs, a live preview on real training images, and warnings where a choice hurts.

Previews are made in a worker (`core.data.augment.augment_preview`, Pillow images turned into RGB bytes) and
drawn on the main thread; a knob change regenerates them after a short pause, with the same seed so only the
knob's effect shows, and "Regenerate" draws new random versions.
"""

from __future__ import annotations

import html
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.config import TaskKind
from finetune_gui.gui.dialogs import is_expected
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.pages.data import run_in_worker
from finetune_gui.gui.widgets.config_form import ConfigForm
from finetune_gui.gui.widgets.image_grid import ImageGrid, rgb_of
from finetune_gui.gui.wording import reword

PREVIEW_DEBOUNCE_MS = 300
PREVIEW_SAMPLES = 4
PREVIEW_VERSIONS = 5
PREVIEW_SIDE = 88
FEW_SAMPLES = 100


def task_warnings(aug, kind: TaskKind, num_samples: int | None) -> list[str]:
    """Cautions that depend on the task and the amount of data (the engine's `warnings_for` covers the rest)."""
    w: list[str] = []
    mixing = aug.mixup_alpha > 0 or aug.cutmix_alpha > 0
    if mixing and kind != TaskKind.IMAGE_CLASSIFICATION:
        w.append(
            f"MixUp/CutMix are not used for {kind.value}: they only work for single-label classification. "
            "Set both to 0."
        )
    if kind == TaskKind.IMAGE_REGRESSION and aug.color_jitter > 0:
        w.append(
            "colour jitter changes brightness and contrast; when the number to predict depends on them, "
            "it makes the targets wrong. Set color_jitter to 0 unless the target ignores colour."
        )
    strong = [
        name
        for name, on in (
            ("auto-augment", aug.auto_augment != "none"),
            (f"rotation {aug.rotation:g}°", aug.rotation > 30),
            ("random erasing", aug.random_erasing > 0.25),
            ("strong colour jitter", aug.color_jitter > 0.4),
            ("MixUp/CutMix", mixing),
            ("small crops", aug.random_resized_crop and aug.crop_scale_min < 0.3),
        )
        if on
    ]
    if num_samples is not None and 0 < num_samples < FEW_SAMPLES and len(strong) >= 2:
        w.append(
            f"only {num_samples} images, with {', '.join(strong)}: this much augmentation can keep a model from "
            "learning from so few samples. Start mild, and add more only if it overfits."
        )
    return w


# ---------------------------------------------------------------- the worker job


def preview_job(
    config, kind: TaskKind, samples: list[tuple[str, str]] | None, n_samples: int, n_versions: int, seed: int, side: int
) -> dict:
    """Augmented versions of a few training images, as RGB bytes, and the engine's warnings for the knobs.

    `samples` ([(path, caption)]) are reused between calls; None picks them from the data (one per class).
    """
    from finetune_gui.core.data.augment import augment_preview, warnings_for
    from finetune_gui.core.data.image_files import load_rgb
    from finetune_gui.core.data.image_records import collect_images

    out: dict = {"warnings": warnings_for(config.augment), "rows": [], "samples": samples, "problem": ""}
    if samples is None:
        if not config.data.path:
            out["problem"] = "Choose image data on the Data page to see the augmentation on real pictures."
            return out
        out["samples"] = samples = _pick_samples(collect_images(config, kind, verify=False), kind, n_samples)
    size = config.data.image_size
    for i, (path, caption) in enumerate(samples):
        try:
            image = load_rgb(path)
        except Exception:  # noqa: BLE001 - an unreadable file is among the data page's problems
            continue
        cells = [(rgb_of(image, side), "original")]
        versions = augment_preview(image, config.augment, size, n_versions, seed * 1000 + i)
        cells += [(rgb_of(v, side), f"{size} px") for v in versions]
        out["rows"].append((f"{caption}\n{Path(path).name}", cells))
    if not out["rows"]:
        out["problem"] = "None of the sample images could be read; see the Problems on the Data page."
    return out


def _pick_samples(rec, kind: TaskKind, n: int) -> list[tuple[str, str]]:
    """n (path, caption) pairs: one per class in turn, or spread over the range of values for regression."""
    if not rec.paths:
        return []
    if kind == TaskKind.IMAGE_REGRESSION:
        ranked = sorted(zip(rec.paths, rec.targets), key=lambda pt: pt[1])
        picks = sorted({round(i * (len(ranked) - 1) / max(1, n - 1)) for i in range(n)})
        return [(ranked[i][0], f"value {ranked[i][1]:g}") for i in picks]
    by_class: dict[str, list[str]] = {}
    for path, target in zip(rec.paths, rec.targets):
        by_class.setdefault(", ".join(target) if isinstance(target, list) else str(target), []).append(path)
    picked: list[tuple[str, str]] = []
    while len(picked) < n and any(by_class.values()):
        for name in sorted(by_class):
            if by_class[name] and len(picked) < n:
                picked.append((by_class[name].pop(len(by_class[name]) // 2), name))  # not always file 000
    return picked


# ---------------------------------------------------------------- the page


class AugmentPage(Page):
    """Augmentation knobs with a live preview on real samples; for text tasks it says augmentation does not apply."""

    key = "augment"
    title = "Augmentation"

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.seed = 0
        self._gen = 0
        self._samples: list[tuple[str, str]] | None = None
        self._samples_key: tuple | None = None
        self._engine_warnings: list[str] = []
        self._dirty = True
        self._waiting = False
        self._timer = QTimer(self, singleShot=True, interval=PREVIEW_DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh_preview)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 6, 0)
        knobs = QGroupBox("Augmentation of the training images")
        self.form = ConfigForm(state, "augment")
        QVBoxLayout(knobs).addWidget(self.form)
        left_layout.addWidget(knobs)
        self.warnings_label = QLabel()
        self.warnings_label.setObjectName("augmentWarnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setTextFormat(Qt.TextFormat.RichText)
        self.warnings_label.setStyleSheet(
            "#augmentWarnings { color: #b9770e; border: 1px solid #e0a030; border-radius: 4px; padding: 6px; }"
        )
        left_layout.addWidget(self.warnings_label)
        left_layout.addStretch(1)
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QFrame.Shape.NoFrame)
        left_scroll.setWidget(left)
        left_scroll.setFixedWidth(390)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(6, 0, 0, 0)
        head = QHBoxLayout()
        self.caption = QLabel()
        self.caption.setObjectName("previewCaption")
        self.caption.setWordWrap(True)
        head.addWidget(self.caption, 1)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.setObjectName("regenerate")
        self.regenerate_button.setToolTip("Draw new random versions of the same images")
        self.regenerate_button.clicked.connect(self.regenerate)
        head.addWidget(self.regenerate_button)
        right_layout.addLayout(head)
        self.grid = ImageGrid(PREVIEW_SIDE, caption_width=100)
        self.grid.setObjectName("augmentPreview")
        right_layout.addWidget(self.grid, 1)
        self.text_notice = QLabel(
            "<h3>Augmentation applies to images only</h3>"
            "<p>Text classification, text regression and language-model tasks train on the text as it is, so the "
            "settings on this page are not used. Choose an image task on the Data page to use them.</p>"
        )
        self.text_notice.setObjectName("textNotice")
        self.text_notice.setWordWrap(True)
        self.text_notice.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        right_layout.addWidget(self.text_notice)

        layout = QHBoxLayout(self)
        layout.addWidget(left_scroll)
        layout.addWidget(right, 1)

        state.changed.connect(self._on_state_changed)
        state.scan_changed.connect(lambda _: self._show_warnings())
        self._show_mode()
        self._show_warnings()

    # ------------------------------------------------------------ following the config
    def _data_key(self) -> tuple:
        c = self.state.config
        d = c.data
        return (
            d.path,
            d.format,
            d.path_column,
            tuple(d.label_columns),
            d.label_separator,
            c.task.kind.value,
            str(c.base_dir),
        )

    def _on_state_changed(self, section: str) -> None:
        if section not in ("", "augment", "data", "task"):
            return
        if self._data_key() != self._samples_key:
            self._samples, self._samples_key = None, None
        self._show_mode()
        self._show_warnings()
        self._dirty = True
        if self.isVisible() and self.state.config.task.kind.is_image:
            self._timer.start()

    def _show_mode(self) -> None:
        is_image = self.state.config.task.kind.is_image
        self.grid.setVisible(is_image)
        self.regenerate_button.setVisible(is_image)
        self.caption.setVisible(is_image)
        self.text_notice.setVisible(not is_image)
        self.form.setEnabled(is_image)
        size = self.state.config.data.image_size
        self.caption.setText(
            f"<b>Preview</b>: {PREVIEW_VERSIONS} random versions of real training images, cut to "
            f"{size}×{size} px as the model gets them (before normalisation)."
        )

    def _show_warnings(self) -> None:
        kind = self.state.config.task.kind
        if not kind.is_image:
            self.warnings_label.hide()
            return
        scan = self.state.scan
        num = scan.num_samples if scan is not None else None
        items = list(dict.fromkeys(self._engine_warnings + task_warnings(self.state.config.augment, kind, num)))
        self.warnings_label.setText(
            "<b>⚠ Check these settings</b><ul style='margin-left: -20px'>"
            + "".join(f"<li>{html.escape(w[0].upper() + w[1:])}</li>" for w in items)
            + "</ul>"
        )
        self.warnings_label.setVisible(bool(items))

    def warnings(self) -> list[str]:
        """The cautions shown now (engine's and the page's)."""
        scan = self.state.scan
        num = scan.num_samples if scan is not None else None
        kind = self.state.config.task.kind
        if not kind.is_image:
            return []
        return list(dict.fromkeys(self._engine_warnings + task_warnings(self.state.config.augment, kind, num)))

    # ------------------------------------------------------------ previews
    @property
    def busy(self) -> bool:
        """True while a preview is pending or being made."""
        return self._timer.isActive() or self._waiting

    def regenerate(self) -> None:
        """New random versions of the same images."""
        self.seed += 1
        self.refresh_preview()

    def refresh_preview(self) -> None:
        self._timer.stop()
        config = self.state.config
        if not config.task.kind.is_image:
            return
        self._dirty = False
        self._gen += 1
        gen = self._gen
        snapshot = config.model_copy(deep=True).with_base_dir(config.base_dir)
        self._waiting = True
        if not self.grid.image_count():
            self.grid.set_message("Making previews…")
        self._samples_key = self._data_key()
        run_in_worker(
            self,
            preview_job,
            snapshot,
            config.task.kind,
            self._samples,
            PREVIEW_SAMPLES,
            PREVIEW_VERSIONS,
            self.seed,
            PREVIEW_SIDE,
            on_result=partial(self._preview_done, gen),
            on_error=partial(self._preview_failed, gen),
        )

    def _preview_done(self, gen: int, result: dict) -> None:
        if gen != self._gen:
            return
        self._waiting = False
        self._samples = result["samples"]
        self._engine_warnings = result["warnings"]
        self._show_warnings()
        self.grid.set_rows(result["rows"])
        self.grid.set_message(result["problem"])

    def _preview_failed(self, gen: int, error_type: str, message: str, details: str) -> None:
        if gen != self._gen:
            return
        self._waiting = False
        self._samples = None
        self.grid.clear()
        self.grid.set_message(f"No preview: {reword(message, self)}")
        if not is_expected(error_type):
            self.error.emit(error_type, message, details)

    def on_shown(self) -> None:
        if self._dirty and self.state.config.task.kind.is_image and not self._timer.isActive():
            self.refresh_preview()
