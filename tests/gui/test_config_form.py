"""The generated config forms: editors from the config model, values into AppState, errors beside the field."""

from __future__ import annotations

from finetune_gui.gui.widgets.config_form import ConfigForm


def test_editors_show_values_compactly_and_accept_scientific_notation(qtbot, state):
    train = ConfigForm(state, "train")
    data = ConfigForm(state, "data")
    qtbot.addWidget(train)
    qtbot.addWidget(data)
    assert data.editors["val_fraction"].text() == "0.15"
    lr = train.editors["lr"]
    lr.lineEdit().selectAll()
    qtbot.keyClicks(lr.lineEdit(), "3e-5")
    lr.interpretText()
    assert state.config.train.lr == 3e-5
    assert lr.text() == "3e-05"


def test_every_field_has_a_tooltip_from_its_description(qtbot, state):
    form = ConfigForm(state, "train")
    qtbot.addWidget(form)
    assert form.editors
    for key, editor in form.editors.items():
        assert editor.toolTip().strip(), key


def test_a_loaded_config_refreshes_the_editors(qtbot, state):
    form = ConfigForm(state, "train")
    qtbot.addWidget(form)
    new = state.config.model_copy(deep=True)
    new.train.epochs = 17
    state.set_config(new)
    assert form.editors["epochs"].value() == 17


def test_an_empty_worker_count_or_decode_budget_reads_auto_and_a_number_overrides_it(qtbot, state):
    form = ConfigForm(state, "data")
    qtbot.addWidget(form)
    workers, budget = form.editors["num_workers"], form.editors["decode_memory_mb"]
    assert state.config.data.num_workers is None and workers.text() == "auto"
    assert state.config.data.decode_memory_mb is None and budget.text() == "auto"
    assert form.editors["max_samples"].text() == "off"  # other empty numbers still mean off
    workers.setValue(2)
    assert state.config.data.num_workers == 2
    workers.setValue(workers.minimum())
    assert state.config.data.num_workers is None
    form.editors["decode_cache"].setCurrentText("off")
    assert state.config.data.decode_cache == "off"
