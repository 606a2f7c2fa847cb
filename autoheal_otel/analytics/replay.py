"""Deterministic replay and what-if analysis of a recorded audit log.

Replay folds the recorded inputs (gates, step results, operator moves, artifact activations,
policy changes) through a fresh state machine on a fake clock set to each record's time, and
compares the decisions it makes with the recorded ones. With the policy that was recorded,
the automatic transitions and gate answers must match; a what-if replay passes another
policy and reports the degrades, quarantines and pauses it would have produced instead.

Records are ordered by (ts, seq, writer). Known limits, reported rather than hidden: a log
that spans a restart replays the restart as continuous time (a restart resets a recovery
streak and a probe cool-down), and timestamps have microsecond resolution.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from .._errors import AutoHealError
from .._manager import AutoHealManager
from .._models import ExecutionState, StepResult
from .._policy import PolicyConfig
from .._semconv import EventKind
from .._transitions import Cause
from ..testing import FakeClock, InMemorySink
from . import AuditAnalytics
from ._view import LogScan, iter_records

__all__ = ["ReplayReport", "replay"]

_EXTERNAL_CAUSES = {"operator", "regression", "restore_ok", "restore_failed"}


@dataclass
class ReplayReport:
    """What a replay found."""

    records: int = 0
    skipped_lines: int = 0
    what_if: bool = False
    policy_version: str = ""
    gates: int = 0
    gate_mismatches: int = 0
    recorded: Counter[str] = field(default_factory=Counter)
    replayed: Counter[str] = field(default_factory=Counter)
    recorded_blocked_gates: int = 0
    replayed_blocked_gates: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Return True when every automatic transition and gate answer was reproduced."""
        return not self.mismatches and self.gate_mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "records": self.records,
            "skipped_lines": self.skipped_lines,
            "what_if": self.what_if,
            "policy_version": self.policy_version,
            "matches": self.matches,
            "gates": self.gates,
            "gate_mismatches": self.gate_mismatches,
            "transitions": {
                "recorded": dict(self.recorded),
                "replayed": dict(self.replayed),
            },
            "blocked_gates": {
                "recorded": self.recorded_blocked_gates,
                "replayed": self.replayed_blocked_gates,
            },
            "mismatches": self.mismatches[:50],
        }


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """Turn a row of the ``audit`` view back into the shape of an audit record."""
    record = dict(row)
    ts = record["ts"]
    record["ts"] = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
    for key in ("details", "counts"):
        value = record.get(key)
        record[key] = json.loads(value) if isinstance(value, str) else (value or {})
    return record


def _key(event: Any) -> tuple[str | None, str | None, str | None, str | None]:
    return (event["workflow_id"], event["previous_state"], event["state"], event["cause"])


