"""Warm restart: rebuild the manager's in-memory state from the audit log.

Nothing resets on a restart: each workflow's state (with why and since when), its window
entries, its steps' consecutive counters, the global window and pause, and the sequence number
are read back with the packaged queries, as of the new manager's clock. Step streaks and
workflows with no transition are looked up within ``audit.restore_horizon_seconds`` (an hour by
default), which keeps a restart fast on a long log. Two things restart conservatively and are
documented as such: a DEGRADED workflow's recovery streak starts at zero
(it must prove itself again), and a quarantine's probe cool-down starts anew.

The calibration of per-method thresholds is read back too: each method's window of decided
matches (up to the policy's ``calibration.window``, with ``precision_samples``) and the
thresholds last recorded (with ``precision``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .._policy import PolicyConfig
from . import AuditAnalytics, ts_param

__all__ = ["RestoredState", "load_calibration", "load_restored_state"]


@dataclass
class RestoredState:
    """What the log says, as of one instant."""

    workflows: list[dict[str, Any]] = field(default_factory=list)
    #: (workflow_id, step_id, ts in epoch microseconds, trigger, in_workflow, in_global)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    streaks: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    global_state: dict[str, Any] | None = None
    max_seq: int = 0
    #: (method, confidence, correct) of each calibration window, oldest first
    calibration_samples: list[tuple[Any, ...]] = field(default_factory=list)
    #: (method, threshold, recorded at) of the thresholds last recorded
    calibration_recorded: list[tuple[Any, ...]] = field(default_factory=list)


def load_restored_state(data_dir: Path, policy: PolicyConfig, as_of: datetime) -> RestoredState:
    """Run the restore queries against ``data_dir``'s log as of ``as_of``."""
    longest = max(
        [
            policy.breakers.global_.window_seconds,
            policy.breakers.workflow.window_seconds,
            policy.breakers.step.window_seconds,
        ]
        + [policy.for_workflow(w).workflow_breaker.window_seconds for w in policy.workflows]
        + [policy.for_workflow(w).step_breaker.window_seconds for w in policy.workflows]
    )
    when = ts_param(as_of)
    since = ts_param(as_of - timedelta(seconds=policy.audit.restore_horizon_seconds))
    with AuditAnalytics(data_dir) as db:
        state = RestoredState(
            workflows=db.query("workflow_states", as_of=when, since=since),
            entries=db.rows("window_entries", as_of=when, window_seconds=longest),
            streaks=db.query("step_streaks", as_of=when, since=since),
            max_seq=int(db.query("max_seq", since=since)[0]["max_seq"]),
            versions=db.query("version_outcomes", workflow_id="*"),
        )
        glob = db.query("global_state", as_of=when)
        state.global_state = glob[0] if glob and glob[0]["state"] is not None else None
        load_calibration(db, state, policy, when)
    return state


def load_calibration(
    db: AuditAnalytics, state: RestoredState, policy: PolicyConfig, when: str
) -> None:
    """Read the calibration windows and the last recorded thresholds (``precision`` SQL)."""
    cal = policy.calibration
    rows = db.rows("precision_samples", as_of=when, window=cal.window)
    state.calibration_samples = [(m, conf, ok) for m, conf, ok, _, _ in rows]
    figures = db.query(
        "precision",
        as_of=when,
        target_precision=cal.target_precision,
        min_samples=cal.min_samples,
        window=cal.window,
    )
    state.calibration_recorded = [
        (r["method"], r["recorded_threshold"], _utc(r["recorded_at"]))
        for r in figures
        if r["recorded_threshold"] is not None
    ]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
