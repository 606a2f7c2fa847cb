"""Apply what the audit log says (see ``analytics.restore``) to a new manager's runtime.

Called once, from the manager's constructor, before any hook runs. Log timestamps are mapped
onto the new monotonic clock (``mono = now - (wall_now - ts)``), so a failure recorded 100 s
before the restart expires 100 s earlier than one recorded at the restart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..base._events import RuleFiring
from ..base._models import ExecutionState, Trigger
from ..policy._config import PolicyConfig
from . import _breakers as br
from ._windows import SlidingWindow

__all__ = ["apply_restored"]


def _aware(value: datetime | None, default: datetime) -> datetime:
    if value is None:
        return default
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rule(struct: dict[str, Any] | None) -> RuleFiring | None:
    if not struct or struct.get("rule") is None:
        return None
    return RuleFiring(
        struct["rule"],
        struct.get("scope") or "",
        struct.get("key") or "",
        int(struct.get("count") or 0),
        int(struct.get("threshold") or 0),
        struct.get("window_seconds"),
    )


def _restore_windows(
    rows: list[tuple[Any, ...]],
    workflows: dict[str, br.WorkflowRuntime],
    glob: br.GlobalRuntime,
    policy: PolicyConfig,
    now: float,
    wall: datetime,
) -> int:
    """Put the log's in-window failures back into the windows; return the workflow entries."""
    gpolicy = policy.breakers.global_
    entries = 0
    # Plain arithmetic on epoch microseconds: a restart may rebuild tens of thousands of entries.
    wall_us = int(wall.timestamp() * 1_000_000)
    triggers = {t.value: t for t in Trigger}
    for wid, step_id, ts_us, trigger_name, in_workflow, in_global in rows:
        found = workflows.get(wid)
        if found is None:
            continue
        wf = found
        t = now - max(0.0, (wall_us - ts_us) / 1_000_000)
        trigger = triggers[trigger_name]
        if in_workflow and trigger in wf.policy.workflow_breaker.counted_triggers:
            if now - t < wf.window.window_seconds:
                wf.window.add(t, trigger)
                entries += 1
            step_policy = wf.policy.step_breaker
            if (
                step_policy.window_failure_threshold is not None
                and now - t < step_policy.window_seconds
            ):
                step = wf.steps.setdefault(step_id, br.StepRuntime())
                if step.window is None:
                    step.window = SlidingWindow(step_policy.window_seconds)
                step.window.add(t, trigger)
        if in_global and trigger in gpolicy.counted_triggers and now - t < gpolicy.window_seconds:
            glob.window.add(t, trigger)
    return entries


def apply_restored(
    restored: Any,
    workflows: dict[str, br.WorkflowRuntime],
    glob: br.GlobalRuntime,
    policy: PolicyConfig,
    now: float,
    wall: datetime,
) -> dict[str, int]:
    """Rebuild workflows, windows, streaks and the global scope; return what was restored."""

    def mono(ts: datetime | None) -> float:
        if ts is None:
            return now
        return now - max(0.0, (wall - _aware(ts, wall)).total_seconds())

    for row in restored.workflows:
        wid = row["workflow_id"]
        wf = br.WorkflowRuntime(wid, policy.for_workflow(wid), now, wall)
        wf.state = ExecutionState(row["state"])
        wf.previous_state = ExecutionState(row["previous_state"]) if row["previous_state"] else None
        wf.since = _aware(row["since"], wall)
        wf.since_monotonic = mono(row["since"])
        wf.reason = row["reason"] or "restored"
        wf.actor = row["actor"]
        wf.rule = _rule(row["rule"])
        wf.refresh()
        if wf.state is ExecutionState.QUARANTINED:
            glob.quarantined.add(wid)
            wf.probe_ready_at = now + wf.probe_cooldown
        workflows[wid] = wf
    entries = _restore_windows(restored.entries, workflows, glob, policy, now, wall)
    for streak in restored.streaks:
        owner = workflows.get(streak["workflow_id"])
        if owner is None:
            continue
        step = owner.steps.setdefault(streak["step_id"], br.StepRuntime())
        step.consecutive_target_not_found = int(streak["consecutive_target_not_found"])
        step.consecutive_low_confidence = int(streak["consecutive_low_confidence"])
    for row in restored.versions:  # in order of last activation: the active version last
        wid = row["workflow_id"]
        owner = workflows.get(wid)
        if owner is None:
            owner = workflows[wid] = br.WorkflowRuntime(wid, policy.for_workflow(wid), now, wall)
        owner.version_counts[row["artifact_version"]] = [
            int(row["executions"]),
            int(row["successes"]),
        ]
        owner.activate(row["artifact_version"])
    g = restored.global_state
    if g is not None and g["state"] == ExecutionState.PAUSED.value:
        glob.paused = True
        glob.paused_since = _aware(g["since"], wall)
        glob.reason = g["reason"] or "restored"
        glob.rule = _rule(g["rule"])
    return {
        "workflows": len(restored.workflows),
        "window_entries": entries,
        "steps": len(restored.streaks),
        "max_seq": restored.max_seq,
    }
