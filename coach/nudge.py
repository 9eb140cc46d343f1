"""The nudge: what the coach tells a person, with the evidence behind it (docs/contract.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from coach.clock import local_iso

Severity = Literal["info", "warning", "alert"]


@dataclass(frozen=True, slots=True)
class Nudge:
    """One nudge. `id` is stable: person, rule, local date and cause, so replays repeat it."""

    id: str
    person: str
    rule: str
    ts: datetime
    severity: Severity
    title: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    actions: tuple[str, ...] = ("ack", "snooze")
    # After this the nudge is stale: an outbox drops it rather than send it late (not published).
    expires: datetime | None = None

    def to_payload(self, tz: ZoneInfo) -> dict[str, Any]:
        """The JSON payload of docs/contract.md ("Nudges"), `ts` in local time with its offset."""
        return {
            "id": self.id,
            "person": self.person,
            "rule": self.rule,
            "ts": local_iso(self.ts, tz),
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "evidence": self.evidence,
            "actions": list(self.actions),
        }
