"""The state machine: every decision, as a pure function of its inputs.

A :class:`Machine` is driven by values only. Each input carries its own time (``now`` on the
monotonic clock, ``ts`` on the wall clock, or None when nothing is recorded) and the trace ids
of the span it belongs to; it appends the decision events it makes to ``events`` (None: record
nothing) and returns follow-up actions as values (:class:`Restore`, :class:`MarkKnownGood`) for
the caller to carry out. Every input takes the four as one frozen :class:`~._ledger.At`, except
the executor's two hooks, :meth:`~Machine.gate` and :meth:`~Machine.result`: they take them as
four arguments, because building the value costs about four times passing them, on every step,
and build an ``At`` only when they leave their common path (a new workflow, a blocked gate, a
failure, a transition). It reads no clock, does no I/O, takes no lock and knows no telemetry.
Live hooks, the warm restart and replay drive this same machine through the same inputs, so a
replay reproduces operator moves, probes, rollbacks and policy reloads by construction.

Inputs. Every input is a method of :class:`Machine`. The hooks' and the operator's are defined
here: :meth:`~Machine.gate`, :meth:`~Machine.result` (which counts failures and applies the
step, workflow and global rules), :meth:`~Machine.operator`, :meth:`~Machine.resume_all`,
:meth:`~Machine.restore_done` and :meth:`~Machine.take_facts` (other processes' decisions). The
others come from :class:`~._inputs.Inputs` and delegate to the rule module of their concern
(upkeep, the fleet, calibration, checkpoints, other writers' moves, labels). A collaborator
changes the machine only by handing one of these methods to the manager's one input path, and
reads the state through :attr:`Machine.view` (read-only) or asks for a :meth:`~Machine.report`
or a :meth:`~Machine.checkpoint`. The state, which the machine owns, and the one way to change
it live in :class:`~._ledger.Ledger`; the rules in :mod:`~._breakers` and :mod:`~._probe`; the
version judgment in :mod:`~._versions`; the transition table in :mod:`~._transitions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..base._events import DecisionEvent, Template
from ..base._models import ExecutionState, Outcome, StepResult, Trigger, check_id
from ..policy._config import PolicyConfig
from ..semconv import Cause, EventKind, Reason, Rule, blocked_reason
from . import _breakers as br
from . import _calibration, _probe, _versions
from ._facts import Fact, apply_facts
from ._inputs import Inputs
from ._ledger import At, Events, Ledger, Notes, Trace
from ._queries import Queries
from ._versions import Action, MarkKnownGood, Restore
from ._windows import SlidingWindow

__all__ = ["Action", "Machine", "MarkKnownGood", "Restore"]

RUNNING = ExecutionState.RUNNING
_SUCCESS = Outcome.SUCCESS
DEGRADED = ExecutionState.DEGRADED
QUARANTINED = ExecutionState.QUARANTINED
ROLLBACK = ExecutionState.ROLLBACK
PAUSED = ExecutionState.PAUSED


class Machine(Inputs, Queries):
    """The per-workflow state machine and the global scope (see the module docstring)."""

    def __init__(self, policy: PolicyConfig, writer: str, anchor: tuple[float, datetime]) -> None:
        self._ledger = Ledger(policy, writer, anchor)
        # The ledger's dict, never replaced: one attribute read on the hot path.
        self._workflows = self._ledger.workflows

    # -- the hooks' inputs -----------------------------------------------------------------

    def gate(
        self,
        workflow_id: str,
        step_id: str,
        now: float,
        ts: datetime | None,
        trace: Trace,
        events: Events,
    ) -> tuple[bool, str]:
        """Input: the executor asks whether a step may run. Returns (allowed, reason)."""
        wf = self._workflows.get(workflow_id)
        if wf is None:
            wf = self._ledger.workflow(workflow_id, At(now, ts, trace, events))
        step = wf.steps.get(step_id)
        if step is None:
            step = wf.steps[check_id("step_id", step_id)] = br.StepRuntime()
        state = wf.state
        ledger = self._ledger
        if state is RUNNING:
            if events is not None and ledger.record_allowed_gates:
                # The common decision: a repetition of this step's clean gate.
                key = (ledger.policy_version, wf.artifact_version)
                template = step.gate_template
                if template is not None and template.key == key:
                    ledger.repeat(events, template, ts, trace)
                else:
                    self._emit_gate(wf, step_id, True, "running", ts, trace, events)
                    step.gate_template = Template.of(events[-1], key)
            return True, "running"
        if state is DEGRADED:
            allowed, reason = True, _probe.degraded_reason(wf)
        else:
            allowed, reason = _probe.blocked_gate(ledger, wf, step_id, At(now, ts, trace, events))
        if events is not None:
            self._emit_gate(wf, step_id, allowed, reason, ts, trace, events)
        return allowed, reason

    def _emit_gate(
        self,
        wf: br.WorkflowRuntime,
        step_id: str,
        allowed: bool,
        reason: str,
        ts: datetime | None,
        trace: Trace,
        events: list[DecisionEvent],
    ) -> None:
        self._ledger.emit(
            events,
            EventKind.GATE,
            ts,
            trace,
            wf.workflow_id,
            step_id,
            wf.state,
            reason=Reason.OK.value if allowed else blocked_reason(wf.state.value),
            message=reason,
            allowed=allowed,
            artifact_version=wf.artifact_version,
        )

    def result(
        self,
        workflow_id: str,
        step_id: str,
        result: StepResult,
        now: float,
        ts: datetime | None,
        trace: Trace,
        events: Events,
    ) -> Action:
        """Input: what happened when a step ran. Returns a follow-up action, if any."""
        wf = self._workflows.get(workflow_id)
        if wf is None:
            wf = self._ledger.workflow(workflow_id, At(now, ts, trace, events))
        step = wf.steps.get(step_id)
        if step is None:
            step = wf.steps[check_id("step_id", step_id)] = br.StepRuntime()
        wf.executions += 1
        state = wf.state
        conf = result.confidence
        # WorkflowRuntime.is_clean inlined as a shortcut (a method call here cost 10-25 % of a
        # whole step, bench/hot_path.py); what it does not call clean, classify() decides with
        # is_clean itself, and a property test holds the shortcut to it.
        if result.outcome is _SUCCESS and (
            conf is None
            or (
                conf >= wf.floor
                and (
                    not wf.strict
                    or result.second_best is None
                    or conf - result.second_best >= wf.margin
                )
            )
        ):
            c = br.CLEAN
        else:
            c = br.classify(result, wf)
        if events is not None:
            if c.clean and state is RUNNING:
                # The common decision: a repetition of this step's clean result.
                key = (self._ledger.policy_version, wf.artifact_version, result.validated)
                template = step.result_template
                if template is not None and template.key == key:
                    self._ledger.repeat(events, template, ts, trace, result)
                else:
                    self._emit_result(wf, step_id, result, c, state, ts, trace, events)
                    step.result_template = Template.of(events[-1], key)
            else:
                self._emit_result(wf, step_id, result, c, state, ts, trace, events)
        if conf is not None:  # a match: it feeds its method's calibration window
            method = self._ledger.calibration.offer(result)
            if method is not None:  # calibration is on: the threshold may have moved
                _calibration.evaluate(self._ledger, method, now, ts, trace, events)
        action: Action = None
        if wf.artifact_version is not None:
            action = _versions.count(self._ledger, wf, result, now, ts, trace, events)
        if c.clean:
            step.consecutive_target_not_found = 0
            step.consecutive_low_confidence = 0
            # The state now: the version's judgment may have just rolled the workflow back.
            state = wf.state
            if state is DEGRADED:
                _probe.degraded_success(self._ledger, wf, result, At(now, ts, trace, events))
            elif state is QUARANTINED and wf.probe_step == step_id:
                _probe.probe_result(self._ledger, wf, result, True, At(now, ts, trace, events))
        else:
            self._count_failure(wf, step, step_id, result, c, At(now, ts, trace, events))
        return action

    def _emit_result(
        self,
        wf: br.WorkflowRuntime,
        step_id: str,
        result: StepResult,
        c: br.Classification,
        state: ExecutionState,
        ts: datetime | None,
        trace: Trace,
        events: list[DecisionEvent],
    ) -> None:
        self._ledger.emit(
            events,
            EventKind.RESULT,
            ts,
            trace,
            wf.workflow_id,
            step_id,
            state,
            reason=c.primary.value if c.primary else Reason.OK.value,
            outcome=result.outcome,
            trigger=c.primary,
            signals=c.signals,
            confidence=result.confidence,
            second_best=result.second_best,
            validated=result.validated,
            duration_s=result.duration_s,
            details=result.details,
            artifact_version=wf.artifact_version,
            learning=state is RUNNING
            or (state is DEGRADED and not wf.policy.degraded.freeze_learning),
        )

    def operator(
        self,
        workflow_id: str,
        target: ExecutionState,
        reason: str,
        actor: str,
        at: At,
    ) -> Action:
        """Input: an operator moves a workflow (no-op when it is already there).

        Releasing a workflow paused by the global breaker also clears the global pause.
        Returns :class:`Restore` for a move into ROLLBACK. A workflow never seen, moved to
        where it would start, is not created: nothing is recorded of it, so nothing of it may
        be remembered either (a restart from the log would not know it).
        """
        if (
            workflow_id not in self._workflows
            and target is RUNNING
            and not self._ledger.glob.paused
        ):
            check_id("workflow_id", workflow_id)
            return None
        wf = self._ledger.workflow(workflow_id, at)
        if wf.state is target:
            return None
        self._ledger.operator_move(wf, target, reason, actor, at)
        if target is ROLLBACK:
            return Restore(workflow_id, reason, actor)
        return None

    def resume_all(
        self,
        target: ExecutionState,
        reason: str,
        actor: str,
        at: At,
    ) -> list[str]:
        """Input: release every PAUSED workflow and clear the global pause; return their ids."""
        released = [wid for wid, wf in sorted(self._ledger.workflows.items()) if wf.state is PAUSED]
        for wid in released:
            self._ledger.move(
                self._ledger.workflows[wid], target, Cause.OPERATOR, at, Rule.OPERATOR, reason,
                actor=actor,
            )  # fmt: skip
        self._ledger.clear_global_pause(at, actor, reason)
        return released

    # -- inputs from outside the hooks -----------------------------------------------------

    def restore_done(
        self,
        workflow_id: str,
        restored: str | None,
        error: str | None,
        actor: str,
        details: Mapping[str, Any] | None,
        at: At,
    ) -> bool:
        """Input: a restore finished (``restored`` names the set) or failed (``error``).

        Leaves ROLLBACK for DEGRADED, or PAUSED when the restore failed; returns False (and
        changes nothing) when the workflow is no longer in ROLLBACK.
        """
        return _versions.restore_done(
            self._ledger, workflow_id, restored, error, actor, details, at
        )

    def take_facts(self, facts: list[Fact], floor: float, notes: Notes, at: At) -> None:
        """Input: other processes' decisions (shared decisions), fed in their order, unrecorded
        (:func:`~._facts.apply_facts`); what to log goes to ``notes``."""
        apply_facts(self, self._ledger, facts, floor, notes, at)

    def _count_failure(
        self,
        wf: br.WorkflowRuntime,
        step: br.StepRuntime,
        step_id: str,
        result: StepResult,
        c: br.Classification,
        at: At,
    ) -> None:
        """Count a failing or suspicious result and apply the step, workflow and global rules.

        A failing result adds one entry per scope whose ``counted_triggers`` hold its trigger.
        """
        ledger = self._ledger
        now = at.now
        trigger = c.primary
        assert trigger is not None  # only clean results have none
        if Trigger.TARGET_NOT_FOUND in c.signals:
            step.consecutive_target_not_found += 1
        else:
            step.consecutive_target_not_found = 0
        step.consecutive_low_confidence = (
            step.consecutive_low_confidence + 1 if c.low_confidence else 0
        )
        wf.recovery_streak = 0
        state = wf.state
        policy = wf.policy
        glob = ledger.glob
        gpolicy = ledger.policy.breakers.global_
        counted = trigger in policy.workflow_breaker.counted_triggers
        if counted:
            wf.window.add(now, trigger)
            wf.failures += 1
            wf.remember(
                {
                    "step_id": step_id,
                    "trigger": trigger.value,
                    "outcome": result.outcome.value,
                    "confidence": result.confidence,
                    "monotonic": now,
                },
                error=True,
            )
            if policy.step_breaker.window_failure_threshold is not None:
                if step.window is None:
                    step.window = SlidingWindow(policy.step_breaker.window_seconds)
                step.window.add(now, trigger)
        if trigger in gpolicy.counted_triggers:
            glob.window.add(now, trigger)
        new_quarantine = False
        if state is RUNNING or state is DEGRADED:
            # With the fleet link up the fleet decides this window (every host's failures).
            firing = (
                br.workflow_rule(wf, now)
                if counted and "workflow" not in ledger.fleet_scopes
                else None
            )
            if firing is not None:
                ledger.move(
                    wf,
                    QUARANTINED,
                    Cause.WORKFLOW_BREAKER,
                    at,
                    firing,
                    firing.describe(),
                )
                new_quarantine = True
            elif state is RUNNING:
                firing = br.step_rule(step, step_id, policy, now)
                if firing is not None:
                    ledger.move(
                        wf,
                        DEGRADED,
                        Cause.STEP_BREAKER,
                        at,
                        firing,
                        firing.describe(),
                    )
        elif state is QUARANTINED and wf.probe_step == step_id:
            _probe.probe_result(ledger, wf, result, False, at)
        firing = br.global_rule(
            glob, gpolicy, now, new_quarantine, windowed="global" not in ledger.fleet_scopes
        )
        if firing is not None:
            ledger.pause_all(firing, at)
