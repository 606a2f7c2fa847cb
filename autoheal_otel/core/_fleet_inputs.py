"""The machine's inputs from the fleet: the link's state, fleet decisions, the probe lease.

Functions over a :class:`~._ledger.Ledger`, pure like it (no clock, no I/O, no lock), with the
uniform trailing ``(at)``. The fleet link (:mod:`autoheal_otel.fleet`)
feeds them live through the manager's one input path; replay feeds them from the records they
wrote, so ``autoheal replay`` reproduces every decision of a fleet host. Invariants:

- every state change the fleet causes is a transition with cause ``fleet`` whose details name
  the fleet event id and the originating host;
- applying the same fleet event twice changes nothing the second time (a reader that re-reads
  the stream after a reconnect, or a snapshot that repeats a streamed event, is harmless);
- with the link down (``ledger.fleet_scopes`` empty) the host's own breakers decide, with the
  same thresholds;
- a fleet ROLLBACK moves the workflow here only when this host has a versioned store, and
  returns the :class:`~._machine.Restore` the caller carries out (this host's own known-good
  set, off the lock); a host without a store records ``fleet.rollback_unavailable`` and stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..base._events import RuleFiring
from ..base._fleet_event import WORKFLOW_KINDS, FleetEvent
from ..base._models import ExecutionState
from ..semconv import Cause, EventKind, Reason, Rule
from . import _breakers as br
from ._ledger import At, Ledger
from ._transitions import is_legal
from ._versions import Restore

__all__ = [
    "WORKFLOW_KINDS",
    "FleetEvent",
    "apply",
    "grant_probe",
    "link",
    "move_one",
    "reject",
    "replay_record",
    "rollback",
]

RUNNING = ExecutionState.RUNNING
DEGRADED = ExecutionState.DEGRADED
QUARANTINED = ExecutionState.QUARANTINED
ROLLBACK = ExecutionState.ROLLBACK
PAUSED = ExecutionState.PAUSED


def link(
    ledger: Ledger,
    up: bool,
    reason: Reason,
    scopes: Iterable[str],
    details: dict[str, Any],
    at: At,
) -> None:
    """Input: the fleet link came up (the fleet decides ``scopes``) or went down (local)."""
    ledger.fleet_scopes = frozenset(scopes) if up else frozenset()
    ledger.record(
        at,
        EventKind.FLEET,
        reason=reason.value,
        message="fleet link up: the fleet decides " + ", ".join(sorted(ledger.fleet_scopes))
        if up
        else "fleet link down: this host's breakers decide",
        details={**details, "scopes": sorted(ledger.fleet_scopes)},
    )


def grant_probe(
    ledger: Ledger,
    workflow_id: str,
    lease_seconds: float,
    host: str,
    at: At,
) -> None:
    """Input: this host won the fleet's probe lease of a quarantined workflow."""
    ledger.probe_permits[workflow_id] = at.now + lease_seconds
    ledger.record(
        at,
        EventKind.FLEET,
        workflow_id,
        None,
        QUARANTINED,
        reason=Reason.FLEET_PROBE_LEASE.value,
        message=f"this host ({host}) holds the fleet's probe lease for {lease_seconds:g} s",
        details={"lease_seconds": lease_seconds, "fleet_host": host},
    )


def apply(ledger: Ledger, event: FleetEvent, at: At) -> bool:
    """Input: a fleet decision. Returns True when it changed something here."""
    wid = event.workflow_id
    cap = ledger.policy.fleet.max_workflows
    if wid is not None and wid not in ledger.workflows and len(ledger.workflows) >= cap:
        return _over_cap(ledger, event, cap, at)
    if event.kind == "pause":
        return _pause(ledger, event, at)
    if event.kind == "resume":
        return _resume(ledger, event, at)
    if event.kind == "rollback":
        return rollback(ledger, event, at) is not None
    return move_one(ledger, event, at)


def rollback(ledger: Ledger, event: FleetEvent, at: At) -> Restore | None:
    """Input: the fleet rolled a workflow back. Returns the restore to carry out here, if any.

    A regression found on another host moves a RUNNING or DEGRADED workflow; an operator's
    fleet rollback moves it from any state but ROLLBACK (a restore already in flight here).
    Without a versioned store the host records ``fleet.rollback_unavailable`` and stays.
    """
    wid = event.workflow_id
    if wid is None:
        return None
    wf = ledger.workflow(wid, at)
    source = wf.state
    operator = event.rule == Rule.OPERATOR.value
    if source is ROLLBACK or (not operator and source not in (RUNNING, DEGRADED)):
        return None
    if not ledger.versioned:
        ledger.record(
            at,
            EventKind.FLEET,
            wid,
            None,
            source,
            reason=Reason.FLEET_ROLLBACK_UNAVAILABLE.value,
            message=f"{event.describe()}; no versioned store here: stays {source.value}",
            actor=event.actor,
            details=event.details(),
        )
        return None
    rule: RuleFiring | str = event.rule if operator else event.firing()
    message = event.describe()
    ledger.move(
        wf,
        ROLLBACK,
        Cause.FLEET,
        at,
        rule,
        message,
        actor=event.actor,
        details=event.details(),
    )
    return Restore(wid, message, event.actor or "autoheal")


