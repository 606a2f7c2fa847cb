"""The artifact versions a workflow runs on: counted, judged by the regression rule, restored.

Every result is counted against the version set it ran on; once a set has
``rollback.min_executions`` results and an older set to compare with, the regression rule
(:mod:`~._regression`) judges it: a measured drop moves the workflow into
ROLLBACK and asks for a :class:`Restore`; a pass may mark the set
known-good. When the restore is done the workflow leaves ROLLBACK (:func:`restore_done`).
Functions over the ledger; no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..base._events import RuleFiring
from ..base._models import ExecutionState, Outcome, StepResult
from ..semconv import Cause, Rule
from . import _breakers as br
from ._ledger import At, Events, Ledger, Trace
from ._regression import RegressionVerdict, evaluate

__all__ = ["Action", "MarkKnownGood", "Restore", "count", "judge", "restore_done"]

RUNNING = ExecutionState.RUNNING
DEGRADED = ExecutionState.DEGRADED
ROLLBACK = ExecutionState.ROLLBACK
PAUSED = ExecutionState.PAUSED
SUCCESS = Outcome.SUCCESS


@dataclass(frozen=True, slots=True)
class Restore:
    """Action: restore the last known-good artifact set, then report :meth:`restore_done`."""

    workflow_id: str
    reason: str
    actor: str


@dataclass(frozen=True, slots=True)
class MarkKnownGood:
    """Action: the workflow's active artifact version passed the regression rule."""

    workflow_id: str
    verdict: RegressionVerdict


Action = Restore | MarkKnownGood | None


def count(
    ledger: Ledger,
    wf: br.WorkflowRuntime,
    result: StepResult,
    now: float,
    ts: datetime | None,
    trace: Trace,
    events: Events,
) -> Action:
    """Count a result against the version set it ran on; judge the set once it has enough.

    Called on every result of a workflow with an active version: it takes the hook's four
    context values, and builds the :class:`~._ledger.At` only to judge."""
    version = wf.artifact_version
    assert version is not None  # the caller checks
    counts = wf.version_counts.get(version)
    if counts is None:
        counts = wf.version_counts[version] = [0, 0]
    counts[0] += 1
    if result.outcome is SUCCESS:
        counts[1] += 1
    if counts[0] >= ledger.policy.rollback.min_executions and len(wf.versions) > 1:
        return judge(ledger, wf, At(now, ts, trace, events))
    return None


def judge(
    ledger: Ledger,
    wf: br.WorkflowRuntime,
    at: At,
) -> Action:
    """Apply the regression rule to a workflow's active version."""
    policy = ledger.policy.rollback
    previous, active = wf.previous_and_active()
    verdict = evaluate(wf.workflow_id, previous, active, policy)
    if not ledger.versioned:
        return None
    if verdict.verdict == "fail" and policy.enabled and wf.state in (RUNNING, DEGRADED):
        firing = RuleFiring(
            Rule.ROLLBACK_REGRESSION,
            "workflow",
            wf.workflow_id,
            round(verdict.drop_points or 0.0),
            int(policy.success_rate_drop_points),
        )
        ledger.move(
            wf,
            ROLLBACK,
            Cause.REGRESSION,
            at,
            firing,
            verdict.reason,
            details=verdict.to_dict(),
        )
        return Restore(wf.workflow_id, verdict.reason, "autoheal")
    if verdict.verdict == "pass" and policy.mark_known_good:
        return MarkKnownGood(wf.workflow_id, verdict)
    return None


def restore_done(
    ledger: Ledger,
    workflow_id: str,
    restored: str | None,
    error: str | None,
    actor: str,
    details: Mapping[str, Any] | None,
    at: At,
) -> bool:
    """Input: a restore finished (``restored`` names the set) or failed (``error``).

    Leaves ROLLBACK for DEGRADED, or PAUSED when the restore failed; returns False (and
    changes nothing) when the workflow is no longer in ROLLBACK.
    """
    wf = ledger.workflows.get(workflow_id)
    if wf is None or wf.state is not ROLLBACK:
        return False
    if restored is not None:
        ledger.move(
            wf,
            DEGRADED,
            Cause.RESTORE_OK,
            at,
            Rule.ROLLBACK_RESTORE,
            f"restored {restored}",
            actor=actor,
            details=details,
        )
    else:
        ledger.move(
            wf,
            PAUSED,
            Cause.RESTORE_FAILED,
            at,
            Rule.ROLLBACK_RESTORE,
            f"restore failed: {error}",
            actor=actor,
        )
    return True
