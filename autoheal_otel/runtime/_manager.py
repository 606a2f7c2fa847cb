"""The executor-facing facade: the public API over the parts :func:`~._build.assemble` builds.

It checks the caller's arguments, names the machine input, feeds it through the one scaffold
(:mod:`~._runner`: clock, span, lock, publishing) and carries out the
machine's follow-up action. Composition only: the parts do the work.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Self

from ..base._clock import Clock
from ..base._errors import InvalidInputError, LearningFrozenError
from ..base._events import EventSink
from ..base._models import (
    EffectiveSettings,
    ExecutionState,
    ExecutionStateInfo,
    StepResult,
    check_id,
    check_text,
)
from ..core import _calibration
from ..core._calibrator import Calibration
from ..core._report import StatusReport, effective_settings
from ..policy._config import PolicyConfig
from ..semconv import SPAN_FORCE, SPAN_GATE, SPAN_RESULT
from ..versioning import VersionedStore
from ._build import assemble
from ._checkpointer import write_checkpoint
from ._data_dir import coerce_state, state_info
from ._operator_records import OperatorRecords
from ._parts_view import PartsView
from ._step import StepGuard, guard_decorator

if TYPE_CHECKING:
    from opentelemetry._logs import LoggerProvider
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider


__all__ = ["AutoHealManager"]

RUNNING = ExecutionState.RUNNING


class AutoHealManager(PartsView, OperatorRecords):
    """Decide, per step, whether a workflow continues, continues carefully, or stops.

    Args:
        policy: a path to ``auto_heal_policy.json`` (re-checked every
            ``hot_reload.check_interval_seconds``), a :class:`PolicyConfig`, or None for the
            defaults.
        data_dir: where the audit log and learned artifacts live (None: memory only).
        clock: the time source; inject :class:`autoheal_otel.testing.FakeClock` in tests.
        tracer_provider, meter_provider, logger_provider: OpenTelemetry providers (None: globals).
        sinks: extra event sinks, each receiving every decision in order.
        writer: this process's writer id in the audit log (default: a new unique one).
        store: a :class:`VersionedStore` to version learned artifacts with.
        integrations: objects with ``bind(manager)`` (optional) and the sink methods.
        read_only: rebuild the state from ``data_dir`` and write nothing (``autoheal status``).
        shared_decisions: decide as one with the other processes writing to ``data_dir``
            (see ``audit.shared_decisions``); None: as the policy says.

    Raises:
        PolicyError: the initial policy file is missing or invalid (later bad edits never
            raise: the last good policy stays in force).
        InvalidInputError: ``data_dir`` is not a writable directory, or ``policy`` has the
            wrong type.
    """

    def __init__(
        self,
        policy: PolicyConfig | str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        sinks: Iterable[EventSink] = (),
        *,
        logger_provider: LoggerProvider | None = None,
        writer: str | None = None,
        store: VersionedStore | None = None,
        integrations: Iterable[Any] = (),
        read_only: bool = False,
        shared_decisions: bool | None = None,
    ) -> None:
        providers = (tracer_provider, meter_provider, logger_provider)
        parts = assemble(
            policy, data_dir, clock, providers, sinks, writer, read_only, shared_decisions
        )
        self._parts = parts
        self._machine = parts.machine
        self._lock = parts.scaffold.lock
        self._decide = parts.scaffold.decide
        #: Under shared decisions, a read first takes in what other processes decided.
        self._catch_up = parts.scaffold.catch_up
        self._gate = parts.scaffold.bind(SPAN_GATE, "should_execute_step", parts.machine.gate)
        self._result = parts.scaffold.bind(SPAN_RESULT, "on_step_result", parts.machine.result)
        self._artifacts = parts.artifacts
        self._periodic = parts.periodic
        self._threshold_provider: Callable[[], dict[str, float]] | None = None
        if store is not None:
            self.attach_store(store)
        parts.start(versioned=store is not None)
        # After the session start, where replay mirrors it: what integrations turn on.
        for integration in integrations:
            self.add_integration(integration)

    # -- hooks -----------------------------------------------------------------------------

    def should_execute_step(self, workflow_id: str, step_id: str) -> tuple[bool, str]:
        """Ask whether the executor may run a step now.

        Returns:
            ``(allowed, reason)``: True with the mode (``"running"``, ``"degraded: ..."``),
            or False with why and since when the workflow is blocked.
        """
        answer: tuple[bool, str] = self._gate(workflow_id, step_id)
        return answer

    def on_step_result(self, workflow_id: str, step_id: str, result: StepResult) -> None:
        """Record what happened when the executor ran a step, and apply the breakers.

        Raises:
            InvalidInputError: ``result`` is not a StepResult (or a mapping that makes one),
                or an id is empty, too long or has control characters.
        """
        if type(result) is not StepResult:
            result = StepResult.coerce(result)
        action = self._result(workflow_id, step_id, result)
        if action is not None:
            self._artifacts.carry_out(action)

    # -- operator and executor queries -----------------------------------------------------

    def get_mode(self, workflow_id: str) -> ExecutionState:
        """Return the workflow's current state (RUNNING for one never seen, unless paused)."""
        self._catch_up()
        with self._lock:
            wf = self._machine.view.workflows.get(workflow_id)
            if wf is not None:
                return wf.state
            paused = self._machine.view.glob.paused
        check_id("workflow_id", workflow_id)
        return ExecutionState.PAUSED if paused else RUNNING

    def get_state_info(self, workflow_id: str) -> ExecutionStateInfo:
        """Return the workflow's state with since when and why."""
        check_id("workflow_id", workflow_id)
        self._catch_up()
        with self._lock:
            return state_info(self._machine.view, workflow_id, self._parts.clock.now)

    def get_effective_settings(self, workflow_id: str) -> EffectiveSettings:
        """Return what the executor must apply to the workflow now, in one object."""
        state = self.get_mode(workflow_id)
        provider = self._threshold_provider
        if provider is not None:
            thresholds = provider()
        else:
            with self._lock:
                thresholds = self._machine.view.calibration.thresholds()
        policy = self._machine.policy.for_workflow(workflow_id)
        return effective_settings(workflow_id, state, policy, thresholds)

    def get_status_report(self) -> StatusReport:
        """Return every workflow's state, counters against thresholds, settings, and health."""
        self._catch_up()
        return self._parts.status_report(self.last_policy_error)

    def force_transition(
        self,
        workflow_id: str,
        state: ExecutionState | str,
        reason: str,
        actor: str = "operator",
    ) -> ExecutionStateInfo:
        """Move a workflow to ``state`` by hand, audited with actor and reason.

        Releasing a workflow (to RUNNING or DEGRADED) clears its windows and counters; releasing
        one paused by the global breaker also clears the global latch and window. A move into
        ROLLBACK restores the last known-good artifact set (a store must be attached).

        Raises:
            IllegalTransitionError: the transition table has no operator edge for this move.
            InvalidInputError: unknown state, empty reason or actor, no store for a rollback.
        """
        target = coerce_state(state)
        check_text(reason=reason, actor=actor)
        if target is ExecutionState.ROLLBACK:
            self._artifacts.require_store("state", target.value, "to roll back")
        move = (workflow_id, target, reason, actor)
        feed = self._machine.operator
        action = self._decide(SPAN_FORCE, "force_transition", workflow_id, None, feed, *move)
        if action is not None:
            self._artifacts.carry_out(action)
        return self.get_state_info(workflow_id)

    def resume_all(
        self, reason: str, actor: str = "operator", state: ExecutionState | str = RUNNING
    ) -> list[str]:
        """Release every PAUSED workflow to ``state`` and clear the global pause.

        Returns:
            the ids of the workflows released.
        """
        target = coerce_state(state)
        if target not in (RUNNING, ExecutionState.DEGRADED):
            raise InvalidInputError("state", target.value, "must be running or degraded")
        check_text(reason=reason, actor=actor)
        feed = self._machine.resume_all
        released: list[str] = self._decide(
            SPAN_FORCE, "resume_all", None, None, feed, target, reason, actor
        )
        return released

    def update_policy(self, policy: PolicyConfig) -> None:
        """Apply a new policy now (recorded as a policy reload)."""
        if not isinstance(policy, PolicyConfig):
            raise InvalidInputError("policy", policy, "must be a PolicyConfig")
        self._periodic.apply_policy(policy, self._parts.clock.monotonic(), source="api")

    # -- learned artifacts -----------------------------------------------------------------

    def attach_store(self, store: VersionedStore) -> None:
        """Version learned artifacts with ``store``: its active set labels every result.

        With a store, a measured regression of a workflow's success rate rolls the store back
        to the last known-good set (ROLLBACK -> DEGRADED, or PAUSED if the restore failed).
        """
        self._artifacts.attach(store)

    def set_artifact_version(
        self, workflow_id: str, version: str, reason: str, actor: str = "autoheal"
    ) -> None:
        """Record that a learned-artifact version became active for one workflow (audited)."""
        self._artifacts.activate(workflow_id, version, reason, actor)

    def activate_artifact_version(self, version: str, reason: str, actor: str = "autoheal") -> None:
        """Record that ``version`` is now the artifact version of every workflow (audited).

        The store does this by itself on snapshots and rollbacks; call it when artifacts are
        versioned outside a :class:`VersionedStore`.
        """
        self._artifacts.activate(None, version, reason, actor)

    def get_artifact_version(self, workflow_id: str) -> str | None:
        """Return the artifact version active for a workflow (None if never set)."""
        with self._lock:
            wf = self._machine.view.workflows.get(workflow_id)
            return wf.artifact_version if wf is not None else None

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
        self._artifacts.require_store("store", None, "to take snapshots")
        settings = self.get_effective_settings(workflow_id)
        if not settings.learning_enabled:
            raise LearningFrozenError(workflow_id, settings.state.value)
        return self._artifacts.snapshot(reason, metrics_baseline, known_good)

    # -- read-only views -------------------------------------------------------------------

    def set_threshold_provider(self, provider: Callable[[], dict[str, float]] | None) -> None:
        """Take per-method thresholds from ``provider`` instead of the recorded calibration."""
        self._threshold_provider = provider

    def configure_calibration(self, **overrides: Any) -> None:
        """Calibrate per-method thresholds, overriding the policy's ``calibration`` section.

        Recorded (kind ``calibration``), so replay turns it on at the same point; the
        overrides (``target_precision``, ``min_samples``, ``window``) outlive policy reloads.

        Raises:
            PolicyError: an override is unknown or out of its bounds (the field is named).
        """
        checked = _calibration.check_overrides(self._machine.policy, overrides)
        self._decide(None, "calibration", None, None, self._machine.configure_calibration, checked)

    def get_calibration(self) -> dict[str, Calibration]:
        """Return each matching method's calibration with its evidence."""
        with self._lock:
            return self._machine.view.calibration.all_evidence()

    # -- sinks, step wrapper, lifecycle ----------------------------------------------------

    def add_sink(self, sink: EventSink) -> None:
        """Register a sink that receives every later decision, in order."""
        self._parts.publisher.add(sink)

    def add_integration(self, integration: Any) -> None:
        """Register an integration: ``bind(manager)`` first (if it has one), then as a sink."""
        bind = getattr(integration, "bind", None)
        if callable(bind):
            bind(self)
        self._parts.publisher.add(integration)

    def remove_sink(self, sink: EventSink) -> None:
        """Unregister a sink."""
        self._parts.publisher.remove(sink)

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
            timeout_s = self.policy.for_workflow(workflow_id).watchdog.default_timeout_seconds
        return StepGuard(self, workflow_id, step_id, timeout_s=timeout_s, exceptions=exceptions)

    def guard(
        self, workflow_id: str, step_id: str, *, timeout_s: float | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Return a decorator that runs a function as one guarded step (see :meth:`step`)."""
        return guard_decorator(self, workflow_id, step_id, timeout_s)

    def record_operation(self, operation: str, seconds: float) -> None:
        """Record how long an auto-heal operation took (snapshot, rollback, warm restart)."""
        self._parts.record_operation(operation, seconds)

    def checkpoint(self) -> None:
        """Record a checkpoint now: everything the machine needs to continue (see
        ``audit.checkpoint_interval_seconds``, which records one on a thread of its own)."""
        write_checkpoint(self._decide, self._machine)

    def flush(self) -> None:
        """Hand every queued event to the sinks and flush them."""
        self._parts.publisher.flush()

    def close(self) -> None:
        """Flush and close the sinks; later hook calls raise ManagerClosedError."""
        self._parts.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
