"""What a host sends the fleet, as values: failures as shippable items, states to re-seed.

Pure functions over the policy and the ledger (the caller holds the manager's lock for the
ledger). Invariants: an item's member is the failure's unique id, so re-sending it (a retry,
a re-seed) never counts twice; a state is re-seeded only when this host knows it and the fleet
either lost it or has not changed it since this host last applied a fleet event for it; a
global pause only when the fleet made it (never one this host's fallback breakers decided).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..base._models import ExecutionState
from ..core._ledger import LedgerView
from ..policy._config import PolicyConfig
from ..semconv import Cause
from ._store import Item

__all__ = ["reseed_states", "to_items"]


def to_items(
    policy: PolicyConfig, scopes: Iterable[str], batch: Iterable[tuple[str, str, str, str, str]]
) -> list[Item]:
    """Turn queued (member, workflow, trigger, seen event, seen global event) failures into
    items the ship script counts."""
    scopes = tuple(scopes)
    gp = policy.breakers.global_
    global_triggers = {t.value for t in gp.counted_triggers}
    items = []
    for member, wid, trigger, seen, seen_global in batch:
        wb = policy.for_workflow(wid).workflow_breaker
        counted = "workflow" in scopes and trigger in {t.value for t in wb.counted_triggers}
        glob = "global" in scopes and trigger in global_triggers
        threshold = wb.failure_threshold if counted else 0
        window_ms = int(wb.window_seconds * 1000)
        window_s = f"{wb.window_seconds:g}"
        items.append((member, wid, threshold, window_ms, window_s, glob, seen, seen_global))
    return items


def _state(
    wid: str, target: ExecutionState, rule: Any, expect: str, default: str
) -> dict[str, Any]:
    return {
        "w": wid,
        "target": target.value,
        "expect": expect,
        "rule": rule.rule if rule else default,
        "count": rule.count if rule else 0,
        "threshold": rule.threshold if rule else 0,
        "ws": str(rule.window_seconds or "") if rule else "",
    }


def reseed_states(ledger: LedgerView, seen: Mapping[str, str]) -> list[dict[str, Any]]:
    """Return this host's quarantines and global pause, for the fleet to keep or re-learn.

    The global pause only when the fleet (or an operator through it) made it: a pause this
    host's own fallback breakers decided during an outage stays local — the fleet decides
    again from the re-sent failures, with its ``min_hosts`` quorum, or not at all.
    """
    quarantined = ExecutionState.QUARANTINED
    states = [
        _state(wid, quarantined, wf.rule, seen.get(wid, ""), "workflow.failure_window")
        for wid, wf in sorted(ledger.workflows.items())
        if wf.state is quarantined
    ]
    if ledger.glob.paused and ledger.glob.cause in (Cause.FLEET, Cause.OPERATOR):
        rule = ledger.glob.rule
        states.append(
            _state("", ExecutionState.PAUSED, rule, seen.get("", ""), "global.failure_window")
        )
    return states
