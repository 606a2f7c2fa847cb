"""Periodic work on the hooks' thread, outside the lock: policy hot reload and the shared log.

Checked at most every ``check_interval_seconds`` / ``sync_interval_seconds`` of the injected
clock; nothing here ever raises into an executor's hook.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC
from typing import Any

from ._errors import InvalidInputError
from ._events import DecisionEvent, RuleFiring
from ._models import ExecutionState
from ._policy import PolicyConfig
from ._semconv import EventKind, Rule
from ._state import (
    PAUSED,
    ROLLBACK,
    ManagerState,
)
from ._transitions import Cause, is_legal

_log = logging.getLogger("autoheal_otel")


class PollingMixin(ManagerState):
    """Periodic work on the hooks' thread, outside the lock: policy hot reload and the shared log."""

    def update_policy(self, policy: PolicyConfig) -> None:
        """Apply a new policy now (recorded as a policy reload)."""
        if not isinstance(policy, PolicyConfig):
            raise InvalidInputError("policy", policy, "must be a PolicyConfig")
        self._apply_policy(policy, self._monotonic(), source="api")

    # -- policy (called without the lock) ----------------------------------------------------

    def _poll(self, now: float) -> None:
        """Run the periodic checks that are due: the policy file and the shared global scope."""
        if now >= self._sync_at:
            self._sync_at = now + self._policy.breakers.global_.sync_interval_seconds
            try:
                self._sync_global(now)
            except Exception:  # reading other processes' logs must never break a hook
                _log.exception("autoheal could not read the shared audit log")
        if self._watcher is not None and now >= self._watcher.next_check:
            self._poll_policy(now)
        self._poll_at = min(self._watcher.next_check if self._watcher else math.inf, self._sync_at)

    def _sync_global(self, now: float) -> None:
        """Read the shared audit log: other processes' failures, pauses and operator moves.

        Counts every process's failures in the global window, follows a global pause another
        process recorded, and applies operator moves and resumes that other writers (an
        ``autoheal force``, another executor) recorded since the last look — without recording
        them again: their own record is the audit entry.
        """
        from .analytics import AuditAnalytics

        assert self.data_dir is not None
        if self._analytics is None:
            self._analytics = AuditAnalytics(self.data_dir)
        db = self._analytics
        started = self._monotonic()
        db.refresh()
        gp = self._policy.breakers.global_
        wall = self._clock.now()
        foreign = db.query(
            "foreign_operator_actions", writer=self.writer, since=self._foreign_since
        )
        if foreign:
            self._apply_foreign(foreign, now)
        rows = db.query(
            "global_window",
            as_of=wall,
            window_seconds=gp.window_seconds,
            triggers=[t.value for t in gp.counted_triggers],
        )
        count = sum(int(r["failures"]) for r in rows)
        state = db.query("global_state", as_of=wall)
        self.record_operation("query", self._monotonic() - started)
        paused_elsewhere = bool(state) and state[0]["state"] == PAUSED.value
        events: list[DecisionEvent] = []
        with self._lock:
            if self._global.paused:
                return
            if count >= gp.failure_threshold or paused_elsewhere:
                firing = RuleFiring(
                    Rule.GLOBAL_FAILURE_WINDOW,
                    "global",
                    "*",
                    max(count, gp.failure_threshold) if paused_elsewhere else count,
                    gp.failure_threshold,
                    gp.window_seconds,
                )
                self._pause_all(firing, now, wall, events)
                if self._publisher.sinks:
                    self._publisher.enqueue(events)
        self._publisher.drain()

    def _apply_foreign(self, actions: list[dict[str, Any]], now: float) -> None:
        """Apply other writers' operator moves and resumes to the in-memory state (no events)."""
        with self._lock:
            for action in actions:
                self._foreign_since = max(self._foreign_since, action["ts"].replace(tzinfo=UTC))
                if action["kind"] == EventKind.GLOBAL:
                    if self._global.paused:
                        self._global.paused = False
                        self._global.window.clear()
                    continue
                target = ExecutionState(action["state"])
                wf = self._workflows.get(action["workflow_id"])
                if wf is None:
                    wf = self._add_workflow(action["workflow_id"], now, None, None)
                if wf.state is target or target is ROLLBACK:
                    continue  # a rollback's restore was done by the writer that recorded it
                if not is_legal(wf.state, target, Cause.OPERATOR):
                    _log.warning(
                        "autoheal ignores %s's move of %r from %s to %s: not an operator edge",
                        action["writer"],
                        wf.workflow_id,
                        wf.state.value,
                        target.value,
                    )
                    continue
                self._operator_move(
                    wf,
                    target,
                    action["message"] or "operator",
                    action["actor"] or "operator",
                    now,
                    None,
                    None,
                )

    def _poll_policy(self, now: float) -> None:
        watcher = self._watcher
        if watcher is None:
            return
        change = watcher.poll(now)
        if change is None:
            return
        if change.policy is not None:
            self._apply_policy(change.policy, now, source=str(watcher.path))
            return
        assert change.error is not None
        self.last_policy_error = change.error
        _log.warning("autoheal policy rejected, keeping the last good one: %s", change.error)
        ts = self._clock.now()
        with self._lock:
            if self._publisher.sinks:
                events: list[DecisionEvent] = []
                self._emit(
                    events,
                    EventKind.POLICY_REJECTED,
                    ts,
                    now,
                    None,
                    None,
                    None,
                    reason="policy.rejected",
                    message=str(change.error),
                    details={"field": change.error.field, "source": change.error.source},
                )
                self._publisher.enqueue(events)
        self._publisher.drain()

    def _apply_policy(self, policy: PolicyConfig, now: float, source: str) -> None:
        ts = self._clock.now()
        with self._lock:
            old = self._policy
            self._policy = policy
            self._policy_version = policy.version
            self.last_policy_error = None
            for wid, wf in self._workflows.items():
                wf.policy = policy.for_workflow(wid)
                wf.refresh()
                wf.window.window_seconds = wf.policy.workflow_breaker.window_seconds
                for step in wf.steps.values():
                    if step.window is not None:
                        step.window.window_seconds = wf.policy.step_breaker.window_seconds
            self._global.window.window_seconds = policy.breakers.global_.window_seconds
            if self._watcher is not None:
                if policy.hot_reload.enabled:
                    self._watcher.interval = policy.hot_reload.check_interval_seconds
                else:
                    self._watcher.next_check = math.inf
            gp = policy.breakers.global_
            if self.data_dir is not None and gp.shared_across_processes:
                self._sync_at = min(self._sync_at, now + gp.sync_interval_seconds)
            else:
                self._sync_at = math.inf
            self._poll_at = min(
                self._watcher.next_check if self._watcher else math.inf, self._sync_at
            )
            if self._publisher.sinks:
                events: list[DecisionEvent] = []
                self._emit(
                    events,
                    EventKind.POLICY_RELOAD,
                    ts,
                    now,
                    None,
                    None,
                    None,
                    reason="policy.reloaded",
                    message=f"policy {old.version} -> {policy.version}",
                    details={
                        "source": source,
                        "previous_version": old.version,
                        "policy": policy.to_dict(),
                    },
                )
                self._publisher.enqueue(events)
        self._publisher.drain()
