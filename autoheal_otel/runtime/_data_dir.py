"""How a manager is put together: its data directory, its telemetry, its state views.

- :func:`open_data_dir` creates the directory's sinks (JSONL audit log, SQLite success store)
  and feeds the machine the state the log holds (the warm restart);
- :class:`Telemetry` wires the OpenTelemetry sink and its pull-based gauges, which read the
  machine's state under the manager's lock from the metric reader's thread;
- :func:`state_info` answers "what state is this workflow in, since when, why".
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .._version import __version__
from ..base._clock import Clock
from ..base._errors import InvalidInputError
from ..base._models import ExecutionState, ExecutionStateInfo
from ..core._ledger import NO_TRACE, LedgerView, Trace
from ..core._machine import Machine
from ..policy._config import PolicyConfig
from ..semconv import Rule
from ..sinks.jsonl import JsonlAuditSink
from ..sinks.otel import OTelSink, resolve_providers
from ..sinks.sqlite import SuccessStore
from ._policy_watch import PolicyWatcher
from ._publisher import Publisher

_log = logging.getLogger("autoheal_otel")

__all__ = [
    "Telemetry",
    "coerce_state",
    "open_data_dir",
    "resolve_policy",
    "span_ids",
    "state_info",
    "unwritable",
]


def coerce_state(state: ExecutionState | str) -> ExecutionState:
    """Return the state ``state`` names, or raise InvalidInputError naming the choices."""
    try:
        return ExecutionState(state)
    except ValueError:
        allowed = ", ".join(s.value for s in ExecutionState)
        raise InvalidInputError("state", state, f"must be one of {allowed}") from None


def span_ids(span: Any) -> Trace:
    """Return a span's (trace_id, span_id) in hex, or no ids for an invalid span."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return NO_TRACE
    return (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))


def resolve_policy(
    policy: PolicyConfig | str | os.PathLike[str] | None, now: float
) -> tuple[PolicyConfig, PolicyWatcher | None]:
    """Return the policy a manager starts with, and the watcher of its file (if a path)."""
    if policy is None:
        return PolicyConfig(), None
    if isinstance(policy, PolicyConfig):
        # Built in code: a shadow file it names is relative to the working directory.
        policy.resolve_shadow(Path.cwd())
        return policy, None
    if isinstance(policy, str | os.PathLike):
        path = Path(policy)
        config = PolicyConfig.load(path)
        interval = config.hot_reload.check_interval_seconds
        return config, PolicyWatcher(path, interval, now) if config.hot_reload.enabled else None
    raise InvalidInputError("policy", policy, "must be a path, a PolicyConfig or None")


Opened = tuple[dict[str, Any], JsonlAuditSink | None, SuccessStore | None]


def open_data_dir(
    data_dir: Path, machine: Machine, clock: Clock, writer: str, read_only: bool
) -> Opened:
    """Rebuild the machine's state from ``data_dir``'s log and open its sinks.

    Returns what was restored, the audit sink and the success store (None when
    ``read_only``: nothing is written then).

    Raises:
        InvalidInputError: the directory cannot be created or written.
    """
    try:
        if not read_only:
            data_dir.mkdir(parents=True, exist_ok=True, mode=machine.policy.audit.dir_mode)
        restored: dict[str, Any] = {}
        if any(not p.name.startswith(".") for p in (data_dir / "audit").glob("**/*.*")):
            from ..analytics.restore import load_restored_state
            from ..analytics.resume import resume_state

            now = clock.monotonic()
            wall = clock.now()
            # From the newest checkpoint the restart can start at; else the whole log.
            resumed = resume_state(data_dir, machine.policy, wall)
            if resumed is not None:
                figures = machine.resume(resumed, now)
            else:
                state = load_restored_state(data_dir, machine.policy, wall)
                figures = machine.restore(state, now, wall)
            # As of when it read the log: replay counts what a restart reads back from there.
            restored = {**figures, "as_of": wall.isoformat()}
        if read_only:
            return restored, None, None
        audit = JsonlAuditSink(data_dir, machine.policy.audit, writer)
        successes = SuccessStore(data_dir, writer, mode=machine.policy.audit.mode)
        try:
            rebuilt = successes.repair(data_dir / "audit")
        except sqlite3.Error as exc:  # the store stays usable; the log still holds the rows
            _log.warning("autoheal could not rebuild lost successes from the log: %s", exc)
        else:
            if rebuilt:
                restored["successes_rebuilt"] = rebuilt
        return restored, audit, successes
    except OSError as exc:
        raise unwritable(data_dir, exc) from exc


