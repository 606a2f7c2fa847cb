"""The executor-facing facade: hooks, transitions and the lock.

The facade is assembled from one part per concern: ``_decisions`` (breakers, transitions,
probes), ``_artifacts`` (store, regression, rollback), ``_polling`` (policy reload, shared log).

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
from pathlib import Path
from typing import Any, Self

from . import _breakers as br
from ._artifacts import ArtifactsMixin
from ._clock import Clock, SystemClock
from ._decisions import DecisionsMixin
from ._errors import InvalidInputError, ManagerClosedError, PolicyError
from ._events import DecisionEvent, EventSink, Publisher
from ._models import (
    EffectiveSettings,
    ExecutionState,
    ExecutionStateInfo,
    StepResult,
    check_id,
)
from ._policy import PolicyConfig
from ._policy_watch import PolicyWatcher
from ._polling import PollingMixin
from ._report import StatusReport, build_report, effective_settings
from ._semconv import SPAN_FORCE, SPAN_GATE, SPAN_RESULT, EventKind, Rule
from ._state import (
    _NO_TRACE,
    DEGRADED,
    PAUSED,
    QUARANTINED,
    ROLLBACK,
    RUNNING,
    SUCCESS,
    Events,
    _coerce_result,
    _coerce_state,
    _fail_span,
    _info,
    _span_ids,
)
from ._step import StepGuard, guard_decorator
from ._version import __version__
from ._warm import apply_restored
from .sinks.jsonl import JsonlAuditSink, new_writer_id
from .sinks.otel import OTelSink, resolve_providers
from .sinks.sqlite import SuccessStore
from .versioning import VersionedStore

__all__ = ["AutoHealManager"]

_log = logging.getLogger("autoheal_otel")


class AutoHealManager(DecisionsMixin, ArtifactsMixin, PollingMixin):
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
        self._foreign_since = self._clock.now()
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
                    self._operator_move(wf, target, reason, actor, now, ts, events)
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
                    self._operator_move(wf, target, reason, actor, now, ts, events)
                    released.append(wf.workflow_id)
            self._clear_global_pause(now, ts, events, actor, reason)
            if self._publisher.sinks:
                self._publisher.enqueue(events)
        self._publisher.drain()
        return released

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
