"""AppState: the one config the pages edit, with field-level messages instead of exceptions."""

from __future__ import annotations


def test_a_bad_value_comes_back_as_a_field_message_and_leaves_the_config(state):
    message = state.set_value("train", "lr", -1.0)
    assert message and "train.lr" in message
    assert state.config.train.lr > 0


def test_choosing_causal_lm_with_head_only_freezing_trains_the_last_blocks_instead(state, qtbot):
    assert state.config.model.freeze == "head-only"  # the default suits classifiers
    with qtbot.waitSignal(state.changed, check_params_cb=lambda section: section == "model"):
        state.set_value("task", "kind", "causal-lm")
    assert (state.config.model.freeze, state.config.model.unfreeze_last_n) == ("last-n", 2)


def test_causal_lm_keeps_a_freezing_the_user_chose(state):
    state.set_value("model", "freeze", "none")
    state.set_value("task", "kind", "causal-lm")
    assert state.config.model.freeze == "none"
