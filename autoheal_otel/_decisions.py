"""The decisions behind the hooks: breakers, transitions, probes, the global pause.

Every method here runs with the manager's lock held and does only arithmetic on in-memory
state, the transition-table check and the building of events (see ``_manager``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import _breakers as br
from ._events import DecisionEvent, RuleFiring
from ._models import ExecutionState, StepResult, Trigger, check_id
from ._semconv import EventKind, Rule
from ._state import (
    DEGRADED,
    PAUSED,
    QUARANTINED,
    ROLLBACK,
    RUNNING,
    Events,
    ManagerState,
)
from ._transitions import Cause, check
from ._windows import SlidingWindow

_log = logging.getLogger("autoheal_otel")


class DecisionsMixin(ManagerState):
    """The decisions behind the hooks: breakers, transitions, probes, the global pause."""

    # -- internals (all called with the lock held unless said otherwise) -------------------

    def _emit(
        self,
        events: list[DecisionEvent],
        kind: EventKind,
        ts: datetime | None,
        now: float,
        workflow_id: str | None,
        step_id: str | None,
        state: ExecutionState | None,
        **fields: Any,
    ) -> None:
        self._seq += 1
        events.append(
            DecisionEvent(
                seq=self._seq,
                ts=ts,
                writer=self.writer,
                kind=kind,
                workflow_id=workflow_id,
                step_id=step_id,
                state=state,
                policy_version=self._policy_version,
                trace_id=self._trace[0],
                span_id=self._trace[1],
                **fields,
            )
        )

    def _add_workflow(
        self, workflow_id: str, now: float, ts: datetime | None, events: Events
    ) -> br.WorkflowRuntime:
        check_id("workflow_id", workflow_id)
        wall = ts if ts is not None else self._clock.now()
        wf = br.WorkflowRuntime(workflow_id, self._policy.for_workflow(workflow_id), now, wall)
        if self._artifact_default is not None:
            wf.activate(self._artifact_default)
        self._workflows[workflow_id] = wf
        if self._global.paused:
            self._move(
                wf,
                PAUSED,
                Cause.GLOBAL_BREAKER,
                now,
                ts,
                events,
                self._global.rule or Rule.GLOBAL_FAILURE_WINDOW,
                self._global.reason,
            )
        return wf

    def _move(
        self,
        wf: br.WorkflowRuntime,
        target: ExecutionState,
        cause: Cause,
        now: float,
        ts: datetime | None,
        events: Events,
        rule: RuleFiring | str,
        message: str,
        *,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Change a workflow's state along a legal edge, and record it."""
        source = wf.state
        check(wf.workflow_id, source, target, cause)
        wall = ts if ts is not None else self._clock.now()
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
        quarantined = self._global.quarantined
        if source is QUARANTINED:
            quarantined.discard(wf.workflow_id)
            wf.probe_step = wf.probe_deadline = None
        if target is QUARANTINED:
            quarantined.add(wf.workflow_id)
            wf.probe_ready_at = now + wf.probe_cooldown
        if events is not None:
            self._emit(
                events,
                EventKind.TRANSITION,
                ts,
                now,
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

    def _operator_move(
        self,
        wf: br.WorkflowRuntime,
        target: ExecutionState,
        reason: str,
        actor: str,
        now: float,
        ts: datetime | None,
        events: Events,
    ) -> None:
        """Move a workflow by hand; releasing it (RUNNING, DEGRADED) clears its counters."""
        previous = wf.state
        self._move(wf, target, Cause.OPERATOR, now, ts, events, Rule.OPERATOR, reason, actor=actor)
        if target in (RUNNING, DEGRADED):
            self._release(wf, previous, now, ts, events, actor)

    def _release(
        self,
        wf: br.WorkflowRuntime,
        previous: ExecutionState,
        now: float,
        ts: datetime | None,
        events: Events,
        actor: str,
    ) -> None:
        wf.reset_counters()
        wf.probe_cooldown = wf.policy.quarantine.probe_cooldown_seconds
        if previous is PAUSED and self._global.paused:
            self._clear_global_pause(now, ts, events, actor, f"released {wf.workflow_id!r}")

    def _clear_global_pause(
        self, now: float, ts: datetime | None, events: Events, actor: str, reason: str
    ) -> None:
        glob = self._global
        if not glob.paused:
            return
        glob.paused = False
        glob.window.clear()
        if events is not None:
            self._emit(
                events,
                EventKind.GLOBAL,
                ts,
                now,
                None,
                None,
                RUNNING,
                previous_state=PAUSED,
                reason="global.resumed",
                message=reason,
                cause=Cause.OPERATOR.value,
                actor=actor,
            )

    def _degraded_reason(self, wf: br.WorkflowRuntime) -> str:
        p = wf.policy
        return (
            f"degraded: min confidence {p.confidence.degraded_threshold:.2f}, learning "
            f"{'frozen' if p.degraded.freeze_learning else 'on'}, recovery "
            f"{wf.recovery_streak}/{p.degraded.recovery_successes}"
        )

    def _blocked_gate(
        self, wf: br.WorkflowRuntime, step_id: str, now: float, ts: datetime | None, events: Events
    ) -> tuple[bool, str]:
        since = wf.since.isoformat(timespec="seconds").replace("+00:00", "Z")
        if wf.state is QUARANTINED and wf.policy.quarantine.probe_enabled:
            if (
                wf.probe_step is not None
                and wf.probe_deadline is not None
                and now >= wf.probe_deadline
            ):
                self._probe_failed(
                    wf, now, ts, events, "probe.expired", "the probe sent no result in time"
                )
            if wf.probe_step is None and wf.probe_ready_at is not None and now >= wf.probe_ready_at:
                wf.probe_step = step_id
                wf.probe_deadline = now + wf.policy.quarantine.probe_timeout_seconds
                if events is not None:
                    self._emit(
                        events,
                        EventKind.PROBE,
                        ts,
                        now,
                        wf.workflow_id,
                        step_id,
                        wf.state,
                        reason="probe.admitted",
                        message="half-open probe admitted",
                        rule=RuleFiring(Rule.QUARANTINE_PROBE, "workflow", wf.workflow_id, 1, 1),
                    )
                return True, f"quarantine probe: one trial step (quarantined since {since})"
            if wf.probe_step is not None:
                return (
                    False,
                    f"quarantined since {since}: probe in flight on step {wf.probe_step!r}",
                )
        return False, f"{wf.state.value} since {since}: {wf.reason}"

    def _degraded_success(
        self,
        wf: br.WorkflowRuntime,
        result: StepResult,
        now: float,
        ts: datetime | None,
        events: Events,
    ) -> None:
        if not br.counts_toward_recovery(result, wf.policy):
            wf.recovery_streak = 0
            return
        wf.recovery_streak += 1
        needed = wf.policy.degraded.recovery_successes
        if wf.recovery_streak >= needed:
            firing = RuleFiring(
                Rule.DEGRADED_RECOVERY, "workflow", wf.workflow_id, wf.recovery_streak, needed
            )
            self._move(
                wf,
                RUNNING,
                Cause.RECOVERY,
                now,
                ts,
                events,
                firing,
                f"recovered: {wf.recovery_streak} consecutive validated successes",
            )
            wf.reset_steps()

    def _signal(
        self,
        wf: br.WorkflowRuntime,
        step: br.StepRuntime,
        step_id: str,
        result: StepResult,
        c: br.Classification,
        now: float,
        ts: datetime | None,
        events: Events,
    ) -> None:
        """Count a failing or suspicious result and apply the breakers."""
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
        gpolicy = self._policy.breakers.global_
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
            threshold = policy.step_breaker.window_failure_threshold
            if threshold is not None:
                if step.window is None:
                    step.window = SlidingWindow(policy.step_breaker.window_seconds)
                step.window.add(now, trigger)
        if trigger in gpolicy.counted_triggers:
            self._global.window.add(now, trigger)
        new_quarantine = False
        if state is RUNNING or state is DEGRADED:
            firing = br.workflow_rule(wf, now) if counted else None
            if firing is not None:
                self._move(
                    wf,
                    QUARANTINED,
                    Cause.WORKFLOW_BREAKER,
                    now,
                    ts,
                    events,
                    firing,
                    firing.describe(),
                )
                new_quarantine = True
            elif state is RUNNING:
                firing = br.step_rule(step, step_id, policy, now)
                if firing is not None:
                    self._move(
                        wf, DEGRADED, Cause.STEP_BREAKER, now, ts, events, firing, firing.describe()
                    )
        elif state is QUARANTINED and wf.probe_step == step_id:
            self._probe_result(wf, result, False, now, ts, events)
        firing = br.global_rule(self._global, gpolicy, now, new_quarantine)
        if firing is not None:
            self._pause_all(firing, now, ts, events)

    def _probe_result(
        self,
        wf: br.WorkflowRuntime,
        result: StepResult,
        clean: bool,
        now: float,
        ts: datetime | None,
        events: Events,
    ) -> None:
        if clean and br.counts_toward_recovery(result, wf.policy):
            target = DEGRADED if wf.policy.quarantine.release_to == "degraded" else RUNNING
            firing = RuleFiring(Rule.QUARANTINE_PROBE, "workflow", wf.workflow_id, 1, 1)
            self._move(
                wf,
                target,
                Cause.PROBE_SUCCESS,
                now,
                ts,
                events,
                firing,
                "released: the half-open probe succeeded",
            )
            wf.reset_counters()
            wf.probe_cooldown = wf.policy.quarantine.probe_cooldown_seconds
        else:
            self._probe_failed(wf, now, ts, events, "probe.failed", "the half-open probe failed")

    def _probe_failed(
        self,
        wf: br.WorkflowRuntime,
        now: float,
        ts: datetime | None,
        events: Events,
        code: str,
        message: str,
    ) -> None:
        q = wf.policy.quarantine
        wf.probe_cooldown = min(
            wf.probe_cooldown * q.probe_backoff_factor, q.probe_max_cooldown_seconds
        )
        wf.probe_ready_at = now + wf.probe_cooldown
        step_id, wf.probe_step, wf.probe_deadline = wf.probe_step, None, None
        if events is not None:
            self._emit(
                events,
                EventKind.PROBE,
                ts,
                now,
                wf.workflow_id,
                step_id,
                wf.state,
                reason=code,
                message=f"{message}; next probe in {wf.probe_cooldown:g} s",
            )

    def _pause_all(
        self, firing: RuleFiring, now: float, ts: datetime | None, events: Events
    ) -> None:
        glob = self._global
        glob.paused = True
        glob.paused_since = ts if ts is not None else self._clock.now()
        glob.rule = firing
        glob.reason = firing.describe()
        if events is not None:
            self._emit(
                events,
                EventKind.GLOBAL,
                ts,
                now,
                None,
                None,
                PAUSED,
                previous_state=RUNNING,
                reason=firing.rule,
                message=glob.reason,
                rule=firing,
                cause=Cause.GLOBAL_BREAKER.value,
            )
        for wf in self._workflows.values():
            if wf.state is RUNNING or wf.state is DEGRADED:
                self._move(wf, PAUSED, Cause.GLOBAL_BREAKER, now, ts, events, firing, glob.reason)

    def _judge_version(
        self, wf: br.WorkflowRuntime, now: float, ts: datetime | None, events: Events
    ) -> tuple[str, Any] | None:
        """Apply the regression rule to a workflow's active version (under the lock).

        Returns what must happen after the lock: a restore, or marking the set known-good.
        """
        from .analytics.regression import evaluate

        policy = self._policy.rollback
        previous, active = wf.previous_and_active()
        verdict = evaluate(wf.workflow_id, previous, active, policy)
        if (
            verdict.verdict == "fail"
            and policy.enabled
            and self.store is not None
            and (wf.state is RUNNING or wf.state is DEGRADED)
        ):
            firing = RuleFiring(
                Rule.ROLLBACK_REGRESSION,
                "workflow",
                wf.workflow_id,
                round(verdict.drop_points or 0.0),
                int(policy.success_rate_drop_points),
            )
            self._move(
                wf,
                ROLLBACK,
                Cause.REGRESSION,
                now,
                ts,
                events,
                firing,
                verdict.reason,
                details=verdict.to_dict(),
            )
            return ("restore", (wf.workflow_id, verdict))
        if verdict.verdict == "pass" and policy.mark_known_good and self.store is not None:
            return ("known_good", (wf.workflow_id, verdict))
        return None
