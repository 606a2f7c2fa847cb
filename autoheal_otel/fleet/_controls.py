"""What the link's shipper asks the fleet besides counting: probe leases and rollbacks.

Pure functions over the ledger and decision events (the caller holds the manager's lock for
the ledger); the link sends what they return.
"""

from __future__ import annotations

from ..base._events import DecisionEvent
from ..core._ledger import LedgerView
from ..semconv import Reason, Rule

__all__ = ["ROLLBACK_DEDUPE_S", "hold_seconds", "lease_ready", "rollback_args"]

#: A regression rollback of one workflow is published at most once this often fleet-wide
#: (hosts that find the same regression together restore once, not once per finder).
ROLLBACK_DEDUPE_S = 30.0


def hold_seconds(ledger: LedgerView, workflow_id: str, reason: str) -> float:
    """Return how long this host holds the probe lease after a probe event (``reason``)."""
    wf = ledger.workflows.get(workflow_id)
    if wf is None:
        return 1.0
    if reason == Reason.PROBE_ADMITTED.value:
        return wf.policy.quarantine.probe_timeout_seconds + 1.0
    return float(wf.probe_cooldown)


def lease_ready(ledger: LedgerView, now: float) -> list[tuple[str, float]]:
    """Return the quarantines whose probe may start here, with each one's probe timeout."""
    return [
        (wid, wf.policy.quarantine.probe_timeout_seconds)
        for wid in sorted(ledger.glob.quarantined)
        if (wf := ledger.workflows[wid]).probe_step is None
        and wf.policy.quarantine.probe_enabled
        and wf.probe_ready_at is not None
        and now >= wf.probe_ready_at
        and ledger.probe_permits.get(wid, -1.0) <= now
    ]


def rollback_args(event: DecisionEvent) -> tuple[str, tuple[int, int], str]:
    """Return (rule, (count, threshold), message) of a regression rollback to publish."""
    firing = event.rule
    if firing is None:
        return Rule.ROLLBACK_REGRESSION.value, (0, 0), event.message or "regression"
    return firing.rule, (firing.count, firing.threshold), event.message or "regression"
