"""Learned artifacts: the versioned store, activations, regression verdicts and rollbacks.

Restores and snapshots do I/O, so they run outside the lock; the transitions around them go
through the decision helpers under it.
"""

from __future__ import annotations

import logging
from typing import Any

from ._errors import InvalidInputError, LearningFrozenError
from ._events import DecisionEvent
from ._models import ExecutionState, ExecutionStateInfo
from ._semconv import SPAN_ROLLBACK, EventKind, Rule
from ._state import (
    _NO_TRACE,
    DEGRADED,
    PAUSED,
    ROLLBACK,
    ManagerState,
    _info,
    _span_ids,
)
from ._transitions import Cause
from .versioning import VersionedStore

_log = logging.getLogger("autoheal_otel")


class ArtifactsMixin(ManagerState):
    """Learned artifacts: the versioned store, activations, regression verdicts and rollbacks."""

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
