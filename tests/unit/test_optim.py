from __future__ import annotations

import io
import math

import pytest
import torch

from finetune_gui.config import ConfigError, TrainConfig
from finetune_gui.core.training.optim import (
    build_optimizer,
    build_scheduler,
    lr_multiplier,
    lr_sweep,
    planned_lrs,
    suggest_from_curve,
)


def _groups(lr=0.1, wd=0.01):
    head = torch.nn.Linear(3, 2)
    body = torch.nn.Linear(3, 3)
    return [
        {"params": list(body.parameters()), "lr": lr * 0.1, "weight_decay": 0.0, "name": "backbone"},
        {"params": list(head.parameters()), "lr": lr, "weight_decay": wd, "name": "head"},
    ]


def _mults(train, total, spe):
    m = lr_multiplier(train, total, spe)
    return [m(s) for s in range(total)]


# ---------------------------------------------------------------- optimisers


@pytest.mark.parametrize(
    "name, cls",
    [
        ("sgd", torch.optim.SGD),
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("rmsprop", torch.optim.RMSprop),
    ],
)
def test_build_optimizer_keeps_group_lr_and_weight_decay(name, cls):
    train = TrainConfig(optimizer=name, lr=0.1, momentum=0.8, weight_decay=0.5)
    opt = build_optimizer(train, _groups(lr=0.1, wd=0.01))
    assert type(opt) is cls
    assert [g["name"] for g in opt.param_groups] == ["backbone", "head"]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.1])
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.01]
    if name in ("sgd", "rmsprop"):
        assert opt.param_groups[0]["momentum"] == 0.8


def test_sgd_nesterov():
    opt = build_optimizer(TrainConfig(optimizer="sgd", nesterov=True, momentum=0.9), _groups())
    assert opt.param_groups[0]["nesterov"] is True
    with pytest.raises(ConfigError, match="train.nesterov: needs train.momentum > 0"):
        build_optimizer(TrainConfig(optimizer="sgd", nesterov=True, momentum=0.0), _groups())


def test_empty_group_is_kept_in_order():
    groups = _groups()
    groups[0]["params"] = []
    opt = build_optimizer(TrainConfig(), groups)
    assert [g["name"] for g in opt.param_groups] == ["backbone", "head"]


def test_no_trainable_weights_is_a_config_error():
    with pytest.raises(ConfigError):
        build_optimizer(TrainConfig(), [{"params": [], "lr": 0.1, "weight_decay": 0.0, "name": "head"}])


# ---------------------------------------------------------------- schedule shapes


def test_constant_and_plateau_are_flat():
    for kind in ("constant", "plateau"):
        assert _mults(TrainConfig(schedule=kind), 20, 5) == [1.0] * 20


def test_step_drops_at_epoch_boundaries():
    t = TrainConfig(schedule="step", step_epochs=2, gamma=0.5)
    m = _mults(t, 30, 5)  # 6 epochs of 5 steps
    assert m[:10] == [1.0] * 10
    assert m[10:20] == [0.5] * 10
    assert m[20:30] == [0.25] * 10


def test_multistep_drops_at_milestones():
    t = TrainConfig(schedule="multistep", milestones=[3, 1], gamma=0.1)
    m = _mults(t, 20, 4)  # epochs 0..4
    assert m[0:4] == [1.0] * 4
    assert m[4:12] == pytest.approx([0.1] * 8)
    assert m[12:20] == pytest.approx([0.01] * 8)


def test_exponential_per_epoch():
    t = TrainConfig(schedule="exponential", gamma=0.9)
    m = _mults(t, 12, 3)
    assert m == pytest.approx([1, 1, 1, 0.9, 0.9, 0.9, 0.81, 0.81, 0.81, 0.729, 0.729, 0.729])


@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_cosine_from_one_to_floor(floor):
    t = TrainConfig(schedule="cosine", min_lr_ratio=floor)
    m = _mults(t, 101, 10)
    assert m[0] == 1.0
    assert m[-1] == pytest.approx(floor)
    assert m[50] == pytest.approx((1 + floor) / 2)
    assert all(a >= b for a, b in zip(m, m[1:]))
    # beyond the plan it stays at the floor
    assert lr_multiplier(t, 101, 10)(500) == pytest.approx(floor)


