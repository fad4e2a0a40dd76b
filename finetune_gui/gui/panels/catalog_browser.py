"""The model page's catalog browser: search the curated backbones for the task, see their size, licence and
whether their weights are here, pick one, or open a local Hugging Face folder or weights file instead.

The catalog (it imports torchvision) is read in a worker; only plain dicts reach the GUI thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.widgets.config_form import ConfigForm
from finetune_gui.paths import expand_user

CATALOG_REFRESH_S = 60  # badges are read again when the page shows after this long (a run may have downloaded)
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
CATALOG_COLUMNS = ("Name", "Family", "Params", "Input", "Licence", "Status")
BADGES = {  # availability -> (text, colour)
    "cached": ("● cached", "#2e8b57"),
    "local": ("■ local", "#2a6fb0"),
    "needs-download": ("↓ download", "#c77c02"),
}
BADGE_TIPS = {
    "cached": "The pretrained weights are on this computer.",
    "local": "The model is a folder on this computer.",
    "needs-download": "The weights are not on this computer yet; training downloads them (needs a network).",
}


def catalog_job(opened_folders: list[str] | None = None) -> dict[str, Any]:
    """{"rows": every catalog entry as a plain dict with whether its weights are here, models on this computer
    first (the catalog's cached ones, the Hugging Face cache's others, folders opened before), "offline": why
    nothing can be downloaded now, or None}. Reads the caches on disk and tries the network once."""
    from finetune_gui.core.models.catalog import availability, entries
    from finetune_gui.core.models.network import hub_endpoint, why_no_downloads
    from finetune_gui.core.models.on_disk import hub_cache_entries, opened_folder_entries

    rows = [
        {
            "name": e.name,
            "family": e.family,
            "tasks": [t.value for t in e.tasks],
            "params_m": e.params_m,
            "input_size": e.input_size,
            "licence": e.licence,
            "description": e.description,
            "badge": availability(e),
        }
        for e in [*opened_folder_entries(opened_folders or []), *entries(), *hub_cache_entries()]
    ]
    rows.sort(key=lambda row: row["badge"] == "needs-download")  # stable: on disk first, each group in order
    return {"rows": rows, "offline": why_no_downloads(hub_endpoint())}


def short_licence(text: str) -> str:
    return text.split(" (", 1)[0]


class CatalogFilter(QSortFilterProxyModel):
    """Rows for the current task kind whose name, family, licence or description contain the search text."""

    TASKS_ROLE = Qt.ItemDataRole.UserRole + 2
    SEARCH_ROLE = Qt.ItemDataRole.UserRole + 3

    def __init__(self, parent=None):
        super().__init__(parent)
        self.task = ""
        self.text = ""

    def set_task(self, task: str) -> None:
        self._refilter(task=task)

    def set_text(self, text: str) -> None:
        self._refilter(text=text.strip().lower())

    def _refilter(self, **values: str) -> None:
        modern = hasattr(self, "beginFilterChange")  # Qt >= 6.10, where invalidateFilter is deprecated
        if modern:
            self.beginFilterChange()
        for name, value in values.items():
            setattr(self, name, value)
        if modern:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent) -> bool:
        index = self.sourceModel().index(row, 0, parent)
        if self.task and self.task not in (index.data(self.TASKS_ROLE) or []):
            return False
        return not self.text or all(word in (index.data(self.SEARCH_ROLE) or "") for word in self.text.split())


def catalog_items(row: dict[str, Any]) -> list[QStandardItem]:
    """The table cells of one catalog entry."""
    text_model = row["family"] == "huggingface"
    name = QStandardItem(row["name"])
    name.setData(row["tasks"], CatalogFilter.TASKS_ROLE)
    name.setData(
        " ".join([row["name"], row["family"], row["licence"], row["description"]]).lower(), CatalogFilter.SEARCH_ROLE
    )
    name.setToolTip(row["description"])
    badge_text, colour = BADGES.get(row["badge"], (row["badge"], "#666666"))
    badge = QStandardItem(badge_text)
    badge.setForeground(QColor(colour))
    badge.setToolTip(BADGE_TIPS.get(row["badge"], ""))
    params = QStandardItem(f"{row['params_m']:.1f} M" if row["params_m"] else "—")
    params.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    size = QStandardItem(f"{row['input_size']} {'tok' if text_model else 'px'}")
    size.setToolTip(f"{row['input_size']} {'tokens per text' if text_model else 'pixels per side'}")
    size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    licence = QStandardItem(short_licence(row["licence"]))
    licence.setToolTip(row["licence"])
    family = QStandardItem(row["family"])
    return [name, family, params, size, licence, badge]


class CatalogBrowser(QGroupBox):
    """The "Catalog" box. Choosing a row or a local folder/file edits config.model through `state`.

    `problem` carries a model that cannot be used (the page shows it inline); `error` a catalog that cannot be read.
    """

    problem = Signal(str, str, str)  # error type, message, details
    error = Signal(str, str, str)

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__("Catalog", parent)
        self.state, self.bridge = state, bridge
        self.rows: list[dict[str, Any]] = []
        self.busy = False
        self.offline: str | None = None
        self._loaded_at = 0.0
        self._selecting = False
        self.search = QLineEdit()
        self.search.setObjectName("catalogSearch")
        self.search.setPlaceholderText("Search by name, family, licence or description…")
        self.search.setClearButtonEnabled(True)
        self.model = QStandardItemModel(0, len(CATALOG_COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(CATALOG_COLUMNS))
        self.filter = CatalogFilter(self)
        self.filter.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("catalogTable")
        self.table.setModel(self.filter)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.search.textChanged.connect(self.filter.set_text)
        self.status = QLabel("Loading the catalog…")
        self.status.setObjectName("catalogStatus")
        self.status.setStyleSheet("color: palette(dark);")
        self.status.setWordWrap(True)

        self.open_local_button = QToolButton()
        self.open_local_button.setObjectName("openLocal")
        self.open_local_button.setText("Open a local folder or weights file…")
        self.open_local_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.open_local_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        menu = QMenu(self.open_local_button)
        menu.addAction("Hugging Face model folder…", self.choose_folder)
        menu.addAction("Weights file (.safetensors, .pth)…", self._choose_weights_file)
        self.open_local_button.setMenu(menu)
        self.weights_file_label = QLabel()
        self.weights_file_label.setObjectName("weightsFile")
        self.weights_file_label.setWordWrap(True)
        self.clear_weights_button = QPushButton("Clear")
        self.clear_weights_button.setObjectName("clearWeightsFile")
        self.clear_weights_button.setToolTip("Start from the model's own pretrained weights again")
        self.clear_weights_button.clicked.connect(lambda: self.state.set_value("model", "weights_path", ""))
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.open_local_button)
        weights_row.addWidget(self.weights_file_label, 1)
        weights_row.addWidget(self.clear_weights_button)
        self.weights_form = ConfigForm(
            self.state, "model", ["pretrained", "weights", "allow_random_init", "trust_remote_code"]
        )
        self.weights_form.layout().setContentsMargins(0, 0, 0, 0)

        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addLayout(weights_row)
        layout.addWidget(self.weights_form)

    # ------------------------------------------------------------ the catalog
    def refresh_if_stale(self) -> None:
        """Read the catalog if it was never read, or its badges are older than CATALOG_REFRESH_S."""
        if time.monotonic() - self._loaded_at > CATALOG_REFRESH_S or not self.rows:
            self.refresh()

    def refresh(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.bridge.run_task(
            catalog_job, list(self.state.recent_model_folders), on_result=self._loaded, on_error=self._failed
        )

    def _loaded(self, result: dict[str, Any]) -> None:
        self.busy = False
        self._loaded_at = time.monotonic()
        self.rows = rows = result["rows"]
        self.offline = result["offline"]
        self._selecting = True
        try:
            self.model.removeRows(0, self.model.rowCount())
            for row in rows:
                self.model.appendRow(catalog_items(row))
        finally:
            self._selecting = False
        self._update_status()
        self._select_current()

    def _failed(self, error_type: str, message: str, details: str) -> None:
        self.busy = False
        self.status.setText(f"The catalog could not be read: {message}")
        self.error.emit(error_type, message, details)

    def set_task(self, task: str) -> None:
        self.filter.set_task(task)
        self._update_status()

    def _update_status(self) -> None:
        if self.busy and not self.rows:
            return
        shown = self.filter.rowCount()
        if self.offline:
            here = sum(1 for r in range(shown) if self.filter.index(r, 5).data() != BADGES["needs-download"][0])
            found = (
                f"{here} of the {shown} models for this task {'is' if here == 1 else 'are'} on this computer and "
                "listed first; those marked ↓ download cannot be fetched now."
                if here
                else f"none of the {shown} models for this task is on this computer."
            )
            self.status.setText(
                f"<b>Offline</b> ({self.offline}): {found} A model folder copied here works too (open it below)."
            )
        elif shown:
            self.status.setText(
                f"{shown} models for this task, those on this computer first. Any other torchvision name, "
                "Hugging Face id or local folder works too (open it below)."
            )
        else:
            self.status.setText("No catalog model for this task; open a local model below.")

    def visible_names(self) -> list[str]:
        """Names of the catalog rows the search and the task let through, in order."""
        return [self.filter.index(r, 0).data() for r in range(self.filter.rowCount())]

    def _select_current(self) -> None:
        name = self.state.config.model.name
        self._selecting = True
        try:
            for r in range(self.filter.rowCount()):
                if self.filter.index(r, 0).data() == name:
                    self.table.selectRow(r)
                    self.table.scrollTo(self.filter.index(r, 0))
                    return
            self.table.clearSelection()
        finally:
            self._selecting = False

    def _row_changed(self, current, _previous) -> None:
        if self._selecting or not current.isValid():
            return
        self.choose_model(current.siblingAtColumn(0).data(), current.siblingAtColumn(1).data())

    def choose_model(self, name: str, source: str) -> None:
        """Make `name` (from `source`: torchvision, huggingface or auto) the model, with its own weights."""
        mc = self.state.config.model
        if mc.name == name and mc.source == source and not mc.weights_path:
            return
        renamed = mc.name != name
        self.state.set_value("model", "name", name)
        self.state.set_value("model", "source", source)
        if mc.weights_path:
            self.state.set_value("model", "weights_path", "")  # a weights file belongs to the old model
        if source == "torchvision" and mc.weights != "DEFAULT":
            self.state.set_value("model", "weights", "DEFAULT")
        if renamed and mc.freeze == "modules":  # module names belong to the old model
            self.state.set_value("model", "frozen_modules", [])
            self.state.set_value("model", "freeze", "head-only")
        if source != "huggingface" and mc.lora.enabled:
            self.state.set_value("model", "lora.enabled", False)

    # ------------------------------------------------------------ local folders and files
    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a Hugging Face model folder", self.start_folder())
        if path:
            self.open_local(path)

    def _choose_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a weights file", self.start_folder(), "State dicts (*.safetensors *.pth *.pt)"
        )
        if path:
            self.open_local(path)

    def start_folder(self) -> str:
        """Where the file dialogs open: beside the model or weights file in use, else the folder a model was
        last opened from, else beside the data."""
        config = self.state.config
        mc = config.model
        candidates = [mc.weights_path and config.resolve(mc.weights_path).parent]
        if Path(mc.name).is_absolute():
            candidates.append(Path(mc.name).parent)
        candidates += [Path(p).parent for p in self.state.recent_model_folders[:1]]
        if config.data.path:
            candidates.append(config.resolve(config.data.path).parent)
        return next((str(c) for c in candidates if c and c.is_dir()), "")

    def open_local(self, path: str | Path) -> bool:
        """A model folder (config.json inside) becomes the model; a .safetensors/.pth file its starting weights."""
        p = expand_user(path)
        if p.is_dir():
            if not (p / "config.json").is_file():
                self.problem.emit(
                    "ModelLoadError",
                    f"{p} is not a Hugging Face model folder: it has no config.json. "
                    "Choose the folder that save_pretrained wrote, or a .safetensors/.pth weights file.",
                    "",
                )
                return False
            self.choose_model(str(p.resolve()), "huggingface")
            self.state.remember_model_folder(str(p.resolve()))
            self.refresh()  # the folder joins the models on this computer
            return True
        if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES:
            self.state.set_value("model", "weights_path", str(p.resolve()))
            return True
        self.problem.emit("ModelLoadError", f"{p} is neither a model folder nor a .safetensors/.pth weights file.", "")
        return False

    # ------------------------------------------------------------ following the config
    def show_model(self) -> None:
        """The weights file row and the selected row follow config.model."""
        mc = self.state.config.model
        if mc.weights_path:
            self.weights_file_label.setText(f"Weights file: {Path(mc.weights_path).name}")
            self.weights_file_label.setToolTip(mc.weights_path)
        else:
            self.weights_file_label.setText("")
            self.weights_file_label.setToolTip("")
        self.clear_weights_button.setVisible(bool(mc.weights_path))
        if self.rows:
            self._select_current()

    def set_huggingface(self, hf: bool) -> None:
        """torchvision weight names apply to other models; trust_remote_code to Hugging Face ones."""
        form = self.weights_form.layout()
        form.setRowVisible(self.weights_form.editors["weights"], not hf)
        form.setRowVisible(self.weights_form.editors["trust_remote_code"], hf)
