from __future__ import annotations

import io
import json
import math

import pytest
import torch

from finetune_gui.config import TaskKind
from finetune_gui.core.training.metrics import TaskMetrics, default_monitor, metric_mode


def _onehot_logits(preds, c):
    out = torch.full((len(preds), c), -5.0)
    out[torch.arange(len(preds)), torch.tensor(preds)] = 5.0
    return out


# ---------------------------------------------------------------- classification


def test_classification_hand_computed():
    labels = ["cat", "dog", "fox"]
    m = TaskMetrics(TaskKind.IMAGE_CLASSIFICATION, labels)
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    # two batches: loss is the sample-weighted mean
    m.update(_onehot_logits(y_pred[:4], 3), torch.tensor(y_true[:4]), loss=1.0, batch_size=4)
    m.update(_onehot_logits(y_pred[4:], 3), torch.tensor(y_true[4:]), loss=4.0, batch_size=2)
    r = m.compute()
    assert set(r) == {"loss", "accuracy", "precision_macro", "recall_macro", "f1_macro"}  # no top5 for C=3
    assert r["loss"] == pytest.approx((4 * 1.0 + 2 * 4.0) / 6)
    assert r["accuracy"] == pytest.approx(4 / 6)
    # per class: cat P=1 R=2/3 F1=0.8; dog P=1/2 R=1/2 F1=1/2; fox P=1/2 R=1 F1=2/3
    assert r["precision_macro"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert r["recall_macro"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert r["f1_macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert all(isinstance(v, float) for v in r.values())

    rep = m.report()
    assert rep["labels"] == labels
    assert rep["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]  # rows = true class
    cat, dog, fox = rep["per_class"]
    assert cat == {
        "label": "cat",
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "support": 3,
    }
    assert dog["support"] == 2 and dog["f1"] == pytest.approx(0.5)
    assert fox["precision"] == pytest.approx(0.5) and fox["recall"] == 1.0
    json.dumps(rep)  # evaluation.json

    m.reset()
    assert m.compute() == {}


def test_mixup_soft_targets_use_argmax():
    m = TaskMetrics(TaskKind.TEXT_CLASSIFICATION, ["a", "b"])
    soft = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    m.update(_onehot_logits([0, 1, 1], 2), soft, loss=0.5, batch_size=3)
    assert m.compute()["accuracy"] == pytest.approx(2 / 3)
    assert m.report()["confusion_matrix"] == [[1, 1], [0, 1]]


def test_top5_accuracy_only_when_more_than_five_classes():
    labels = [str(i) for i in range(8)]
    m = TaskMetrics(TaskKind.IMAGE_CLASSIFICATION, labels)
    logits = torch.arange(8, dtype=torch.float).repeat(4, 1)  # ranking: 7 > 6 > 5 > 4 > 3 > ...
    m.update(logits, torch.tensor([7, 3, 2, 0]), loss=1.0, batch_size=4)
    r = m.compute()
    assert r["accuracy"] == pytest.approx(1 / 4)
    assert r["top5_accuracy"] == pytest.approx(2 / 4)  # 7 and 3 are in the top 5


# ---------------------------------------------------------------- multilabel


def test_multilabel_subset_and_hamming_accuracy():
    m = TaskMetrics(TaskKind.IMAGE_MULTILABEL, ["red", "round", "big"])
    targets = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.float)
    pred = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 0, 0], [0, 0, 0]])
    logits = torch.where(pred.bool(), 3.0, -3.0)
    m.update(logits, targets, loss=0.3, batch_size=4)
    r = m.compute()
    assert r["accuracy"] == pytest.approx(2 / 4)  # rows 0 and 3 exactly right
    assert r["hamming_accuracy"] == pytest.approx(10 / 12)
    # tp=4 fp=1 fn=1 → micro F1 = 8/10
    assert r["f1_micro"] == pytest.approx(0.8)
    # red: tp2 → 1.0; round: tp1 fn1 → 2/3; big: tp1 fp1 → 2/3
    assert r["f1_macro"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    table = m.report()["per_label"]
    assert [row["label"] for row in table] == ["red", "round", "big"]
    assert [row["support"] for row in table] == [2, 2, 1]
    assert table[1]["recall"] == pytest.approx(0.5) and table[2]["precision"] == pytest.approx(0.5)


def test_multilabel_logits_inside_unit_interval_are_still_logits():
    m = TaskMetrics(TaskKind.IMAGE_MULTILABEL, ["a", "b"])
    # logit 0.2 → p=0.55 (positive); logit -0.2 → negative. Probabilities-as-given would call 0.2 negative.
    m.update(torch.tensor([[0.2, -0.2]]), torch.tensor([[1.0, 0.0]]), loss=0.1, batch_size=1)
    assert m.compute()["accuracy"] == 1.0


# ---------------------------------------------------------------- regression


def test_regression_mae_rmse_r2_and_scatter():
    m = TaskMetrics(TaskKind.IMAGE_REGRESSION, [])
    y = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    p = torch.tensor([[1.5], [2.0], [2.0], [5.0]])
    m.update(p[:2], y[:2], loss=0.1, batch_size=2)
    m.update(p[2:].reshape(-1), y[2:].reshape(-1), loss=0.3, batch_size=2)
    r = m.compute()
    assert r["loss"] == pytest.approx(0.2)
    assert r["mae"] == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert r["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 1 + 1) / 4))
    assert r["r2"] == pytest.approx(1 - 2.25 / 5.0)
    assert m.report()["scatter"] == [[1.0, 1.5], [2.0, 2.0], [3.0, 2.0], [4.0, 5.0]]


def test_regression_r2_left_out_for_one_sample_and_scatter_capped():
    m = TaskMetrics(TaskKind.TEXT_REGRESSION, [])
    m.update(torch.tensor([2.0]), torch.tensor([1.0]), loss=1.0, batch_size=1)
    r = m.compute()
    assert "r2" not in r and r["mae"] == 1.0
    assert all(math.isfinite(v) for v in r.values())
    m.reset()
    for _ in range(3):
        m.update(torch.randn(1000), torch.randn(1000), loss=1.0, batch_size=1000)
    assert len(m.report()["scatter"]) == 2000


def test_constant_targets_never_give_nan():
    m = TaskMetrics(TaskKind.IMAGE_REGRESSION, [])
    m.update(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 3.0]), loss=float("nan"), batch_size=2)
    r = m.compute()
    assert all(math.isfinite(v) for v in r.values())
    assert "loss" not in r and r["mae"] == pytest.approx(1.5)