@pytest.mark.parametrize("kind", ["linear-warmup", "cosine-warmup"])
def test_warmup_starts_low_peaks_at_warmup_then_decays(kind):
    t = TrainConfig(schedule=kind, warmup_fraction=0.1, min_lr_ratio=0.05)
    m = _mults(t, 100, 10)
    w = 10
    assert 0 < m[0] <= 1 / (w + 1) + 1e-12
    assert all(a < b for a, b in zip(m[:w], m[1 : w + 1]))
    assert m[w] == pytest.approx(1.0)
    assert max(m) == pytest.approx(1.0)
    assert m[-1] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(m[w:], m[w + 1 :]))
    mid = w + (99 - w) / 2
    if kind == "linear-warmup":
        assert lr_multiplier(t, 100, 10)(int(mid)) == pytest.approx(1 - 0.95 * (int(mid) - w) / (99 - w))
    else:
        assert m[int(round(mid))] == pytest.approx(0.525, abs=0.03)


def test_warmup_fraction_zero_is_plain_decay():
    t = TrainConfig(schedule="cosine-warmup", warmup_fraction=0.0)
    m = _mults(t, 50, 10)
    assert m[0] == 1.0 and m[-1] == pytest.approx(0.0)


@pytest.mark.parametrize("frac, peak", [(0.0, 25), (0.3, 30)])
def test_one_cycle_shape(frac, peak):
    t = TrainConfig(schedule="one-cycle", warmup_fraction=frac)
    m = _mults(t, 100, 10)
    assert m[0] == pytest.approx(1 / 25)
    assert m.index(max(m)) == peak and m[peak] == pytest.approx(1.0)
    assert m[-1] == pytest.approx(1 / (25 * 1e4))
    assert all(a <= b for a, b in zip(m[:peak], m[1 : peak + 1]))
    assert all(a >= b for a, b in zip(m[peak:], m[peak + 1 :]))


def test_planned_lrs_scales_by_peak_lr():
    t = TrainConfig(schedule="cosine", lr=0.02)
    lrs = planned_lrs(t, 11, 11)
    assert len(lrs) == 11
    assert lrs[0] == pytest.approx(0.02) and lrs[-1] == pytest.approx(0.0)


def test_tiny_plans_do_not_crash():
    for kind in ("cosine", "linear-warmup", "cosine-warmup", "one-cycle", "step", "multistep", "exponential"):
        t = TrainConfig(schedule=kind, warmup_fraction=0.5)
        for total in (0, 1, 2):
            vals = [lr_multiplier(t, total, 1)(s) for s in range(3)]
            assert all(math.isfinite(v) and v > 0 or v == 0.0 for v in vals)
            assert vals[0] > 0


# ---------------------------------------------------------------- Schedule


def _run(opt, sched, n):
    out = []
    for _ in range(n):
        out.extend(sched.current_lrs())
        opt.step()
        sched.step()
    return out


def test_schedule_applies_multiplier_to_every_group():
    t = TrainConfig(schedule="cosine-warmup", warmup_fraction=0.2, lr=0.1)
    opt = build_optimizer(t, _groups(lr=0.1))
    sched = build_scheduler(opt, t, 20, 5)
    lrs = _run(opt, sched, 20)
    plan = planned_lrs(t, 20, 5)
    assert lrs[1::2] == pytest.approx(plan)
    assert lrs[0::2] == pytest.approx([p * 0.1 for p in plan])


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("kind", ["one-cycle", "plateau", "step"])
def test_schedule_state_round_trip_continues_identically(kind):
    t = TrainConfig(schedule=kind, lr=0.1, gamma=0.5, plateau_patience=0, step_epochs=1)
    opt = build_optimizer(t, _groups())
    sched = build_scheduler(opt, t, 40, 10)
    _run(opt, sched, 13)
    sched.epoch_end(1.0)
    sched.epoch_end(2.0)  # a drop for plateau
    state = _roundtrip(sched.state_dict())
    opt_state = _roundtrip(opt.state_dict())
    for v in state.values():
        assert isinstance(v, (int, float, list))
    expected = _run(opt, sched, 20)

    t2 = TrainConfig(schedule=kind, lr=0.1, gamma=0.5, plateau_patience=0, step_epochs=1)
    opt2 = build_optimizer(t2, _groups())
    sched2 = build_scheduler(opt2, t2, 40, 10)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(state)
    assert _run(opt2, sched2, 20) == pytest.approx(expected)
    if kind == "plateau":
        assert expected[1] == pytest.approx(0.05)


