"""The executor-facing facade: hooks, transitions and the lock.

Invariants (see STYLE "The hot path"):
- each hook reads the injected clock before taking the lock; under the lock there is only
  arithmetic on in-memory state, the transition-table check and the building of immutable
  events; no I/O, no logging, no telemetry, no user code;
- every state change goes through :meth:`AutoHealManager._move`, which checks the transition
  table, so a workflow is always in a legal state reached by a legal edge;
- a blocked state (QUARANTINED, ROLLBACK, PAUSED) admits no step, except the single half-open
  probe of a quarantine when the policy enables it;
- events are published after the lock, in ``seq`` order; a failing sink never reaches the hook.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from . import _breakers as br
from ._clock import Clock, SystemClock
from ._errors import InvalidInputError, LearningFrozenError, ManagerClosedError, PolicyError
from ._events import DecisionEvent, EventSink, Publisher, RuleFiring
from ._models import (
    EffectiveSettings,
    ExecutionState,
    ExecutionStateInfo,
    Outcome,
    StepResult,
    Trigger,
    check_id,
)
from ._policy import PolicyConfig
from ._policy_watch import PolicyWatcher
from ._report import StatusReport, build_report, effective_settings
from ._semconv import SPAN_FORCE, SPAN_GATE, SPAN_RESULT, SPAN_ROLLBACK, EventKind, Rule
from ._step import StepGuard, guard_decorator
from ._transitions import Cause, check
from ._version import __version__
from ._warm import apply_restored
from ._windows import SlidingWindow
from .sinks.jsonl import JsonlAuditSink, new_writer_id
from .sinks.otel import OTelSink, resolve_providers
from .sinks.sqlite import SuccessStore
from .versioning import VersionedStore

__all__ = ["AutoHealManager"]

_log = logging.getLogger("autoheal_otel")

RUNNING = ExecutionState.RUNNING
DEGRADED = ExecutionState.DEGRADED
QUARANTINED = ExecutionState.QUARANTINED
ROLLBACK = ExecutionState.ROLLBACK
PAUSED = ExecutionState.PAUSED
SUCCESS = Outcome.SUCCESS

Events = list[DecisionEvent] | None
_NO_TRACE: tuple[str | None, str | None] = (None, None)


class AutoHealManager:
    """Decide, per step, whether a workflow continues, continues carefully, or stops.

    Args:
        policy: a path to ``auto_heal_policy.json`` (re-checked every
            ``hot_reload.check_interval_seconds``), a :class:`PolicyConfig`, or None for the
            defaults.
        data_dir: where the audit log and learned artifacts live (None: memory only).
        clock: the time source; inject :class:`autoheal_otel.testing.FakeClock` in tests.
        tracer_provider, meter_provider: OpenTelemetry providers (None: the globals).
        sinks: extra event sinks, each receiving every decision in order.

    Raises:
        PolicyError: the initial policy file is missing or invalid (later bad edits never
            raise: the last good policy stays in force).
    """

    def __init__(
        self,
        policy: PolicyConfig | str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        sinks: Iterable[EventSink] = (),
        *,
        logger_provider: Any = None,
        writer: str | None = None,
        store: VersionedStore | None = None,
        integrations: Iterable[Any] = (),
        read_only: bool = False,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._monotonic: Callable[[], float] = self._clock.monotonic
        now = self._monotonic()
        self._watcher: PolicyWatcher | None = None
        if policy is None:
            self._policy = PolicyConfig()
        elif isinstance(policy, PolicyConfig):
            self._policy = policy
        elif isinstance(policy, str | os.PathLike):
            path = Path(policy)
            self._policy = PolicyConfig.load(path)
            if self._policy.hot_reload.enabled:
                interval = self._policy.hot_reload.check_interval_seconds
                self._watcher = PolicyWatcher(path, interval, now)
        else:
            raise InvalidInputError("policy", policy, "must be a path, a PolicyConfig or None")
        # Cached: reading a pydantic private attribute costs more than the rest of an event.
        self._policy_version = self._policy.version
        self._lock = threading.Lock()
        self._workflows: dict[str, br.WorkflowRuntime] = {}
        self._global = br.GlobalRuntime(self._policy.breakers.global_)
        self._publisher = Publisher()
        self._seq = 0
        # The current hook's span ids (hex); set and read by _emit under the lock.
        self._trace: tuple[str | None, str | None] = _NO_TRACE
        self._closed = False
        self.last_policy_error: PolicyError | None = None
        self.writer = writer or new_writer_id()
        self.store: VersionedStore | None = None
        self._artifact_default: str | None = None
        self._known_good_label: str | None = None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.audit: JsonlAuditSink | None = None
        self.success_store: SuccessStore | None = None
        self._analytics: Any = None
        restored: dict[str, int] = {}
        self.read_only = read_only
        if self.data_dir is not None:
            restored = self._open_data_dir(self.data_dir, now, read_only)
        providers = resolve_providers(tracer_provider, meter_provider, logger_provider)
        self._otel: OTelSink | None = None
        #: Calibrated per-method thresholds (set by a PrecisionTracker), read by the settings.
        self.threshold_provider: Callable[[], dict[str, float]] | None = None
        self.meter: Any = None
        if providers[1] is not None:
            self.meter = providers[1].get_meter("autoheal_otel.integrations", __version__)
        if any(p is not None for p in providers):
            self._otel = OTelSink(
                *providers,
                snapshot=self._gauge_snapshot,
                sink_errors=self._sink_error_counts,
                dropped=lambda: {"JsonlAuditSink": self.audit.dropped} if self.audit else {},
                version=__version__,
            )
            self._publisher.add(self._otel)
        if self._otel is not None and self.data_dir is not None:
            self._otel.record_operation("warm_restart", self._monotonic() - now)
        for sink in sinks:
            self._publisher.add(sink)
        for integration in integrations:
            self.add_integration(integration)
        if store is not None:
            self.attach_store(store)
        self._sync_at = math.inf
        if self.data_dir is not None and self._policy.breakers.global_.shared_across_processes:
            self._sync_at = now + self._policy.breakers.global_.sync_interval_seconds
        self._poll_at = min(self._watcher.next_check if self._watcher else math.inf, self._sync_at)
        if self.audit is not None:  # session records exist for the audit log (and replay)
            events: list[DecisionEvent] = []
            with self._lock:
                self._emit(
                    events,
                    EventKind.SESSION,
                    self._clock.now(),
                    now,
                    None,
                    None,
                    None,
                    reason="session.start",
                    message=f"manager started (writer {self.writer})",
                    details={
                        "writer": self.writer,
                        "policy": self._policy.to_dict(),
                        "restored": restored,
                    },
                )
                self._publisher.enqueue(events)
            self._publisher.drain()

    def _open_data_dir(self, data_dir: Path, now: float, read_only: bool) -> dict[str, int]:
        """Create the data directory's sinks and rebuild state from its audit log.

        ``read_only`` rebuilds the state and writes nothing (``autoheal status``).
        """
        try:
            if not read_only:
                data_dir.mkdir(parents=True, exist_ok=True)
            restored: dict[str, int] = {}
            if any((data_dir / "audit").glob("**/*.*")):
                from .analytics.restore import load_restored_state

                wall = self._clock.now()
                state = load_restored_state(data_dir, self._policy, wall)
                restored = apply_restored(
                    state, self._workflows, self._global, self._policy, now, wall
                )
                self._seq = state.max_seq
            if read_only:
                return restored
            self.audit = JsonlAuditSink(data_dir, self._policy.audit, self.writer)
            self._publisher.add(self.audit)
            self.success_store = SuccessStore(data_dir, self.writer)
            self._publisher.add(self.success_store)
        except OSError as exc:
            raise InvalidInputError(
                "data_dir", str(data_dir), f"must be a writable directory ({exc.strerror})"
            ) from exc
        return restored

    # -- hooks -----------------------------------------------------------------------------

    def should_execute_step(self, workflow_id: str, step_id: str) -> tuple[bool, str]:
        """Ask whether the executor may run a step now.

        Returns:
            ``(allowed, reason)``: True with the mode (``"running"``, ``"degraded: ..."``),
            or False with why and since when the workflow is blocked.
        """
        now = self._monotonic()
        if now >= self._poll_at:
            self._poll(now)
        otel = self._otel
        span = otel.start_span(SPAN_GATE, workflow_id, step_id) if otel is not None else None
        publisher = self._publisher
        ts = self._clock.now() if publisher.sinks else None
        events: Events = [] if ts is not None else None
        try:
            with self._lock:
                if self._closed:
                    raise ManagerClosedError("should_execute_step called after close()")
                self._trace = _span_ids(span) if span is not None else _NO_TRACE
                wf = self._workflows.get(workflow_id)
                if wf is None:
                    wf = self._add_workflow(workflow_id, now, ts, events)
                if step_id not in wf.steps:
                    wf.steps[check_id("step_id", step_id)] = br.StepRuntime()
                state = wf.state
                if state is RUNNING:
                    allowed, reason = True, "running"
                elif state is DEGRADED:
                    allowed, reason = True, self._degraded_reason(wf)
                else:
                    allowed, reason = self._blocked_gate(wf, step_id, now, ts, events)
                if events is not None and (
                    not allowed or state is not RUNNING or self._policy.audit.record_allowed_gates
                ):
                    self._emit(
                        events,
                        EventKind.GATE,
                        ts,
                        now,
                        wf.workflow_id,
                        step_id,
                        wf.state,
                        reason="ok" if allowed else f"blocked.{wf.state.value}",
                        message=reason,
                        allowed=allowed,
                        artifact_version=wf.artifact_version,
                    )
                if events:
                    publisher.enqueue(events)
        except BaseException as exc:
            _fail_span(span, exc)
            raise
        if events:
            publisher.drain()
        if otel is not None:
            otel.end_span(span, "should_execute_step", events, self._monotonic() - now)
        return allowed, reason

    def on_step_result(self, workflow_id: str, step_id: str, result: StepResult) -> None:
        """Record what happened when the executor ran a step, and apply the breakers.

        Raises:
            InvalidInputError: ``result`` is not a StepResult (or a mapping that makes one),
                or an id is empty, too long or has control characters.
        """
        if type(result) is not StepResult:
            result = _coerce_result(result)
        now = self._monotonic()
        if now >= self._poll_at:
            self._poll(now)
        otel = self._otel
        span = otel.start_span(SPAN_RESULT, workflow_id, step_id) if otel is not None else None
        publisher = self._publisher
        ts = self._clock.now() if publisher.sinks else None
        events: Events = [] if ts is not None else None
        pending: tuple[str, Any] | None = None
        try:
            with self._lock:
                if self._closed:
                    raise ManagerClosedError("on_step_result called after close()")
                self._trace = _span_ids(span) if span is not None else _NO_TRACE
                wf = self._workflows.get(workflow_id)
                if wf is None:
                    wf = self._add_workflow(workflow_id, now, ts, events)
                step = wf.steps.get(step_id)
                if step is None:
                    step = wf.steps[check_id("step_id", step_id)] = br.StepRuntime()
                wf.executions += 1
                state = wf.state
                conf = result.confidence
                # Inline test for the common case (a clean success); classify() decides the rest.
                if result.outcome is SUCCESS and (
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
                    c = br.classify(result, state, wf.policy)
                if events is not None:
                    self._emit(
                        events,
                        EventKind.RESULT,
                        ts,
                        now,
                        wf.workflow_id,
                        step_id,
                        state,
                        reason=c.primary.value if c.primary else "ok",
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
                version = wf.artifact_version
                if version is not None:
                    counts = wf.version_counts.get(version)
                    if counts is None:
                        counts = wf.version_counts[version] = [0, 0]
                    counts[0] += 1
                    if result.outcome is SUCCESS:
                        counts[1] += 1
                    if counts[0] >= self._policy.rollback.min_executions and len(wf.versions) > 1:
                        pending = self._judge_version(wf, now, ts, events)
                if c.clean:
                    step.consecutive_target_not_found = 0
                    step.consecutive_low_confidence = 0
                    if state is DEGRADED:
                        self._degraded_success(wf, result, now, ts, events)
                    elif state is QUARANTINED and wf.probe_step == step_id:
                        self._probe_result(wf, result, True, now, ts, events)
                else:
                    self._signal(wf, step, step_id, result, c, now, ts, events)
                if events is not None:
                    publisher.enqueue(events)
        except BaseException as exc:
            _fail_span(span, exc)
            raise
        if events:
            publisher.drain()
        if otel is not None:
            otel.end_span(span, "on_step_result", events, self._monotonic() - now)
        if pending is not None:
            self._after_verdict(*pending)

    # -- operator and executor queries -----------------------------------------------------

    def get_mode(self, workflow_id: str) -> ExecutionState:
        """Return the workflow's current state (RUNNING for one never seen, unless paused)."""
        with self._lock:
            wf = self._workflows.get(workflow_id)
            if wf is not None:
                return wf.state
            check_id("workflow_id", workflow_id)
            return PAUSED if self._global.paused else RUNNING

    def get_state_info(self, workflow_id: str) -> ExecutionStateInfo:
        """Return the workflow's state with since when and why."""
        check_id("workflow_id", workflow_id)
        with self._lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                return ExecutionStateInfo(
                    workflow_id=workflow_id,
                    state=self._initial_state(),
                    since=self._clock.now(),
                    reason="not seen yet",
                )
            return _info(wf)

    def _initial_state(self) -> ExecutionState:
        """Return the state a new workflow starts in (PAUSED during a global pause)."""
        return PAUSED if self._global.paused else RUNNING

    def get_effective_settings(self, workflow_id: str) -> EffectiveSettings:
        """Return what the executor must apply to the workflow now, in one object."""
        check_id("workflow_id", workflow_id)
        with self._lock:
            wf = self._workflows.get(workflow_id)
            state = wf.state if wf is not None else self._initial_state()
            policy = self._policy.for_workflow(workflow_id)
        thresholds = self.threshold_provider() if self.threshold_provider is not None else {}
        return effective_settings(workflow_id, state, policy, thresholds)

    def get_status_report(self) -> StatusReport:
        """Return every workflow's state, counters against thresholds, settings, and health."""
        now = self._monotonic()
        wall = self._clock.now()
        with self._lock:
            return build_report(
                self._workflows,
                self._global,
                self._policy,
                now,
                wall,
                last_policy_error=self.last_policy_error,
                published=self._publisher.published,
                sink_errors=dict(self._publisher.errors),
            )

    @property
    def policy(self) -> PolicyConfig:
        """Return the policy in force."""
        return self._policy

    @property
    def clock(self) -> Clock:
        """Return the injected clock."""
        return self._clock

    def force_transition(
        self,
        workflow_id: str,
        state: ExecutionState | str,
        reason: str,
        actor: str = "operator",
    ) -> ExecutionStateInfo:
        """Move a workflow to ``state`` by hand, audited with actor and reason.

        Releasing a workflow (to RUNNING or DEGRADED) clears its windows and counters; releasing
        one paused by the global breaker also clears the global latch and window.

        Raises:
            IllegalTransitionError: the transition table has no operator edge for this move.
            InvalidInputError: unknown state, empty reason or actor.
        """
        target = _coerce_state(state)
        for name, value in (("reason", reason), ("actor", actor)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(name, value, "must be a non-empty string")
        if target is ROLLBACK and self.store is None:
            raise InvalidInputError(
                "state", target.value, "needs a versioned store (attach_store) to roll back"
            )
        now = self._monotonic()
        ts = self._clock.now()
        events: list[DecisionEvent] = []
        otel = self._otel
        span = otel.start_span(SPAN_FORCE, workflow_id, None) if otel is not None else None
        try:
            with self._lock:
                if self._closed:
                    raise ManagerClosedError("force_transition called after close()")
                self._trace = _span_ids(span) if span is not None else _NO_TRACE
                wf = self._workflows.get(workflow_id)
                if wf is None:
                    wf = self._add_workflow(workflow_id, now, ts, events)
                if wf.state is not target:
                    previous = wf.state
                    self._move(
                        wf,
                        target,
                        Cause.OPERATOR,
                        now,
                        ts,
                        events,
                        Rule.OPERATOR,
                        reason,
                        actor=actor,
                    )
                    if target in (RUNNING, DEGRADED):
                        self._release(wf, previous, now, ts, events, actor)
                info = _info(wf)
                if self._publisher.sinks:
                    self._publisher.enqueue(events)
        except BaseException as exc:
            _fail_span(span, exc)
            raise
        self._publisher.drain()
        if otel is not None:
            otel.end_span(span, "force_transition", events, self._monotonic() - now)
        if target is ROLLBACK and info.state is ROLLBACK:
            return self._restore(workflow_id, "known_good", reason, actor)
        return info

    def set_artifact_version(
        self, workflow_id: str, version: str, reason: str, actor: str = "autoheal"
    ) -> None:
        """Record that a learned-artifact version became active for a workflow.

        Every later result of the workflow carries ``version`` in its audit record, so the
        success rate per version (and "which version was live when") is one query.
        """
        for name, value in (("version", version), ("reason", reason)):
            if not isinstance(value, str) or not value:
                raise InvalidInputError(name, value, "must be a non-empty string")
        now = self._monotonic()
        ts = self._clock.now()
        events: list[DecisionEvent] = []
        with self._lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                wf = self._add_workflow(workflow_id, now, ts, events)
            previous = wf.artifact_version
            wf.activate(version)
            self._emit(
                events,
                EventKind.ACTIVATION,
                ts,
                now,
                wf.workflow_id,
                None,
                wf.state,
                reason="artifact.activated",
                message=f"version {version} active: {reason}",
                actor=actor,
                artifact_version=version,
                details={"previous_version": previous},
            )
            if self._publisher.sinks:
                self._publisher.enqueue(events)
        self._publisher.drain()

    def get_artifact_version(self, workflow_id: str) -> str | None:
        """Return the artifact version active for a workflow (None if never set)."""
        with self._lock:
            wf = self._workflows.get(workflow_id)
            return wf.artifact_version if wf is not None else None

    def resume_all(
        self, reason: str, actor: str = "operator", state: ExecutionState | str = RUNNING
    ) -> list[str]:
        """Release every PAUSED workflow to ``state`` and clear the global pause.

        Returns:
            the ids of the workflows released.
        """
        target = _coerce_state(state)
        if target not in (RUNNING, DEGRADED):
            raise InvalidInputError("state", target.value, "must be running or degraded")
        now = self._monotonic()
        ts = self._clock.now()
        events: list[DecisionEvent] = []
        released = []
        with self._lock:
            for wf in self._workflows.values():
                if wf.state is PAUSED:
                    self._move(
                        wf,
                        target,
                        Cause.OPERATOR,
                        now,
                        ts,
                        events,
                        Rule.OPERATOR,
                        reason,
                        actor=actor,
                    )
                    self._release(wf, PAUSED, now, ts, events, actor)
                    released.append(wf.workflow_id)
            self._clear_global_pause(now, ts, events, actor, reason)
            if self._publisher.sinks:
                self._publisher.enqueue(events)
        self._publisher.drain()
        return released

    def update_policy(self, policy: PolicyConfig) -> None:
        """Apply a new policy now (recorded as a policy reload)."""
        if not isinstance(policy, PolicyConfig):
            raise InvalidInputError("policy", policy, "must be a PolicyConfig")
        self._apply_policy(policy, self._monotonic(), source="api")

    # -- learned artifacts ---------------------------------------------------------------

    def attach_store(self, store: VersionedStore) -> None:
        """Version learned artifacts with ``store``: its active set labels every result.

        With a store, a measured regression of a workflow's success rate rolls the store back
        to the last known-good set (ROLLBACK -> DEGRADED, or PAUSED if the restore failed).
        """
        self.store = store
        current = store.current()
        if current is not None:
            self._activate_all(current.label, "store attached", "autoheal")

    def snapshot_artifacts(
        self,
        workflow_id: str,
        reason: str,
        metrics_baseline: dict[str, float] | None = None,
        *,
        known_good: bool = False,
    ) -> Any:
        """Publish what the workflow learned as a new version set (and activate it).

        Raises:
            LearningFrozenError: the workflow is not learning (DEGRADED with learning frozen,
                ROLLBACK, QUARANTINED, PAUSED): learned artifacts may not change now.
            InvalidInputError: no store is attached.
        """
        if self.store is None:
            raise InvalidInputError("store", None, "must be attached to take snapshots")
        settings = self.get_effective_settings(workflow_id)
        if not settings.learning_enabled:
            raise LearningFrozenError(workflow_id, settings.state.value)
        started = self._monotonic()
        vset = self.store.snapshot(reason, metrics_baseline, known_good=known_good)
        self.record_operation("snapshot", self._monotonic() - started)
        self._activate_all(vset.label, reason, "autoheal")
        return vset

    def activate_artifact_version(self, version: str, reason: str, actor: str = "autoheal") -> None:
        """Record that ``version`` is now the artifact version of every workflow (audited).

        The store does this by itself on snapshots and rollbacks; call it when artifacts are
        versioned outside a :class:`VersionedStore`.
        """
        for name, value in (("version", version), ("reason", reason)):
            if not isinstance(value, str) or not value:
                raise InvalidInputError(name, value, "must be a non-empty string")
        self._activate_all(version, reason, actor)

    def _activate_all(self, label: str, reason: str, actor: str) -> None:
        """Record that the store's set ``label`` is now the artifact version of every workflow."""
        now = self._monotonic()
        ts = self._clock.now()
        events: list[DecisionEvent] = []
        with self._lock:
            previous = self._artifact_default
            self._artifact_default = label
            for wf in self._workflows.values():
                wf.activate(label)
            self._trace = _NO_TRACE
            self._emit(
                events,
                EventKind.ACTIVATION,
                ts,
                now,
                None,
                None,
                None,
                reason="artifact.activated",
                message=f"version {label} active: {reason}",
                actor=actor,
                artifact_version=label,
                details={"previous_version": previous},
            )
            if self._publisher.sinks:
                self._publisher.enqueue(events)
        self._publisher.drain()

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

    def _replay_transition(
        self,
        workflow_id: str,
        target: ExecutionState,
        cause: Cause,
        message: str,
        actor: str | None,
    ) -> None:
        """Apply a recorded transition whose cause lies outside the results (replay only).

        Regressions and restores come from the versioned store, not from step results, so a
        replay takes them from the log as it takes operator moves. Still checked against the
        transition table.
        """
        now = self._monotonic()
        ts = self._clock.now()
        events: list[DecisionEvent] = []
        with self._lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                wf = self._add_workflow(workflow_id, now, ts, events)
            self._trace = _NO_TRACE
            self._move(
                wf, target, cause, now, ts, events, Rule.ROLLBACK_RESTORE, message, actor=actor
            )
            if self._publisher.sinks:
                self._publisher.enqueue(events)
        self._publisher.drain()

    def _after_verdict(self, action: str, payload: tuple[str, Any]) -> None:
        workflow_id, verdict = payload
        store = self.store
        if store is None:
            return
        if action == "restore":
            self._restore(workflow_id, "known_good", verdict.reason, "autoheal")
        elif action == "known_good" and verdict.active_version != self._known_good_label:
            # At most once per set: the store is read only when a new version first passes.
            known = store.known_good()
            current = store.current()
            if current is not None and verdict.active_version == current.label:
                if known is None or known.id != current.id:
                    store.mark_known_good(current.id)
                self._known_good_label = current.label

    def _restore(self, workflow_id: str, to: Any, reason: str, actor: str) -> ExecutionStateInfo:
        """Restore the store (outside the lock), then leave ROLLBACK for DEGRADED or PAUSED."""
        assert self.store is not None
        otel = self._otel
        span = otel.start_span(SPAN_ROLLBACK, workflow_id, None) if otel is not None else None
        started = self._monotonic()
        error: str | None = None
        target = None
        learning: dict[str, Any] = {}
        if self.success_store is not None:
            try:  # evidence only: what the target memory learned per version
                learning = self.success_store.learning_success_rate(workflow_id)
            except Exception:  # contained: evidence must not block a rollback
                _log.exception("autoheal could not read the target memory of %r", workflow_id)
        try:
            target = self.store.rollback(to, reason=reason)
        except Exception as exc:  # contained: a failed restore pauses the workflow
            error = f"{type(exc).__name__}: {exc}"
            _log.exception("autoheal rollback of %r failed", workflow_id)
        now = self._monotonic()
        ts = self._clock.now()
        events: list[DecisionEvent] = []
        with self._lock:
            self._trace = _span_ids(span) if span is not None else _NO_TRACE
            wf = self._workflows[workflow_id]
            if wf.state is ROLLBACK:
                if target is not None:
                    self._move(
                        wf,
                        DEGRADED,
                        Cause.RESTORE_OK,
                        now,
                        ts,
                        events,
                        Rule.ROLLBACK_RESTORE,
                        f"restored {target.label} (known-good set {target.id})",
                        actor=actor,
                        details={
                            "restored": target.label,
                            "duration_s": round(now - started, 6),
                            "learning_success_rate": learning,
                        },
                    )
                else:
                    self._move(
                        wf,
                        PAUSED,
                        Cause.RESTORE_FAILED,
                        now,
                        ts,
                        events,
                        Rule.ROLLBACK_RESTORE,
                        f"restore failed: {error}",
                        actor=actor,
                    )
            info = _info(wf)
            if self._publisher.sinks:
                self._publisher.enqueue(events)
        self._publisher.drain()
        if otel is not None:
            otel.end_span(span, "rollback", events, self._monotonic() - started)
            otel.record_operation("rollback", self._monotonic() - started)
        if target is not None:
            self._activate_all(target.label, f"rolled back: {reason}", actor)
        return info

    # -- sinks, step wrapper, lifecycle ----------------------------------------------------

    def add_sink(self, sink: EventSink) -> None:
        """Register a sink that receives every later decision, in order."""
        self._publisher.add(sink)

    def add_integration(self, integration: Any) -> None:
        """Register an integration: ``bind(manager)`` first (if it has one), then as a sink."""
        bind = getattr(integration, "bind", None)
        if callable(bind):
            bind(self)
        self._publisher.add(integration)

    def remove_sink(self, sink: EventSink) -> None:
        """Unregister a sink."""
        self._publisher.remove(sink)

    def step(
        self,
        workflow_id: str,
        step_id: str,
        *,
        timeout_s: float | None = None,
        exceptions: Mapping[type[BaseException], Any] | None = None,
    ) -> StepGuard:
        """Wrap one step: gate, timing, exception mapping and the watchdog deadline.

        Use as ``with manager.step("invoice", "click_submit") as step: ...``; see
        :class:`StepGuard`.
        """
        if timeout_s is None:
            timeout_s = self._policy.for_workflow(workflow_id).watchdog.default_timeout_seconds
        return StepGuard(self, workflow_id, step_id, timeout_s=timeout_s, exceptions=exceptions)

    def guard(
        self, workflow_id: str, step_id: str, *, timeout_s: float | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Return a decorator that runs a function as one guarded step (see :meth:`step`)."""
        return guard_decorator(self, workflow_id, step_id, timeout_s)

    def flush(self) -> None:
        """Hand every queued event to the sinks and flush them."""
        self._publisher.flush()

    def close(self) -> None:
        """Flush and close the sinks; later hook calls raise ManagerClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.audit is not None:
                events: list[DecisionEvent] = []
                self._trace = _NO_TRACE
                self._emit(
                    events,
                    EventKind.SESSION,
                    self._clock.now(),
                    self._monotonic(),
                    None,
                    None,
                    None,
                    reason="session.stop",
                    message=f"manager closed (writer {self.writer})",
                    details={"writer": self.writer},
                )
                self._publisher.enqueue(events)
        self._publisher.close()
        if self._analytics is not None:
            self._analytics.close()

    def _sink_error_counts(self) -> dict[str, int]:
        """Return errors per sink, 0 for the healthy ones (so the series always exists)."""
        errors = dict(self._publisher.errors)
        for sink in self._publisher.sinks:
            errors.setdefault(type(sink).__name__, 0)
        return errors

    def record_operation(self, operation: str, seconds: float) -> None:
        """Record how long an auto-heal operation took (snapshot, rollback, warm restart)."""
        if self._otel is not None:
            self._otel.record_operation(operation, seconds)

    def _gauge_snapshot(self) -> list[tuple[str, str, list[tuple[str, str, int, int]]]]:
        """Return states and window fills for the pull-based gauges (reader thread)."""
        now = self._monotonic()
        with self._lock:
            rows: list[tuple[str, str, list[tuple[str, str, int, int]]]] = []
            for wid, wf in self._workflows.items():
                threshold = wf.policy.workflow_breaker.failure_threshold
                rows.append(
                    (
                        wid,
                        wf.state.value,
                        [
                            (
                                "workflow",
                                Rule.WORKFLOW_FAILURE_WINDOW.value,
                                wf.window.total(now),
                                threshold,
                            )
                        ],
                    )
                )
            gp = self._policy.breakers.global_
            glob = self._global
            rows.append(
                (
                    "*",
                    PAUSED.value if glob.paused else RUNNING.value,
                    [
                        (
                            "global",
                            Rule.GLOBAL_FAILURE_WINDOW.value,
                            glob.window.total(now),
                            gp.failure_threshold,
                        ),
                        (
                            "global",
                            Rule.GLOBAL_QUARANTINED_WORKFLOWS.value,
                            len(glob.quarantined),
                            gp.quarantined_workflows_threshold,
                        ),
                    ],
                )
            )
            return rows

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        """Count every process's failures in the global window from the shared audit log.

        Also follows a global pause that another process recorded after our last look.
        """
        from .analytics import AuditAnalytics

        assert self.data_dir is not None
        if self._analytics is None:
            self._analytics = AuditAnalytics(self.data_dir)
        db = self._analytics
        db.refresh()
        gp = self._policy.breakers.global_
        wall = self._clock.now()
        rows = db.query(
            "global_window",
            as_of=wall,
            window_seconds=gp.window_seconds,
            triggers=[t.value for t in gp.counted_triggers],
        )
        count = sum(int(r["failures"]) for r in rows)
        state = db.query("global_state", as_of=wall)
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


def _info(wf: br.WorkflowRuntime) -> ExecutionStateInfo:
    return ExecutionStateInfo(
        workflow_id=wf.workflow_id,
        state=wf.state,
        since=wf.since,
        reason=wf.reason,
        previous_state=wf.previous_state,
        actor=wf.actor,
    )


def _coerce_state(state: ExecutionState | str) -> ExecutionState:
    try:
        return ExecutionState(state)
    except ValueError:
        allowed = ", ".join(s.value for s in ExecutionState)
        raise InvalidInputError("state", state, f"must be one of {allowed}") from None


def _coerce_result(result: object) -> StepResult:
    if isinstance(result, StepResult):
        return result
    if isinstance(result, Mapping):
        return StepResult.from_dict(result)
    raise InvalidInputError("result", result, "must be a StepResult or a mapping of its fields")


def _span_ids(span: Any) -> tuple[str | None, str | None]:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return _NO_TRACE
    return (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))


def _fail_span(span: Any, exc: BaseException) -> None:
    if span is not None:
        span.record_exception(exc)
        span.end()