# ---------------------------------------------------------------- causal LM


def test_lm_loss_is_token_weighted_and_perplexity():
    m = TaskMetrics(TaskKind.CAUSAL_LM, [])
    # batch 1: labels[:,1:] has 4 real tokens; batch 2: 1 real token
    b1 = torch.tensor([[5, 6, 7, -100], [8, 9, 10, -100]])
    b2 = torch.tensor([[5, 6, -100, -100], [-100, -100, -100, -100]])
    m.update(None, b1, loss=1.0, batch_size=2)
    m.update(None, b2, loss=3.0, batch_size=2)
    r = m.compute()
    assert r["loss"] == pytest.approx((4 * 1.0 + 1 * 3.0) / 5)
    assert r["perplexity"] == pytest.approx(math.exp(7 / 5))
    assert m.report()["tokens"] == 5


def test_lm_perplexity_is_capped():
    m = TaskMetrics(TaskKind.CAUSAL_LM, [])
    m.update(None, torch.tensor([[1, 2, 3]]), loss=5000.0, batch_size=1)
    assert m.compute()["perplexity"] == 1e9


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, mode",
    [
        ("val_loss", "min"),
        ("val_mae", "min"),
        ("test_rmse", "min"),
        ("val_perplexity", "min"),
        ("val_accuracy", "max"),
        ("val_f1_macro", "max"),
        ("val_r2", "max"),
        ("top5_accuracy", "max"),
    ],
)
def test_metric_mode(name, mode):
    assert metric_mode(name) == mode


def test_default_monitor():
    for task in TaskKind:
        assert default_monitor(task) == "val_loss"


def test_report_round_trips_through_json_for_every_task():
    for task in TaskKind:
        labels = ["a", "b", "c"]
        m = TaskMetrics(task, labels)
        if task == TaskKind.CAUSAL_LM:
            m.update(None, torch.tensor([[1, 2, 3]]), loss=2.0, batch_size=1)
        elif task.is_regression:
            m.update(torch.randn(4, 1), torch.randn(4, 1), loss=1.0, batch_size=4)
        elif task.is_classification:
            m.update(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), loss=1.0, batch_size=4)
        else:
            m.update(torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float(), loss=1.0, batch_size=4)
        rep = json.loads(json.dumps(m.report()))
        assert rep["loss"] == pytest.approx(m.compute()["loss"])
        buf = io.BytesIO()
        torch.save(m.compute(), buf)
