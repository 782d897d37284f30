"""One invariant's verdict: pass/fail, a line for people, and the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXAMPLES = 20  # evidence lists keep this many examples


@dataclass(frozen=True, slots=True, kw_only=True)
class InvariantResult:
    name: str
    passed: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "summary": self.summary,
            "evidence": self.evidence,
        }
