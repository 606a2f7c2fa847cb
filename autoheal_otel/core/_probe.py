"""The rules that leave or watch a state: the half-open probe and recovery.

Functions over a :class:`~._ledger.Ledger` and one workflow's runtime; like the ledger they
read no clock and do no I/O. Invariants:

- a quarantine admits at most one probe step at a time (with the fleet link up, only on the
  host holding the fleet's probe lease); a probe that sends no result before
  its deadline counts as failed, and every failure backs the cool-down off (capped);
- a DEGRADED workflow returns to RUNNING only after ``recovery_successes`` consecutive
  results that :func:`~._breakers.counts_toward_recovery` accepts; any other result resets
  the streak;
"""

from __future__ import annotations

from ..base._events import RuleFiring
from ..base._models import ExecutionState, StepResult
from ..semconv import Cause, EventKind, Reason, Rule
from . import _breakers as br
from ._ledger import At, Ledger

__all__ = ["blocked_gate", "degraded_reason", "degraded_success", "probe_result"]

RUNNING = ExecutionState.RUNNING
DEGRADED = ExecutionState.DEGRADED
QUARANTINED = ExecutionState.QUARANTINED


def degraded_reason(wf: br.WorkflowRuntime) -> str:
    """Return the gate's answer for a DEGRADED workflow (its settings and recovery streak)."""
    p = wf.policy
    return (
        f"degraded: min confidence {p.confidence.degraded_threshold:.2f}, learning "
        f"{'frozen' if p.degraded.freeze_learning else 'on'}, recovery "
        f"{wf.recovery_streak}/{p.degraded.recovery_successes}"
    )


def blocked_gate(
    ledger: Ledger,
    wf: br.WorkflowRuntime,
    step_id: str,
    at: At,
) -> tuple[bool, str]:
    """Answer a gate in a blocked state: refused, except the quarantine's one probe."""
    now = at.now
    since = wf.since.isoformat(timespec="seconds").replace("+00:00", "Z")
    if wf.state is QUARANTINED and wf.policy.quarantine.probe_enabled:
        if wf.probe_step is not None and wf.probe_deadline is not None and now >= wf.probe_deadline:
            _probe_failed(
                ledger,
                wf,
                at,
                Reason.PROBE_EXPIRED,
                "the probe sent no result in time",
            )
        if (
            wf.probe_step is None
            and wf.probe_ready_at is not None
            and now >= wf.probe_ready_at
            and (
                "workflow" not in ledger.fleet_scopes
                or ledger.probe_permits.pop(wf.workflow_id, -1.0) > now
            )
        ):
            wf.probe_step = step_id
            wf.probe_deadline = now + wf.policy.quarantine.probe_timeout_seconds
            ledger.record(
                at,
                EventKind.PROBE,
                wf.workflow_id,
                step_id,
                wf.state,
                reason=Reason.PROBE_ADMITTED.value,
                message="half-open probe admitted",
                rule=RuleFiring(Rule.QUARANTINE_PROBE, "workflow", wf.workflow_id, 1, 1),
            )
            return True, f"quarantine probe: one trial step (quarantined since {since})"
        if wf.probe_step is not None:
            return False, f"quarantined since {since}: probe in flight on step {wf.probe_step!r}"
    return False, f"{wf.state.value} since {since}: {wf.reason}"


def degraded_success(
    ledger: Ledger,
    wf: br.WorkflowRuntime,
    result: StepResult,
    at: At,
) -> None:
    """Count a clean result of a DEGRADED workflow toward recovery; recover at the threshold."""
    if not br.counts_toward_recovery(result, wf.policy):
        wf.recovery_streak = 0
        return
    wf.recovery_streak += 1
    needed = wf.policy.degraded.recovery_successes
    if wf.recovery_streak >= needed:
        firing = RuleFiring(
            Rule.DEGRADED_RECOVERY, "workflow", wf.workflow_id, wf.recovery_streak, needed
        )
        ledger.move(
            wf,
            RUNNING,
            Cause.RECOVERY,
            at,
            firing,
            f"recovered: {wf.recovery_streak} consecutive validated successes",
        )


def probe_result(
    ledger: Ledger,
    wf: br.WorkflowRuntime,
    result: StepResult,
    clean: bool,
    at: At,
) -> None:
    """Release a quarantine whose probe succeeded; back the cool-down off when it failed."""
    if clean and br.counts_toward_recovery(result, wf.policy):
        target = DEGRADED if wf.policy.quarantine.release_to == "degraded" else RUNNING
        firing = RuleFiring(Rule.QUARANTINE_PROBE, "workflow", wf.workflow_id, 1, 1)
        ledger.move(
            wf,
            target,
            Cause.PROBE_SUCCESS,
            at,
            firing,
            "released: the half-open probe succeeded",
        )
    else:
        _probe_failed(ledger, wf, at, Reason.PROBE_FAILED, "the half-open probe failed")


def _probe_failed(
    ledger: Ledger,
    wf: br.WorkflowRuntime,
    at: At,
    code: Reason,
    message: str,
) -> None:
    q = wf.policy.quarantine
    wf.probe_cooldown = min(
        wf.probe_cooldown * q.probe_backoff_factor, q.probe_max_cooldown_seconds
    )
    wf.probe_ready_at = at.now + wf.probe_cooldown
    step_id, wf.probe_step, wf.probe_deadline = wf.probe_step, None, None
    ledger.record(
        at,
        EventKind.PROBE,
        wf.workflow_id,
        step_id,
        wf.state,
        reason=code.value,
        message=f"{message}; next probe in {wf.probe_cooldown:g} s",
    )
