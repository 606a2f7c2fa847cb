"""The machine's inputs from outside the hooks: activations, policy, sessions, restarts.

Functions over a :class:`~._ledger.Ledger`, pure like it: an artifact version became
active, a policy changed or was rejected, a manager started or stopped (or a store was
attached), another writer recorded a global pause in a shared directory, the
log was read back at a warm restart, or (in replay) a process restarted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..base._models import ExecutionState
from ..policy._config import PolicyConfig
from ..semconv import EventKind, Reason
from . import _breakers as br
from . import _calibration, _checkpoint
from ._ledger import At, Ledger
from ._warm import apply_restored

__all__ = [
    "activate",
    "change_policy",
    "note_session",
    "reject_policy",
    "restart",
    "restore",
    "shared_pause",
]


def activate(
    ledger: Ledger,
    workflow_id: str | None,
    version: str,
    reason: str,
    actor: str,
    at: At,
) -> None:
    """Input: an artifact version became active for one workflow (or, None, for all)."""
    if workflow_id is None:
        previous = ledger.artifact_default
        ledger.artifact_default = version
        for wf in ledger.workflows.values():
            wf.activate(version)
        state = None
    else:
        wf = ledger.workflow(workflow_id, at)
        previous = wf.artifact_version
        wf.activate(version)
        state = wf.state
    ledger.record(
        at,
        EventKind.ACTIVATION,
        workflow_id,
        None,
        state,
        reason=Reason.ARTIFACT_ACTIVATED.value,
        message=f"version {version} active: {reason}",
        actor=actor,
        artifact_version=version,
        details={"previous_version": previous},
    )


def _put_in_force(ledger: Ledger, policy: PolicyConfig) -> None:
    """Make ``policy`` the ledger's: every workflow and the global window follow it."""
    ledger.set_policy(policy)
    for wid, wf in ledger.workflows.items():
        wf.retune(policy.for_workflow(wid))
    ledger.glob.window.window_seconds = policy.breakers.global_.window_seconds


def change_policy(
    ledger: Ledger,
    policy: PolicyConfig,
    source: str,
    at: At,
) -> None:
    """Input: a new policy is in force (recorded with the policy itself)."""
    old = ledger.policy
    _put_in_force(ledger, policy)
    ledger.record(
        at,
        EventKind.POLICY_RELOAD,
        reason=Reason.POLICY_RELOADED.value,
        message=f"policy {old.version} -> {policy.version}",
        details={
            "source": source,
            "previous_version": old.version,
            "policy": policy.to_record(),
        },
    )
    _calibration.retune(ledger, at)


def reject_policy(
    ledger: Ledger,
    message: str,
    field: str,
    source: str,
    at: At,
) -> None:
    """Input: a policy edit was invalid; the one in force stays (recorded)."""
    ledger.record(
        at,
        EventKind.POLICY_REJECTED,
        reason=Reason.POLICY_REJECTED.value,
        message=message,
        details={"field": field, "source": source},
    )


def note_session(
    ledger: Ledger,
    reason: Reason,
    message: str,
    details: Mapping[str, Any],
    at: At,
) -> None:
    """Input: a manager started or stopped, or a store was attached (recorded)."""
    if reason is Reason.STORE_ATTACHED:
        ledger.versioned = True
    ledger.record(
        at,
        EventKind.SESSION,
        reason=reason.value,
        message=message,
        details=dict(details),
    )


def shared_pause(
    ledger: Ledger,
    count: int,
    paused_elsewhere: bool,
    at: At,
) -> None:
    """Input: the global figures of every writer sharing the data directory."""
    if ledger.glob.paused:
        return
    rule = br.GlobalRule.of(ledger.policy.breakers.global_)
    firing = rule.window_firing(count, forced=paused_elsewhere)
    if firing is None:
        return
    ledger.pause_all(firing, at)


def restore(ledger: Ledger, restored: Any, now: float, wall: datetime) -> dict[str, int]:
    """Input: the state a new manager reads back from the log (the warm restart)."""
    figures = apply_restored(restored, ledger.workflows, ledger.glob, ledger.policy, now, wall)
    figures["calibration_samples"] = _calibration.restore(
        ledger, restored.calibration_samples, restored.calibration_recorded
    )
    ledger.seq = max(ledger.seq, restored.max_seq)
    return figures


def resume(ledger: Ledger, resumed: Any, now: float) -> dict[str, Any]:
    """Input: the state a new manager rebuilt from a checkpoint and the records after it
    (``analytics.resume.Resumed``): the warm restart without the whole log.

    The state is put in under this manager's policy, then what a restart does not carry is
    dropped as :func:`restart` says (the fleet link and probe leases start down as well).
    """
    _checkpoint.restore(ledger, resumed.state, now, policy=False)
    ledger.fleet_scopes = frozenset()
    ledger.probe_permits.clear()
    restart(ledger, now, None, resumed.calibration_samples, resumed.streaks)
    ledger.seq = max(ledger.seq, resumed.max_seq)
    return {
        "workflows": len(ledger.workflows),
        "from_checkpoint": resumed.checkpoint_ts.isoformat(),
        "tail_records": resumed.tail_records,
        "calibration_samples": sum(len(w) for w in ledger.calibration.samples.values()),
        "max_seq": resumed.max_seq,
    }


def restart(
    ledger: Ledger,
    now: float,
    policy: PolicyConfig | None,
    calibration_samples: Iterable[tuple[str, float, bool]],
    streaks: Mapping[tuple[str, str], tuple[int, int]],
) -> None:
    """Input: the process restarted here (replay): what a warm restart does not carry.

    ``policy`` is the new process's (from its session record), put in force unrecorded as
    the process started with it; None keeps the one in force (a what-if). A DEGRADED
    workflow's recovery streak starts at zero, a quarantine's probe cool-down starts anew, a
    probe in flight is forgotten. What the restart reads back from the log replaces what the
    last process held (``analytics.restore``): calibration takes the policy's settings
    without the last process's overrides, its windows refilled from ``calibration_samples``
    (the log's decided matches per method, oldest first; each window keeps its last
    ``window``), and each step's two streak counters are ``streaks[(workflow, step)]`` (the
    streak's results within the restore horizon; a step not listed has none).
    """
    if policy is not None and policy.version != ledger.policy.version:
        _put_in_force(ledger, policy)
    ledger.calibration.restart(ledger.policy.calibration, calibration_samples)
    for wid, wf in ledger.workflows.items():
        for step_id, step in wf.steps.items():
            tnf, low = streaks.get((wid, step_id), (0, 0))
            step.consecutive_target_not_found, step.consecutive_low_confidence = tnf, low
        wf.recovery_streak = 0
        wf.probe_cooldown = wf.policy.quarantine.probe_cooldown_seconds
        wf.probe_step = wf.probe_deadline = None
        if wf.state is ExecutionState.QUARANTINED:
            wf.probe_ready_at = now + wf.probe_cooldown
