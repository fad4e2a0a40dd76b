"""What a scan says about training: whether it can start at all, and whether the data looks like a dataset.

The Data page shows both and the GUI asks before training on doubtful data; the rules live here, without Qt,
so the CLI can say the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from finetune_gui.config import TaskKind
from finetune_gui.core.data.common import ScanReport

#: Fewer samples than this in a class: too few to learn it, or to hold any out for validation.
MIN_PER_CLASS = 5
#: Classes named one by one in a message; the rest are counted.
NAMED_CLASSES = 5
_FOLDER_FORMATS = ("folder", "folder-splits")


@dataclass(frozen=True)
class Doubt:
    """Why the data does not look fit to train on (`what`), and what to do about it (`todo`)."""

    headline: str
    reasons: tuple[str, ...]
    todo: str
    no_dataset: bool  # more left out than used: the data as a whole looks wrong, not just some small classes

    @property
    def what(self) -> str:
        return f"{self.headline}: {'; '.join(self.reasons)}."

    def __str__(self) -> str:
        return f"{self.what} {self.todo}"


def unit(report: ScanReport) -> str:
    """What one sample of the report is called: images, texts, documents, or samples when the task is unknown."""
    kind = report.suggested_kind
    if kind is None:
        return "samples"
    if kind.is_image:
        return "images"
    return "documents" if kind == TaskKind.CAUSAL_LM else "texts"


def cannot_train(report: ScanReport) -> str | None:
    """Why training cannot start with this data (completing "training cannot start because …"), or None."""
    if report.num_samples == 0:
        return f"no usable {unit(report)} were found"
    kind = report.suggested_kind
    if kind is not None and kind.is_classification and len(report.labels) < 2:
        found = "only one was" if report.labels else "none were"
        return f"classification needs at least two classes and {found} found"
    return None


def doubt(report: ScanReport, min_per_class: int = MIN_PER_CLASS) -> Doubt | None:
    """A Doubt when problems outnumber the usable samples or some classes have fewer than min_per_class samples;
    None for data that looks like a dataset, and for data that cannot train at all (cannot_train says why)."""
    if cannot_train(report) is not None:
        return None
    folder = report.format in _FOLDER_FORMATS
    what = "folder" if folder else "file"
    reasons: list[str] = []
    todo: list[str] = []
    n, problems = report.num_samples, len(report.problems)
    many_problems = problems > n
    if many_problems:
        items = "files or folders" if folder else "rows or files"
        reasons.append(f"{problems:,} {items} could not be used and only {n:,} {unit(report)} could")
        todo.append(
            "Choose the folder that holds one subfolder per class, each with that class's images; "
            "the Problems tab lists what was left out."
            if folder
            else "Check that this is the data file and that the columns are set right; "
            "the Problems tab lists what was left out."
        )
    small = {name: count for name, count in report.labels.items() if count < min_per_class}
    if small:
        named = ", ".join(f"{name} ({count})" for name, count in list(small.items())[:NAMED_CLASSES])
        more = f" and {len(small) - NAMED_CLASSES} more" if len(small) > NAMED_CLASSES else ""
        reasons.append(
            f"{len(small)} of {len(report.labels)} classes have fewer than {min_per_class} {unit(report)}: "
            f"{named}{more}"
        )
        todo.append(
            f"Add {unit(report)} to the small classes (a few dozen each is a good start), or leave those classes out."
        )
    if not reasons:
        return None
    headline = (
        f"This {what} does not look like a dataset"
        if many_problems
        else f"Some classes have too few {unit(report)} to learn"
    )
    return Doubt(headline, tuple(reasons), " ".join(todo), many_problems)