def test_plateau_drops_after_patience_epochs_without_improvement():
    t = TrainConfig(schedule="plateau", lr=1.0, gamma=0.1, plateau_patience=2)
    opt = build_optimizer(t, _groups(lr=1.0))
    sched = build_scheduler(opt, t, 100, 10)
    assert sched.current_lrs()[1] == 1.0
    assert sched.epoch_end(1.0) is False  # first value: the best
    assert sched.epoch_end(0.5) is False  # improved
    assert sched.epoch_end(0.6) is False  # bad 1
    assert sched.epoch_end(0.5) is False  # bad 2 (not better than best)
    assert sched.epoch_end(0.7) is True  # bad 3 > patience: drop
    assert sched.current_lrs() == pytest.approx([0.01, 0.1])
    sched.step()
    assert sched.current_lrs() == pytest.approx([0.01, 0.1])
    assert sched.epoch_end(0.4) is False
    assert sched.epoch_end(None) is False
    assert sched.current_lrs() == pytest.approx([0.01, 0.1])


def test_plateau_rule_only_for_plateau_schedule():
    t = TrainConfig(schedule="constant", lr=1.0, plateau_patience=0)
    opt = build_optimizer(t, _groups(lr=1.0))
    sched = build_scheduler(opt, t, 100, 10)
    for v in (1.0, 2.0, 3.0, 4.0):
        assert sched.epoch_end(v) is False
    assert sched.current_lrs() == pytest.approx([0.1, 1.0])


def test_group_added_later_follows_schedule():
    t = TrainConfig(schedule="step", step_epochs=1, gamma=0.5, lr=1.0)
    groups = _groups(lr=1.0)
    opt = build_optimizer(t, groups[1:])
    sched = build_scheduler(opt, t, 100, 2)
    _run(opt, sched, 2)
    opt.add_param_group(groups[0])  # lr 0.1, unfrozen at epoch 1
    sched.step()
    assert sched.current_lrs() == pytest.approx([0.5, 0.05])


# ---------------------------------------------------------------- LR finder


def _toy_regression(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 4, generator=g)
    w_true = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    y = x @ w_true + 0.01 * torch.randn(256, 1, generator=g)
    model = torch.nn.Linear(4, 1)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def train_step(lr):
        for gr in opt.param_groups:
            gr["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return train_step


def test_lr_sweep_on_linear_regression_suggests_sensible_lr_and_stops_on_divergence():
    res = lr_sweep(_toy_regression(), start_lr=1e-5, end_lr=100.0, num_steps=100)
    assert len(res.lrs) == len(res.losses) == len(res.raw_losses)
    assert len(res.lrs) < 100  # diverged before reaching 100 (critical lr ~ 2/λmax ≈ 1)
    assert res.lrs[-1] < 20
    assert "diverged" in res.reason or "became" in res.reason
    assert res.suggested_lr is not None
    assert 1e-3 <= res.suggested_lr <= 1.0
    # the lrs grow exponentially
    ratios = [b / a for a, b in zip(res.lrs, res.lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios))


def test_lr_sweep_smoothing_has_bias_correction():
    res = lr_sweep(lambda lr: 2.0, num_steps=10, smoothing=0.9)
    assert res.losses == pytest.approx([2.0] * 10)
    assert res.suggested_lr is None  # flat loss: nothing to suggest
    assert "did not go down" in res.reason


def test_lr_sweep_stops_on_nan_and_on_request():
    calls = []

    def step(lr):
        calls.append(lr)
        return float("nan") if len(calls) > 3 else 1.0

    res = lr_sweep(step, num_steps=50)
    assert len(res.lrs) == 3 and res.suggested_lr is None
    assert "points" in res.reason

    n = {"k": 0}

    def stop():
        n["k"] += 1
        return n["k"] > 5

    res = lr_sweep(lambda lr: 1.0, num_steps=50, should_stop=stop)
    assert len(res.lrs) == 5


def test_suggest_from_curve_picks_steepest_descent():
    lrs = [10 ** (-6 + i * 0.1) for i in range(60)]
    # loss falls fastest at index 30 (a logistic step in log lr)
    losses = [1.0 / (1.0 + math.exp((i - 30) / 3.0)) + 1.0 for i in range(60)]
    lr, reason = suggest_from_curve(lrs, losses)
    assert lr == pytest.approx(lrs[30])
    assert "steepest" in reason
    assert suggest_from_curve(lrs[:3], losses[:3])[0] is None
