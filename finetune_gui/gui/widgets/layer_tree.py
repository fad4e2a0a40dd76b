"""The model's layers as a tree: module, type, parameter count and a trainable checkbox per module.

The tree shows plain data (core.models.freezing.ModuleNode, built in a worker); which parameters train
comes from a plan (node name -> trainable parameter count) that the page works out from the config.
Ticking or unticking a box only emits `trainable_toggled`; the page turns that into the freeze config.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QHeaderView, QLabel, QTreeView, QVBoxLayout, QWidget

COLUMNS = ("Module", "Type", "Parameters", "Trainable")
NAME_ROLE = Qt.ItemDataRole.UserRole + 1
MODULE, TYPE, PARAMS, TRAINABLE = range(4)


def format_count(n: int) -> str:
    return f"{n:,}"


def trainable_summary(trainable: int, total: int) -> str:
    """'Trainable: X of Y parameters (Z %)'."""
    share = 100.0 * trainable / total if total else 0.0
    pct = f"{share:.2f}" if 0 < share < 1 else f"{share:.1f}"
    return f"Trainable: {format_count(trainable)} of {format_count(total)} parameters ({pct} %)"


class LayerTree(QWidget):
    """QTreeView over a QStandardItemModel; modules without parameters are left out."""

    trainable_toggled = Signal(str, bool)  # module name, whether it should train

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.view = QTreeView()
        self.view.setObjectName("layerTree")
        self.view.setModel(self.model)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setEditTriggers(QTreeView.EditTrigger.NoEditTriggers)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(MODULE, QHeaderView.ResizeMode.Stretch)
        for col in (TYPE, PARAMS, TRAINABLE):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.total_label = QLabel("Trainable: — (no model loaded)")
        self.total_label.setObjectName("trainableTotal")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.total_label)
        self._items: dict[str, QStandardItem] = {}  # module name -> its Trainable cell
        self._nodes: dict[str, object] = {}
        self._root = None
        self._updating = False
        self.model.itemChanged.connect(self._item_changed)

    # ------------------------------------------------------------ content
    def set_tree(self, root, head: list[str] = (), blocks: list[str] = ()) -> None:
        """Show a ModuleNode tree (the root itself is not a row; its children are the top level)."""
        self._updating = True
        try:
            self.model.removeRows(0, self.model.rowCount())
            self._items.clear()
            self._nodes = {n.name: n for n in root.walk()}
            self._root = root
            head, blocks = list(head), list(blocks)
            bold = QFont(self.font())
            bold.setBold(True)

            def add(parent: QStandardItem, node) -> None:
                name_item = QStandardItem(node.short_name)
                name_item.setData(node.name, NAME_ROLE)
                tip = node.name
                if node.name in head:
                    name_item.setFont(bold)
                    name_item.setText(f"{node.short_name}  · head")
                    tip += "\nThe task head: new for this task, trains in every strategy."
                elif node.name in blocks:
                    i = blocks.index(node.name)
                    name_item.setText(f"{node.short_name}  · block {i + 1}/{len(blocks)}")
                    tip += (
                        f"\n'Unfreeze last N' counts blocks from the end; this is block {len(blocks) - i} from the end."
                    )
                name_item.setToolTip(tip)
                type_item = QStandardItem(node.type_name)
                params_item = QStandardItem(format_count(node.num_params))
                params_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                check = QStandardItem()
                check.setData(node.name, NAME_ROLE)
                check.setFlags(
                    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable
                )
                check.setCheckState(Qt.CheckState.Checked)
                check.setToolTip("Ticked: these weights train. Unticked: they stay fixed.")
                for item in (name_item, type_item, params_item):
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                parent.appendRow([name_item, type_item, params_item, check])
                self._items[node.name] = check
                for child in node.children:
                    if child.num_params > 0:
                        add(name_item, child)

            top = self.model.invisibleRootItem()
            for child in root.children:
                if child.num_params > 0:
                    add(top, child)
        finally:
            self._updating = False
        self._expand_to(blocks + head)
        self.set_plan({n: node.num_params for n, node in self._nodes.items()})

    def _expand_to(self, names: list[str]) -> None:
        """Open the containers down to the blocks and the head, so they are visible rows."""
        self.view.collapseAll()
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts)):
                item = self._items.get(".".join(parts[:i]))
                if item is not None:
                    index = item.index().siblingAtColumn(MODULE)
                    self.view.expand(index)

    def clear(self, message: str = "Trainable: — (no model loaded)") -> None:
        self._updating = True
        try:
            self.model.removeRows(0, self.model.rowCount())
            self._items.clear()
            self._nodes, self._root = {}, None
        finally:
            self._updating = False
        self.total_label.setText(message)

    @property
    def loaded(self) -> bool:
        return self._root is not None

    def module_names(self) -> list[str]:
        """Names of the modules shown, in tree order."""
        return list(self._items)

    def set_plan(self, plan: dict[str, int]) -> None:
        """Tick the boxes and update the total from trainable counts per module name."""
        if self._root is None:
            return
        self._updating = True
        try:
            for name, item in self._items.items():
                total = self._nodes[name].num_params
                trainable = plan.get(name, 0)
                if trainable >= total:
                    state, text = Qt.CheckState.Checked, ""
                elif trainable == 0:
                    state, text = Qt.CheckState.Unchecked, ""
                else:
                    state, text = Qt.CheckState.PartiallyChecked, f"{format_count(trainable)}"
                if item.checkState() != state:
                    item.setCheckState(state)
                if item.text() != text:
                    item.setText(text)
        finally:
            self._updating = False
        trainable, total = plan.get("", 0), self._root.num_params
        text = trainable_summary(trainable, total)
        if trainable == 0:
            text += " — nothing would train; tick at least one module"
        self.total_label.setText(text)
        self.total_label.setStyleSheet("color: #c0392b;" if trainable == 0 else "")

    def params_of(self, name: str) -> int:
        """Parameters of a module, its children's included."""
        return self._nodes[name].num_params

    def check_state(self, name: str) -> Qt.CheckState:
        return self._items[name].checkState()

    def set_checked(self, name: str, trainable: bool) -> None:
        """What a click on the box does (for keyboard use and tests)."""
        self._items[name].setCheckState(Qt.CheckState.Checked if trainable else Qt.CheckState.Unchecked)

    def _item_changed(self, item: QStandardItem) -> None:
        if self._updating or item.column() != TRAINABLE:
            return
        name = item.data(NAME_ROLE)
        self.trainable_toggled.emit(name, item.checkState() != Qt.CheckState.Unchecked)
