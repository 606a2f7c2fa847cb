"""Warm restart: rebuild the manager's in-memory state from the audit log.

Nothing resets on a restart: each workflow's state (with why and since when), its window
entries, its steps' consecutive counters, the global window and pause, and the sequence number
are read back with the packaged queries, as of the new manager's clock. Step streaks and
workflows with no transition are looked up within ``audit.restore_horizon_seconds`` (an hour by
default), which keeps a restart fast on a long log. Two things restart conservatively and are
documented as such: a DEGRADED workflow's recovery streak starts at zero
(it must prove itself again), and a quarantine's probe cool-down starts anew.

Only usable records reach the runtime: the views already drop what a reader cannot use (see
``_validity``), and this module checks again what the runtime parses (states, triggers), so
a row it cannot apply is skipped and reported (``RestoredState.skipped``, and a warning on the
``autoheal_otel`` logger) instead of stopping the manager. A sequence number above 2^53 - 1 is
not continued from (``max_seq`` stays one a writer can carry on from).

The calibration of per-method thresholds is read back too: each method's window of decided
matches (up to the policy's ``calibration.window``, with ``precision_samples`` scoped by
``calibration_horizon``) and the thresholds last recorded (``recorded_thresholds``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..policy._config import PolicyConfig
from . import AuditAnalytics, ts_param
from ._validity import KNOWN_STATES, KNOWN_TRIGGERS

_log = logging.getLogger("autoheal_otel")

__all__ = ["RestoredState", "load_calibration", "load_restored_state"]

#: What DuckDB may hold in memory during a restart: the live JSONL it parses goes to temporary
#: files past it (a raw log of 5M decisions peaks at about 1.2 GiB without a bound).
RESTORE_MEMORY = "256MB"
#: The columns no restore query reads: a restart over raw JSONL does not hold them.
UNREAD = frozenset(
    {
        "schema_version",
        "policy_version",
        "allowed",
        "second_best",
        "duration_s",
        "learning",
        "trace_id",
        "span_id",
        "counts",
    }
)


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
    #: What was left out, and why: {"what": ..., "key": ..., "reason": ...}.
    skipped: list[dict[str, Any]] = field(default_factory=list)
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
    horizon = as_of - timedelta(seconds=policy.audit.restore_horizon_seconds)
    since = ts_param(horizon)
    # Gates are read only after ``since`` (max_seq, workflow_states): older ones are not loaded.
    with AuditAnalytics(
        data_dir, memory_limit=RESTORE_MEMORY, gates_after=horizon, omit=UNREAD
    ) as db:
        seq = db.query("max_seq", since=since)[0]
        state = RestoredState(
            workflows=db.query("workflow_states", as_of=when, since=since),
            entries=db.rows("window_entries", as_of=when, window_seconds=longest),
            streaks=db.query("step_streaks", as_of=when, since=since),
            max_seq=int(seq["max_seq"]),
            versions=db.query("version_outcomes", workflow_id="*"),
        )
        glob = db.query("global_state", as_of=when)
        state.global_state = glob[0] if glob and glob[0]["state"] is not None else None
        load_calibration(db, state, policy, when)
    if seq["ignored"]:
        state.skipped.append(
            {
                "what": "seq",
                "key": int(seq["ignored"]),
                "reason": "record(s) with a seq above 2^53 - 1, not continued from",
            }
        )
    _keep_usable(state)
    for item in state.skipped:
        _log.warning("warm restart skipped %s %r: %s", item["what"], item["key"], item["reason"])
    return state


def _keep_usable(state: RestoredState) -> None:
    """Drop (and list in ``state.skipped``) the rows the runtime could not apply."""
    workflows = []
    for row in state.workflows:
        bad = next(
            (
                f"unknown {key} {row[key]!r}"
                for key in ("state", "previous_state")
                if row[key] is not None and row[key] not in KNOWN_STATES
            ),
            None,
        )
        if bad is None:
            workflows.append(row)
        else:
            state.skipped.append({"what": "workflow", "key": row["workflow_id"], "reason": bad})
    state.workflows = workflows
    entries = []
    for entry in state.entries:
        if entry[3] in KNOWN_TRIGGERS:
            entries.append(entry)
        else:
            state.skipped.append(
                {"what": "window entry", "key": entry[0], "reason": f"unknown trigger {entry[3]!r}"}
            )
    state.entries = entries
    glob = state.global_state
    if glob is not None and glob["state"] not in KNOWN_STATES:
        state.skipped.append(
            {"what": "global", "key": None, "reason": f"unknown state {glob['state']!r}"}
        )
        state.global_state = None


def load_calibration(
    db: AuditAnalytics, state: RestoredState, policy: PolicyConfig, when: str
) -> None:
    """Read the calibration windows and the last recorded thresholds.

    The same rows as ``precision_samples`` over the whole log and the ``recorded_*`` columns
    of ``precision``, read from the hours the windows reach back to and the calibration records.
    """
    cal = policy.calibration
    # The hourly rollups say how far back each method's window reaches: read no further.
    since = db.rows("calibration_horizon", as_of=when, window=cal.window)[0][0]
    rows = db.rows("precision_samples", as_of=when, window=cal.window, since=since)
    state.calibration_samples = [(m, conf, ok) for m, conf, ok, _, _ in rows]
    state.calibration_recorded = [
        (method, threshold, _utc(at))
        for method, threshold, at in db.rows("recorded_thresholds", as_of=when)
        if threshold is not None
    ]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
