"""One decision of the fleet, as a host reads it from the stream or the state snapshot.

A value: what the fleet decided (``kind``, ``target``), where (``host``, ``workflow_id``),
why (the rule, its count against its threshold) and by whom; :meth:`FleetEvent.details` is
what every record of it carries, so replay rebuilds the same event from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..semconv import Rule
from ._events import RuleFiring
from ._models import ExecutionState

__all__ = ["WORKFLOW_KINDS", "FleetEvent"]

#: Fleet event kinds that concern one workflow; ``pause`` and ``resume`` concern the fleet.
WORKFLOW_KINDS = ("quarantine", "release", "operator", "reseed")


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """One decision of the fleet, as read from its event stream (or its state snapshot)."""

    id: str
    kind: str
    host: str
    workflow_id: str | None = None
    target: ExecutionState | None = None
    rule: str = Rule.OPERATOR.value
    count: int = 0
    threshold: int = 0
    window_seconds: float | None = None
    message: str = ""
    actor: str | None = None

    def firing(self) -> RuleFiring:
        """Return the rule firing this event reports."""
        scope = "global" if self.workflow_id is None else "workflow"
        return RuleFiring(
            self.rule,
            scope,
            self.workflow_id or "*",
            self.count,
            self.threshold,
            self.window_seconds,
        )

    def details(self) -> dict[str, Any]:
        """Return what every record of this event carries (replay rebuilds the event from it)."""
        return {
            "fleet_event": self.id,
            "fleet_host": self.host,
            "fleet_kind": self.kind,
            "fleet_rule": self.rule,
            "fleet_count": self.count,
            "fleet_threshold": self.threshold,
            "fleet_window_seconds": self.window_seconds,
        }

    def describe(self) -> str:
        """Return the record's message: what the fleet decided, where and why."""
        what = self.message or (
            self.firing().describe() if self.rule != Rule.OPERATOR.value else "operator"
        )
        return f"fleet ({self.host}, event {self.id}): {what}"

    @classmethod
    def from_record(cls, rec: dict[str, Any], details: dict[str, Any]) -> FleetEvent:
        """Rebuild the event from an audit record it wrote (for replay)."""
        state = rec.get("state")
        return cls(
            id=str(details.get("fleet_event", "")),
            kind=str(details.get("fleet_kind", "operator")),
            host=str(details.get("fleet_host", "")),
            workflow_id=rec.get("workflow_id"),
            target=ExecutionState(state) if state else None,
            rule=str(details.get("fleet_rule", Rule.OPERATOR.value)),
            count=int(details.get("fleet_count") or 0),
            threshold=int(details.get("fleet_threshold") or 0),
            window_seconds=details.get("fleet_window_seconds"),
            message="",
            actor=rec.get("actor"),
        )