def replay(
    data_dir: str | Path,
    policy: PolicyConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Replay the audit log of ``data_dir``; with ``policy``, as a what-if."""
    scan = LogScan()
    for _ in iter_records(Path(data_dir), scan):  # counts the lines a reader must skip
        pass
    with AuditAnalytics(data_dir) as db:  # live JSONL and compacted Parquet alike
        rows = db.sql("SELECT * FROM audit ORDER BY ts, seq, writer")
    records = [_record(row) for row in rows]
    report = ReplayReport(
        records=len(records), skipped_lines=len(scan.skipped), what_if=policy is not None
    )
    if not records:
        return report
    recorded_policy = next(
        (
            PolicyConfig.from_dict(r["details"]["policy"])
            for r in records
            if r["kind"] == EventKind.SESSION and "policy" in (r.get("details") or {})
        ),
        PolicyConfig(),
    )
    start = records[0]["ts"]
    clock = FakeClock(start=start)
    sink = InMemorySink()
    manager = AutoHealManager(policy=policy or recorded_policy, clock=clock, sinks=[sink])
    report.policy_version = manager.policy.version
    recorded_transitions: list[tuple[Any, ...]] = []
    elapsed = 0.0
    for index, rec in enumerate(records, start=1):
        if progress is not None and index % 1000 == 0:
            progress(index, len(records))
        offset = (rec["ts"] - start).total_seconds()
        if offset > elapsed:
            clock.advance(offset - elapsed)
            elapsed = offset
        _apply(manager, rec, report, recorded_transitions, policy is not None)
    if progress is not None:
        progress(len(records), len(records))
    manager.close()
    replayed_transitions = [
        (
            e.workflow_id,
            e.previous_state.value if e.previous_state else None,
            e.state.value if e.state else None,
            e.cause,
        )
        for e in sink.transitions
        if e.cause not in _EXTERNAL_CAUSES
    ]
    for e in sink.transitions:
        report.replayed[e.state.value if e.state else "?"] += 1
    report.replayed_blocked_gates = sum(
        1 for e in sink.of_kind(EventKind.GATE) if e.allowed is False
    )
    if policy is None:
        for i in range(max(len(recorded_transitions), len(replayed_transitions))):
            got = replayed_transitions[i] if i < len(replayed_transitions) else None
            want = recorded_transitions[i] if i < len(recorded_transitions) else None
            if got != want:
                report.mismatches.append({"index": i, "recorded": want, "replayed": got})
    return report


def _apply(
    manager: AutoHealManager,
    rec: dict[str, Any],
    report: ReplayReport,
    recorded_transitions: list[tuple[Any, ...]],
    what_if: bool,
) -> None:
    kind = rec["kind"]
    wid, step = rec.get("workflow_id"), rec.get("step_id")
    details = rec.get("details") or {}
    if kind == EventKind.GATE:
        report.gates += 1
        if rec.get("allowed") is False:
            report.recorded_blocked_gates += 1
        allowed, _ = manager.should_execute_step(wid, step)  # type: ignore[arg-type]
        if not what_if and allowed != rec.get("allowed"):
            report.gate_mismatches += 1
            if len(report.mismatches) < 50:
                report.mismatches.append(
                    {
                        "seq": rec["seq"],
                        "gate": wid,
                        "step": step,
                        "recorded": rec.get("allowed"),
                        "replayed": allowed,
                    }
                )
    elif kind == EventKind.RESULT:
        result = StepResult(
            outcome=rec["outcome"],
            confidence=rec.get("confidence"),
            second_best=rec.get("second_best"),
            validated=bool(rec.get("validated")),
            duration_s=rec.get("duration_s"),
            details=details,
        )
        manager.on_step_result(wid, step, result)  # type: ignore[arg-type]
    elif kind == EventKind.TRANSITION:
        report.recorded[rec["state"]] += 1
        if rec.get("cause") == "operator":
            try:
                manager.force_transition(
                    str(wid),
                    ExecutionState(rec["state"]),
                    reason=rec.get("message") or "replayed",
                    actor=rec.get("actor") or "operator",
                )
            except AutoHealError as exc:
                report.mismatches.append({"seq": rec["seq"], "operator": wid, "error": str(exc)})
        elif rec.get("cause") in _EXTERNAL_CAUSES:
            # A regression or a restore: decided by the versioned store, an input here.
            try:
                manager._replay_transition(
                    str(wid),
                    ExecutionState(rec["state"]),
                    Cause(rec["cause"]),
                    rec.get("message") or "replayed",
                    rec.get("actor"),
                )
            except AutoHealError as exc:
                report.mismatches.append({"seq": rec["seq"], "external": wid, "error": str(exc)})
        else:
            recorded_transitions.append(
                (wid, rec.get("previous_state"), rec["state"], rec.get("cause"))
            )
    elif kind == EventKind.ACTIVATION and rec.get("artifact_version"):
        if wid is None:  # a version set activated for every workflow
            manager.activate_artifact_version(rec["artifact_version"], reason="replayed")
        else:
            manager.set_artifact_version(wid, rec["artifact_version"], reason="replayed")
    elif kind == EventKind.POLICY_RELOAD and not what_if and "policy" in details:
        manager.update_policy(PolicyConfig.from_dict(details["policy"]))
