"""An operator's label of a recorded stop: right or wrong, with why (the policy lab learns from it).

An input like any other, so a label is in the audit log in decision order and a replay sees
it; nothing the machine decides reads it (no gate, rule or counter changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..semconv import EventKind, Reason
from ._ledger import Events, Ledger, Trace

__all__ = ["record"]


def record(
    ledger: Ledger,
    workflow_id: str,
    details: Mapping[str, Any],
    verdict: bool,
    reason: str,
    actor: str,
    now: float,  # noqa: ARG001 - every input is fed (now, ts, trace, events)
    ts: datetime | None,
    trace: Trace,
    events: Events,
) -> None:
    """Input: record a label (``verdict`` True: the stop was right) of one transition."""
    if events is None:
        return
    ledger.emit(
        events,
        EventKind.LABEL,
        ts,
        trace,
        workflow_id,
        None,
        None,
        reason=(Reason.LABEL_TRUE if verdict else Reason.LABEL_FALSE).value,
        message=reason,
        actor=actor,
        details=dict(details),
    )