def unwritable(data_dir: Path, exc: OSError) -> InvalidInputError:
    """Return the error for a data directory that cannot be created or written."""
    return InvalidInputError(
        "data_dir", str(data_dir), f"must be a writable directory ({exc.strerror or exc})"
    )


def state_info(
    ledger: LedgerView, workflow_id: str, wall: Callable[[], datetime]
) -> ExecutionStateInfo:
    """Return a workflow's state with since when and why (call it under the lock)."""
    wf = ledger.workflows.get(workflow_id)
    if wf is None:
        paused = ledger.glob.paused
        return ExecutionStateInfo(
            workflow_id=workflow_id,
            state=ExecutionState.PAUSED if paused else ExecutionState.RUNNING,
            since=wall(),
            reason="not seen yet",
        )
    return ExecutionStateInfo(
        workflow_id=wf.workflow_id,
        state=wf.state,
        since=wf.since,
        reason=wf.reason,
        previous_state=wf.previous_state,
        actor=wf.actor,
    )


Gauges = list[tuple[str, str, list[tuple[str, str, int, int]]]]


class Telemetry:
    """The OpenTelemetry side of a manager: the sink, its gauges, the integrations' meter."""

    def __init__(
        self,
        providers: tuple[Any, Any, Any],
        *,
        view: LedgerView,
        lock: threading.Lock,
        monotonic: Callable[[], float],
        publisher: Publisher,
        dropped: Callable[[], dict[str, int]],
    ) -> None:
        """Wire the sink to ``providers`` and the gauges to the machine's ``view``, read under
        ``lock`` at ``monotonic()``; ``publisher`` and ``dropped`` give the sinks' errors and
        dropped counts."""
        tracer_provider, meter_provider, logger_provider = resolve_providers(*providers)
        self._view = view
        self._lock = lock
        self._monotonic = monotonic
        self._publisher = publisher
        self.meter: Any = None
        if meter_provider is not None:
            self.meter = meter_provider.get_meter("autoheal_otel.integrations", __version__)
        self.sink: OTelSink | None = None
        if any(p is not None for p in (tracer_provider, meter_provider, logger_provider)):
            self.sink = OTelSink(
                tracer_provider,
                meter_provider,
                logger_provider,
                snapshot=self._gauges,
                sink_errors=self._sink_errors,
                dropped=dropped,
                version=__version__,
            )

    def _sink_errors(self) -> dict[str, int]:
        """Return errors per sink, 0 for the healthy ones (so the series always exists)."""
        errors = dict(self._publisher.errors)
        for sink in self._publisher.sinks:
            errors.setdefault(type(sink).__name__, 0)
        return errors

    def _gauges(self) -> Gauges:
        """Return states and window fills for the pull-based gauges (reader thread)."""
        now = self._monotonic()
        with self._lock:
            ledger = self._view
            rows: Gauges = []
            for wid, wf in ledger.workflows.items():
                threshold = wf.policy.workflow_breaker.failure_threshold
                fill = (
                    "workflow",
                    Rule.WORKFLOW_FAILURE_WINDOW.value,
                    wf.window.total(now),
                    threshold,
                )
                rows.append((wid, wf.state.value, [fill]))
            gp = ledger.policy.breakers.global_
            glob = ledger.glob
            state = ExecutionState.PAUSED if glob.paused else ExecutionState.RUNNING
            rows.append(
                (
                    "*",
                    state.value,
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
