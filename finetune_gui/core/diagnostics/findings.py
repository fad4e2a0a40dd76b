"""What a diagnosis says: a finding (what is wrong, since when, the numbers, why, in plain words) and the
remedies, each a set of config changes that a new run can start from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Remedy:
    """One way out: `changes` maps "section.key" to the new value (what "Apply to a new run" sets)."""

    label: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One diagnosis. `evidence` holds the numbers it rests on; `series` small (x, y) plots where one helps."""

    id: str
    severity: str  # info | warning | critical
    title: str
    explanation: str
    began_step: int | None = None
    began_epoch: int | None = None  # 1-based, as people count epochs
    evidence: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[list[float]]] = field(default_factory=dict)
    remedies: list[Remedy] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        remedies = [Remedy(r["label"], dict(r["changes"])) for r in data.get("remedies", [])]
        return cls(**{**data, "remedies": remedies})

    def line(self) -> str:
        """The finding in one line, for logs and the terminal."""
        when = f" (from epoch {self.began_epoch})" if self.began_epoch else ""
        when = when or (f" (from step {self.began_step})" if self.began_step else "")
        return f"{self.title}{when}"


def worst_first(findings: list[Finding]) -> list[Finding]:
    """Critical before warning before info, each group in the order found."""
    return sorted(findings, key=lambda f: -SEVERITIES.index(f.severity))