def move_one(ledger: Ledger, event: FleetEvent, at: At) -> bool:
    """Move one workflow to the state the fleet decided (no-op when there, or not legal)."""
    target, wid = event.target, event.workflow_id
    if target is None or wid is None:
        return False
    wf = ledger.workflow(wid, at)
    source = wf.state
    if source is target or not is_legal(source, target, Cause.FLEET):
        return False
    if event.kind == "quarantine" and source not in (RUNNING, DEGRADED):
        return False  # already blocked here (paused, or in a restore): keep that
    if event.kind == "release" and source is not QUARANTINED:
        return False
    rule: RuleFiring | str = event.firing() if event.rule != Rule.OPERATOR.value else event.rule
    ledger.move(
        wf,
        target,
        Cause.FLEET,
        at,
        rule,
        event.describe(),
        actor=event.actor,
        details=event.details(),
    )
    if target is QUARANTINED:
        gp = ledger.policy.breakers.global_
        firing = br.global_rule(ledger.glob, gp, at.now, True, windowed=False)
        if firing is not None:
            ledger.pause_all(firing, at)
    return True


def _over_cap(
    ledger: Ledger,
    event: FleetEvent,
    cap: int,
    at: At,
) -> bool:
    """Fail closed: fleet events name more workflows than this host may track; pause it."""
    if ledger.glob.paused:
        return False
    firing = RuleFiring(Rule.FLEET_MAX_WORKFLOWS, "global", "*", len(ledger.workflows) + 1, cap)
    message = (
        f"fleet event {event.id} names a new workflow past fleet.max_workflows ({cap}):"
        " paused until an operator checks what writes to the fleet"
    )
    ledger.pause_all(firing, at, cause=Cause.FLEET, message=message, details=event.details())
    return True


def _pause(ledger: Ledger, event: FleetEvent, at: At) -> bool:
    glob = ledger.glob
    if glob.paused:
        return False
    ledger.pause_all(
        event.firing(),
        at,
        cause=Cause.FLEET,
        message=event.describe(),
        actor=event.actor,
        details=event.details(),
    )
    return True


def _resume(ledger: Ledger, event: FleetEvent, at: At) -> bool:
    glob = ledger.glob
    target = event.target if event.target in (RUNNING, DEGRADED) else RUNNING
    assert target is not None
    paused = [wid for wid, wf in sorted(ledger.workflows.items()) if wf.state is PAUSED]
    if not paused and not glob.paused:
        return False
    for wid in paused:
        ledger.move(
            ledger.workflows[wid],
            target,
            Cause.FLEET,
            at,
            Rule.OPERATOR,
            event.describe(),
            actor=event.actor,
            details=event.details(),
        )
    ledger.clear_global_pause(
        at,
        event.actor,
        event.describe(),
        cause=Cause.FLEET,
        details=event.details(),
    )
    return True


def reject(
    ledger: Ledger,
    entry_id: str,
    workflow_id: str,
    why: str,
    at: At,
) -> None:
    """Input: a fleet entry this host read is malformed; it is skipped (recorded once)."""
    ledger.record(
        at,
        EventKind.FLEET,
        reason=Reason.FLEET_EVENT_REJECTED.value,
        message=f"fleet entry {entry_id} skipped: {why}",
        details={"fleet_event": entry_id, "fleet_workflow": workflow_id, "why": why},
    )


def replay_record(
    ledger: Ledger,
    rec: dict[str, Any],
    details: dict[str, Any],
    at: At,
) -> None:
    """Input (replay): feed back a record a fleet input wrote, as the same input."""
    kind = rec["kind"]
    if kind == EventKind.FLEET:
        reason = Reason(rec["reason"])
        if reason is Reason.FLEET_EVENT_REJECTED:
            return  # a record only: the entry changed nothing
        if reason is Reason.FLEET_PROBE_LEASE:
            lease = float(details.get("lease_seconds") or 0.0)
            host = str(details.get("fleet_host", ""))
            grant_probe(ledger, str(rec["workflow_id"]), lease, host, at)
        elif reason is Reason.FLEET_ROLLBACK_UNAVAILABLE:
            event = replace(FleetEvent.from_record(rec, details), target=ROLLBACK)
            rollback(ledger, event, at)
        else:
            up = reason is not Reason.FLEET_DISCONNECTED
            scopes = details.get("scopes") or ()
            link(ledger, up, reason, scopes, {}, at)
        return
    event = FleetEvent.from_record(rec, details)
    if kind == EventKind.GLOBAL:
        what = "resume" if rec["reason"] == Reason.GLOBAL_RESUMED else "pause"
        apply(ledger, replace(event, kind=what, workflow_id=None), at)
    elif event.kind in ("pause", "resume"):
        move_one(ledger, replace(event, kind="operator"), at)
    else:
        apply(ledger, event, at)
