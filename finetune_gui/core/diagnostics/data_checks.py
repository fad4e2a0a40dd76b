"""Checks of the data and the setup, each reading a RunRecord alone: nothing to transfer, class imbalance,
a class never predicted, the same samples in two splits, validation labels never seen in training."""

from __future__ import annotations

from finetune_gui.core.diagnostics.findings import Finding, Remedy
from finetune_gui.core.diagnostics.record import RunRecord

IMBALANCE_WARN = 10.0  # most common class this many times the rarest
IMBALANCE_INFO = 4.0
FROZEN_SHARE = 0.2  # under this share of trainable parameters the backbone counts as frozen


def nothing_to_transfer(record: RunRecord) -> Finding | None:
    """A frozen backbone that starts from random weights: the head learns from random features."""
    if not record.random_init or not record.total_params:
        return None
    share = record.trainable_params / record.total_params
    if share >= FROZEN_SHARE:
        return None
    return Finding(
        id="nothing-to-transfer",
        severity="critical",
        title="Nothing to transfer: the frozen backbone is random",
        explanation=(
            f"Only {100 * share:.2f}% of the model trains and the rest keeps random weights. Transfer learning "
            "reuses what a pretrained backbone learned; a random one learned nothing, so the head sees noise and "
            "accuracy stays near chance. Train every layer, or start from pretrained weights."
        ),
        evidence={"trainable_share": share},
        remedies=[
            Remedy("Train every layer", {"model.freeze": "none"}),
            Remedy("Start from pretrained weights", {"model.pretrained": True, "model.allow_random_init": False}),
        ],
    )


def transformer_lr(record: RunRecord) -> Finding | None:
    """A pretrained transformer whose own layers train at a learning rate meant for a new head."""
    from finetune_gui.core.plan import LR_TRANSFORMER

    share = record.trainable_params / record.total_params if record.total_params else 0.0
    if not record.model_kind.startswith("hf") or record.random_init or record.lora or share < FROZEN_SHARE:
        return None
    if record.lr < 10 * LR_TRANSFORMER:
        return None
    return Finding(
        id="transformer-lr",
        severity="warning",
        title="A head's learning rate for a whole transformer",
        explanation=(
            f"{100 * share:.0f}% of a pretrained transformer trains at a learning rate of {record.lr:g}, the usual "
            f"start for a new head. Steps that big overwrite what the model learned before (catastrophic "
            f"forgetting): fine-tuning a whole transformer usually starts at 2e-5 to 1e-4."
        ),
        evidence={"lr": record.lr, "trainable_share": share},
        remedies=[
            Remedy(f"Learning rate {LR_TRANSFORMER:g}", {"train.lr": LR_TRANSFORMER}),
            Remedy("Train the head only", {"model.freeze": "head-only"}),
        ],
    )


def class_imbalance(record: RunRecord) -> Finding | None:
    counts = {k: v for k, v in record.class_counts.get("train", {}).items() if v > 0}
    if len(counts) < 2 or record.class_weights == "balanced":
        return None
    big, small = max(counts, key=counts.get), min(counts, key=counts.get)
    ratio = counts[big] / counts[small]
    if ratio < IMBALANCE_INFO:
        return None
    return Finding(
        id="class-imbalance",
        severity="warning" if ratio >= IMBALANCE_WARN else "info",
        title=f"Unbalanced classes ({ratio:.0f}:1)",
        explanation=(
            f"'{big}' has {counts[big]} training samples and '{small}' only {counts[small]}. A model can score well "
            f"by mostly answering '{big}' and still miss '{small}'. Weighting the classes by how rare they are "
            "makes each class count the same."
        ),
        evidence={"largest": counts[big], "smallest": counts[small], "ratio": ratio},
        remedies=[Remedy("Weight classes by rarity", {"train.class_weights": "balanced"})],
    )


def never_predicted(record: RunRecord) -> Finding | None:
    """Classes with test samples that the final model never predicts."""
    missing = [
        label for label, support in record.support.items() if support > 0 and record.predicted.get(label, 0) == 0
    ]
    if not missing or len(record.support) < 2:
        return None
    names = ", ".join(f"'{m}'" for m in missing[:5]) + (" …" if len(missing) > 5 else "")
    remedies = (
        []
        if record.class_weights == "balanced"
        else [Remedy("Weight classes by rarity", {"train.class_weights": "balanced"})]
    )
    return Finding(
        id="never-predicted",
        severity="warning",
        title=f"{len(missing)} class(es) never predicted",
        explanation=(
            f"The trained model never answers {names}, although the test split has examples of "
            f"{'it' if len(missing) == 1 else 'them'}. Rare classes, or classes that look alike, get swallowed by "
            "the common ones."
        ),
        evidence={f"test_samples/{m}": float(record.support[m]) for m in missing},
        remedies=remedies,
    )


def leakage(record: RunRecord) -> Finding | None:
    """Identical samples in the training split and a split that judges the model."""
    pairs = {k: v for k, v in record.duplicates.items() if v > 0}
    if not pairs:
        return None
    said = ", ".join(f"{n} between {k.replace('/', ' and ')}" for k, n in sorted(pairs.items()))
    return Finding(
        id="leakage",
        severity="warning",
        title="The same samples are in training and evaluation",
        explanation=(
            f"Identical samples appear in more than one split ({said}). The model is then judged partly on "
            "examples it trained on (leakage), so its validation and test scores are too good to trust. Remove the "
            "copies from the data."
        ),
        evidence={f"duplicates/{k}": float(v) for k, v in pairs.items()},
    )


def unseen_labels(record: RunRecord) -> Finding | None:
    train = set(record.class_counts.get("train", {}))
    unseen = sorted(
        {label for split in ("val", "test") for label, n in record.class_counts.get(split, {}).items() if n} - train
    )
    if not train or not unseen:
        return None
    return Finding(
        id="unseen-labels",
        severity="warning",
        title="Evaluation labels the training never saw",
        explanation=(
            f"Validation or test samples are labelled {', '.join(repr(u) for u in unseen)}, which no training "
            "sample is. The model cannot learn a class it never saw, so those samples always count as wrong."
        ),
        evidence={"unseen": float(len(unseen))},
    )
