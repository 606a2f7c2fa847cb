"""The machine's state, and the one way to change it: a legal edge, recorded.

A :class:`Ledger` holds the workflows, the global scope, the policy in force and the
sequence number. :meth:`Ledger.move` is the only place a workflow changes state: it takes an
edge of the transition table (raising on an illegal one), records the transition, and
applies exactly the resets the edge declares. Events get consecutive ``seq`` numbers in the
order they are made, and the trace ids of the input they belong to, passed explicitly.

Pure: no clock reads (time comes with every call), no I/O, no locks, no telemetry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from ..base._events import DecisionEvent, RuleFiring, Template, new_event
from ..base._models import ExecutionState, StepResult, check_id
from ..policy._config import PolicyConfig
from ..semconv import Cause, EventKind, Reason, Rule
from . import _breakers as br
from ._calibrator import Calibrator
from ._transitions import Reset, edge

__all__ = ["NO_TRACE", "At", "Events", "Ledger", "LedgerView", "Notes", "Trace"]

RUNNING = ExecutionState.RUNNING
DEGRADED = ExecutionState.DEGRADED
QUARANTINED = ExecutionState.QUARANTINED
PAUSED = ExecutionState.PAUSED

#: Where an input appends its decision events (None when nothing is recorded).
Events = list[DecisionEvent] | None
#: The (trace_id, span_id) of the span an input belongs to, in hex.
Trace = tuple[str | None, str | None]
NO_TRACE: Trace = (None, None)
#: What an input says for the process's log: (message, the exception that caused it, if any).
#: The caller owns the list and logs it even when the input raised part-way (the core does no
#: I/O, logging included).
Notes = list[tuple[str, BaseException | None]]


class At(NamedTuple):
    """One input's instant and where it records: the value every input but the two hooks takes.

    ``now`` is the monotonic clock, ``ts`` the wall clock (None when nothing is recorded),
    ``trace`` the ids of the input's span, and ``events`` the list its decisions are appended
    to (None: record nothing). The runner builds one per input. The executor's two hooks
    take the four as arguments instead, and build an ``At`` only when they leave their common
    path: building one costs about four times passing the four (``bench/hot_path.py``).
    """

    now: float
    ts: datetime | None
    trace: Trace
    events: Events


class LedgerView(Protocol):
    """What a collaborator may read of the machine's state (``Machine.view``), read-only.

    The machine owns its :class:`Ledger`; outside the core it is seen only through this
    (read under the manager's lock), and changed only by the machine's inputs.
    """

    @property
    def policy(self) -> PolicyConfig: ...
    @property
    def seq(self) -> int: ...
    @property
    def workflows(self) -> Mapping[str, br.WorkflowRuntime]: ...
    @property
    def glob(self) -> br.GlobalRuntime: ...
    @property
    def calibration(self) -> Calibrator: ...
    @property
    def fleet_scopes(self) -> frozenset[str]: ...
    @property
    def probe_permits(self) -> Mapping[str, float]: ...


class Ledger:
    """The workflows, the global scope and the record of every change."""

    def __init__(self, policy: PolicyConfig, writer: str, anchor: tuple[float, datetime]) -> None:
        self.policy = policy
        self.policy_version = ""
        self.record_allowed_gates = True
        self.set_policy(policy)
        self.writer = writer
        self.seq = 0
        self.workflows: dict[str, br.WorkflowRuntime] = {}
        self.glob = br.GlobalRuntime(policy.breakers.global_)
        self.artifact_default: str | None = None
        #: A versioned store is attached: the regression rule may roll back.
        self.versioned = False
        #: Per-method calibrated thresholds, fed by the results (see ``_calibration``).
        self.calibration = Calibrator(policy.calibration)
        #: The scopes (``workflow``, ``global``) whose windows the fleet decides while its link
        #: is up (see ``_fleet_inputs``); empty: this host decides. Local windows still count.
        self.fleet_scopes: frozenset[str] = frozenset()
        #: Workflows whose fleet probe lease this host holds, and until when (monotonic).
        self.probe_permits: dict[str, float] = {}
        # (monotonic, wall) of one instant: the wall time of a change when the caller records
        # nothing and so passes no ``ts``.
        self._anchor = anchor

    # -- events ----------------------------------------------------------------------------

    def emit(
        self,
        events: list[DecisionEvent],
        kind: EventKind,
        ts: datetime | None,
        trace: Trace,
        workflow_id: str | None,
        step_id: str | None,
        state: ExecutionState | None,
        **fields: Any,
    ) -> None:
        """Append one decision event with the next ``seq``."""
        self.seq += 1
        # ``fields`` is this call's own dict: it becomes the event's attributes as it is.
        fields["seq"] = self.seq
        fields["ts"] = ts
        fields["writer"] = self.writer
        fields["kind"] = kind
        fields["workflow_id"] = workflow_id
        fields["step_id"] = step_id
        fields["state"] = state
        fields["policy_version"] = self.policy_version
        fields["trace_id"], fields["span_id"] = trace
        events.append(new_event(fields))

    def record(
        self,
        at: At,
        kind: EventKind,
        workflow_id: str | None = None,
        step_id: str | None = None,
        state: ExecutionState | None = None,
        **fields: Any,
    ) -> None:
        """:meth:`emit` for an input that took ``at``: nothing when it records nothing."""
        if at.events is not None:
            self.emit(at.events, kind, at.ts, at.trace, workflow_id, step_id, state, **fields)

    def repeat(
        self,
        events: list[DecisionEvent],
        template: Template,
        ts: datetime | None,
        trace: Trace,
        result: StepResult | None = None,
    ) -> None:
        """Append a repetition of ``template`` with the next ``seq`` (and a result's scores).

        The same event :meth:`emit` would build for the same decision, at the cost of a dict
        copy: the common decisions (a clean gate or result in RUNNING) take this way.
        """
        self.seq += 1
        fields = template.fields.copy()
        fields["seq"] = self.seq
        fields["ts"] = ts
        fields["trace_id"], fields["span_id"] = trace
        if result is not None:
            fields["confidence"] = result.confidence
            fields["second_best"] = result.second_best
            fields["duration_s"] = result.duration_s
            fields["details"] = result.details
        events.append(new_event(fields))

    def set_policy(self, policy: PolicyConfig) -> None:
        """Put ``policy`` in force, caching what the hot path reads of it.

        (Reading pydantic attributes costs more than the rest of a repeated event.)
        """
        self.policy = policy
        self.policy_version = policy.version
        self.record_allowed_gates = policy.audit.record_allowed_gates

    def wall(self, now: float, ts: datetime | None) -> datetime:
        """Return ``ts``, or the wall time of ``now`` derived from the anchor."""
        if ts is not None:
            return ts
        mono, wall = self._anchor
        return wall + timedelta(seconds=now - mono)

    # -- workflows and transitions ---------------------------------------------------------

    def workflow(self, workflow_id: str, at: At) -> br.WorkflowRuntime:
        """Return the workflow's runtime, creating it (PAUSED during a global pause)."""
        wf = self.workflows.get(workflow_id)
        if wf is not None:
            return wf
        check_id("workflow_id", workflow_id)
        wf = br.WorkflowRuntime(
            workflow_id, self.policy.for_workflow(workflow_id), at.now, self.wall(at.now, at.ts)
        )
        if self.artifact_default is not None:
            wf.activate(self.artifact_default)
        self.workflows[workflow_id] = wf
        glob = self.glob
        if glob.paused:
            rule = glob.rule or Rule.GLOBAL_FAILURE_WINDOW
            self.move(wf, PAUSED, Cause.GLOBAL_BREAKER, at, rule, glob.reason)
        return wf

    def move(
        self,
        wf: br.WorkflowRuntime,
        target: ExecutionState,
        cause: Cause,
        at: At,
        rule: RuleFiring | str,
        message: str,
        *,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Change a workflow's state along a legal edge, record it, apply the edge's resets."""
        source = wf.state
        taken = edge(wf.workflow_id, source, target, cause)
        now = at.now
        wall = self.wall(now, at.ts)
        spent = now - wf.since_monotonic
        firing = rule if isinstance(rule, RuleFiring) else None
        code = firing.rule if firing is not None else str(rule)
        wf.previous_state, wf.state = source, target
        wf.since, wf.since_monotonic = wall, now
        wf.reason, wf.rule, wf.actor = message, firing, actor
        wf.refresh()
        wf.remember(
            {
                "ts": wall.isoformat(),
                "from": source.value,
                "to": target.value,
                "cause": cause.value,
                "reason": code,
                "message": message,
                "actor": actor,
            },
            error=False,
        )
        quarantined = self.glob.quarantined
        if source is QUARANTINED:
            quarantined.discard(wf.workflow_id)
            wf.probe_step = wf.probe_deadline = None
        if target is QUARANTINED:
            quarantined.add(wf.workflow_id)
            wf.probe_ready_at = now + wf.probe_cooldown
        if at.events is not None:
            self.emit(
                at.events,
                EventKind.TRANSITION,
                at.ts,
                at.trace,
                wf.workflow_id,
                None,
                target,
                previous_state=source,
                reason=code,
                message=message,
                rule=firing,
                cause=cause.value,
                actor=actor,
                artifact_version=wf.artifact_version,
                counts={"workflow_window": wf.window.total(now)},
                details={"time_in_previous_state_s": round(spent, 6), **(details or {})},
            )
        resets = taken.resets
        if resets:
            if Reset.WORKFLOW_WINDOW in resets:
                wf.window.clear()
            if Reset.STEPS in resets:
                wf.reset_steps()
            if Reset.PROBE_COOLDOWN in resets:
                wf.probe_cooldown = wf.policy.quarantine.probe_cooldown_seconds

    def operator_move(
        self,
        wf: br.WorkflowRuntime,
        target: ExecutionState,
        reason: str,
        actor: str,
        at: At,
    ) -> None:
        """Move a workflow by an operator's hand (this process's or another writer's).

        Releasing a workflow the global breaker paused also lifts the global pause.
        """
        previous = wf.state
        self.move(wf, target, Cause.OPERATOR, at, Rule.OPERATOR, reason, actor=actor)
        if target in (RUNNING, DEGRADED) and previous is PAUSED and self.glob.paused:
            self.clear_global_pause(at, actor, f"released {wf.workflow_id!r}")

    def clear_global_pause(
        self,
        at: At,
        actor: str | None,
        reason: str,
        *,
        cause: Cause = Cause.OPERATOR,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Lift the global pause and clear the global window (recorded)."""
        glob = self.glob
        if not glob.paused:
            return
        glob.paused = False
        glob.cause = None
        glob.window.clear()
        self.record(
            at,
            EventKind.GLOBAL,
            state=RUNNING,
            previous_state=PAUSED,
            reason=Reason.GLOBAL_RESUMED.value,
            message=reason,
            cause=cause.value,
            actor=actor,
            details=details or {},
        )

    def pause_all(
        self,
        firing: RuleFiring,
        at: At,
        *,
        cause: Cause = Cause.GLOBAL_BREAKER,
        message: str | None = None,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the global pause and move every RUNNING or DEGRADED workflow to PAUSED.

        Workflows are paused in the order of their ids, so a live run, a restarted one and
        a replay record the same transitions in the same order. ``cause`` is the global
        breaker's, or the fleet's when every host learns a pause decided elsewhere.
        """
        glob = self.glob
        glob.paused = True
        glob.cause = cause.value
        glob.paused_since = self.wall(at.now, at.ts)
        glob.rule = firing
        glob.reason = message if message is not None else firing.describe()
        self.record(
            at,
            EventKind.GLOBAL,
            state=PAUSED,
            previous_state=RUNNING,
            reason=firing.rule,
            message=glob.reason,
            rule=firing,
            cause=cause.value,
            actor=actor,
            details=details or {},
        )
        for _, wf in sorted(self.workflows.items()):
            if wf.state is RUNNING or wf.state is DEGRADED:
                self.move(
                    wf,
                    PAUSED,
                    cause,
                    at,
                    firing,
                    glob.reason,
                    actor=actor,
                    details=details,
                )
