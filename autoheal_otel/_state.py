"""What the manager's parts share: its typed state, constants and small helpers.

``AutoHealManager`` is assembled from mixins, one concern each (``_decisions``,
``_artifacts``, ``_polling``) plus the facade in ``_manager``. :class:`ManagerState` declares
the attributes they share, and, for the type checker only, the methods one part calls on
another; it holds no behaviour.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _breakers as br
from ._clock import Clock
from ._errors import InvalidInputError, PolicyError
from ._events import DecisionEvent, Publisher, RuleFiring
from ._models import ExecutionState, ExecutionStateInfo, Outcome, StepResult
from ._policy import PolicyConfig
from ._policy_watch import PolicyWatcher
from ._semconv import EventKind
from ._transitions import Cause

if TYPE_CHECKING:
    from .sinks.jsonl import JsonlAuditSink
    from .sinks.otel import OTelSink
    from .sinks.sqlite import SuccessStore
    from .versioning import VersionedStore

__all__ = [
    "DEGRADED",
    "PAUSED",
    "QUARANTINED",
    "ROLLBACK",
    "RUNNING",
    "SUCCESS",
    "Events",
    "ManagerState",
]

RUNNING = ExecutionState.RUNNING
DEGRADED = ExecutionState.DEGRADED
QUARANTINED = ExecutionState.QUARANTINED
ROLLBACK = ExecutionState.ROLLBACK
PAUSED = ExecutionState.PAUSED
SUCCESS = Outcome.SUCCESS

#: The events a hook builds (None when no sink would receive them).
Events = list[DecisionEvent] | None
_NO_TRACE: tuple[str | None, str | None] = (None, None)


class ManagerState:
    """The attributes every part of the manager reads (set in ``AutoHealManager.__init__``)."""

    _clock: Clock
    _monotonic: Callable[[], float]
    _watcher: PolicyWatcher | None
    _policy: PolicyConfig
    _policy_version: str
    _lock: threading.Lock
    _workflows: dict[str, br.WorkflowRuntime]
    _global: br.GlobalRuntime
    _publisher: Publisher
    _seq: int
    _trace: tuple[str | None, str | None]
    _closed: bool
    _artifact_default: str | None
    _known_good_label: str | None
    _analytics: Any
    _otel: OTelSink | None
    _sync_at: float
    _poll_at: float
    _foreign_since: datetime
    last_policy_error: PolicyError | None
    writer: str
    store: VersionedStore | None
    data_dir: Path | None
    audit: JsonlAuditSink | None
    success_store: SuccessStore | None
    read_only: bool
    threshold_provider: Callable[[], dict[str, float]] | None
    meter: Any

    if TYPE_CHECKING:  # implemented by the other parts; declared here for the type checker

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
        ) -> None: ...

        def _add_workflow(
            self, workflow_id: str, now: float, ts: datetime | None, events: Events
        ) -> br.WorkflowRuntime: ...

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
        ) -> None: ...

        def _pause_all(
            self, firing: RuleFiring, now: float, ts: datetime | None, events: Events
        ) -> None: ...

        def _activate_all(self, label: str, reason: str, actor: str) -> None: ...

        def _operator_move(
            self,
            wf: br.WorkflowRuntime,
            target: ExecutionState,
            reason: str,
            actor: str,
            now: float,
            ts: datetime | None,
            events: Events,
        ) -> None: ...

        def _restore(
            self, workflow_id: str, to: Any, reason: str, actor: str
        ) -> ExecutionStateInfo: ...

        def record_operation(self, operation: str, seconds: float) -> None: ...

        def get_effective_settings(self, workflow_id: str) -> Any: ...


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
