"""Checkpoints: everything the machine needs to continue, as one JSON value, and back.

:func:`capture` turns a :class:`~._ledger.Ledger` into a JSON-ready dict as of one instant;
:func:`restore` puts such a dict into a fresh ledger. Per workflow: state, since, why, the
step and workflow windows' entries, the streaks and counters, the artifact versions with
their counts, the probe's bookkeeping (not the status page's bounded history of the last
transitions and errors, which no decision reads, nor the steps with no counter and no window
entry: a step met again starts so); the global scope (window,
quarantined set, pause latch); the calibration windows and overrides; whether a store is
attached; the fleet scopes this host leaves to the fleet and its probe leases; the policy in
force.

Times on the machine's monotonic clock are kept as *ages* (seconds before the checkpoint's
instant; a deadline still ahead has a negative age), so a checkpoint restores onto any clock:
a new process's, or replay's recorded time. Wall times are ISO strings.

Invariant (held by a property test): a machine restored from a checkpoint taken at ``t``
decides every later input exactly as the machine it was taken from.

Pure: no clock reads, no I/O.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..base._events import RuleFiring
from ..base._models import ExecutionState
from ..policy._config import PolicyConfig
from ..semconv import EventKind, Reason
from . import _breakers as br
from ._ledger import At, Ledger
from ._windows import TRIGGERS, SlidingWindow

__all__ = ["CHECKPOINT_VERSION", "MAX_CHECKPOINT_BYTES", "capture", "record", "restore"]


#: The layout of a checkpoint's ``details``; a change bumps it and keeps the old reader.
CHECKPOINT_VERSION = 1
#: The largest checkpoint recorded (DuckDB reads JSON objects of up to 16 MB).
MAX_CHECKPOINT_BYTES = 8 * 1024 * 1024


def _age(now: float, t: float | None) -> float | None:
    return None if t is None else round(now - t, 6)


def _at(now: float, age: float | None) -> float | None:
    return None if age is None else now - age


def _window(window: SlidingWindow | None, now: float) -> list[list[Any]] | None:
    if window is None:
        return None
    window.evict(now)
    return [[round(now - t, 6), i] for t, i in window._entries]


def _refill(window: SlidingWindow, entries: list[list[Any]] | None, now: float) -> None:
    for age, index in entries or ():
        window.add(now - float(age), TRIGGERS[int(index)])


def _rule(rule: RuleFiring | None) -> dict[str, Any] | None:
    return None if rule is None else rule.to_dict()


def _unrule(data: dict[str, Any] | None) -> RuleFiring | None:
    if not data:
        return None
    return RuleFiring(
        data["rule"],
        data["scope"],
        data["key"],
        int(data["count"]),
        int(data["threshold"]),
        data.get("window_seconds"),
    )


def _state(value: str | None) -> ExecutionState | None:
    return None if value is None else ExecutionState(value)


def _step(step: br.StepRuntime, now: float) -> list[Any] | None:
    """Return a step's counters and window entries; None for a step with none (a step met
    again starts so): most of a large host's steps, left out to keep a checkpoint small
    enough for every reader to parse (DuckDB holds a parsed record several times its size).
    An empty window is written as none: both count nothing, and a machine that met the step's
    last failure before the checkpoint and one restored from it must capture alike."""
    entries = _window(step.window, now) or None
    tnf, low = step.consecutive_target_not_found, step.consecutive_low_confidence
    if not tnf and not low and not entries:
        return None
    return [tnf, low, entries]


def _workflow(wf: br.WorkflowRuntime, now: float) -> dict[str, Any]:
    return {
        "state": wf.state.value,
        "previous_state": wf.previous_state.value if wf.previous_state else None,
        "since": wf.since.isoformat(),
        "since_age": _age(now, wf.since_monotonic),
        "reason": wf.reason,
        "actor": wf.actor,
        "artifact_version": wf.artifact_version,
        "versions": list(wf.versions),
        "version_counts": {k: list(v) for k, v in wf.version_counts.items()},
        "rule": _rule(wf.rule),
        "window": _window(wf.window, now),
        "steps": {
            sid: entry for sid, s in wf.steps.items() if (entry := _step(s, now)) is not None
        },
        "recovery_streak": wf.recovery_streak,
        "executions": wf.executions,
        "failures": wf.failures,
        "probe": [
            wf.probe_cooldown,
            _age(now, wf.probe_ready_at),
            _age(now, wf.probe_deadline),
            wf.probe_step,
        ],
    }


def capture(ledger: Ledger, now: float, ts: datetime) -> dict[str, Any]:
    """Return the machine's state as of ``now`` (monotonic) = ``ts`` (wall), JSON-ready."""
    glob = ledger.glob
    calibration = ledger.calibration
    return {
        "checkpoint_version": CHECKPOINT_VERSION,
        "as_of": ts.isoformat(),
        "policy": ledger.policy.to_record(),
        "versioned": ledger.versioned,
        "fleet_scopes": sorted(ledger.fleet_scopes),
        "probe_permits": {w: _age(now, t) for w, t in sorted(ledger.probe_permits.items())},
        "artifact_default": ledger.artifact_default,
        "global": {
            "window": _window(glob.window, now),
            "quarantined": sorted(glob.quarantined),
            "paused": glob.paused,
            "cause": glob.cause,
            "paused_since": glob.paused_since.isoformat() if glob.paused_since else None,
            "reason": glob.reason,
            "rule": _rule(glob.rule),
        },
        "calibration": {
            "overrides": dict(calibration.overrides),
            "samples": {m: [list(p) for p in kept] for m, kept in calibration.samples.items()},
            "recorded": dict(calibration.recorded),
            "since": {m: t.isoformat() for m, t in calibration.since.items()},
        },
        "workflows": {wid: _workflow(wf, now) for wid, wf in sorted(ledger.workflows.items())},
    }


def restore(ledger: Ledger, data: dict[str, Any], now: float, *, policy: bool = True) -> None:
    """Put a checkpoint into ``ledger`` (fresh, or to be replaced) as of ``now``.

    Args:
        ledger: the ledger to fill; its workflows and global scope are replaced.
        data: what :func:`capture` returned (from the log: the record's ``details``).
        now: the instant of the checkpoint on this ledger's monotonic clock.
        policy: False to keep the ledger's own policy (a what-if) instead of the recorded one.

    Raises:
        ValueError: the checkpoint's layout is not one this release reads.
    """
    if data.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint_version {data.get('checkpoint_version')!r} is not known")
    if policy and data.get("policy"):
        ledger.set_policy(PolicyConfig.from_dict(data["policy"]))
    config = ledger.policy
    ledger.versioned = bool(data.get("versioned"))
    ledger.artifact_default = data.get("artifact_default")
    ledger.fleet_scopes = frozenset(data.get("fleet_scopes") or ())
    g = data["global"]
    glob = ledger.glob  # changed in place: the machine holds on to it
    glob.window = SlidingWindow(config.breakers.global_.window_seconds)
    _refill(glob.window, g["window"], now)
    glob.quarantined = set(g["quarantined"])
    glob.paused = bool(g["paused"])
    glob.cause = g["cause"]
    glob.paused_since = datetime.fromisoformat(g["paused_since"]) if g["paused_since"] else None
    glob.reason = g["reason"]
    glob.rule = _unrule(g["rule"])
    permits = ledger.probe_permits  # changed in place, like the workflows
    permits.clear()
    permits.update({w: now - float(age) for w, age in (data.get("probe_permits") or {}).items()})
    cal = data["calibration"]
    calibrator = ledger.calibration
    samples = [(m, float(c), bool(ok)) for m, kept in cal["samples"].items() for c, ok in kept]
    calibrator.restart(config.calibration, samples)
    if cal["overrides"]:
        calibrator.overrides = dict(cal["overrides"])
        calibrator.retune(config.calibration)
    calibrator.recorded = {m: float(v) for m, v in cal["recorded"].items()}
    calibrator.since = {m: datetime.fromisoformat(t) for m, t in cal["since"].items()}
    workflows = ledger.workflows  # changed in place: the machine holds on to the dict
    workflows.clear()
    workflows.update(
        {wid: _unworkflow(wid, w, config, now) for wid, w in data["workflows"].items()}
    )


def _unworkflow(
    wid: str, w: dict[str, Any], config: PolicyConfig, now: float
) -> br.WorkflowRuntime:
    since = datetime.fromisoformat(w["since"])
    wf = br.WorkflowRuntime(wid, config.for_workflow(wid), now, since)
    wf.state = ExecutionState(w["state"])
    wf.previous_state = _state(w["previous_state"])
    since_mono = _at(now, w["since_age"])
    wf.since_monotonic = now if since_mono is None else since_mono
    wf.reason = w["reason"]
    wf.actor = w["actor"]
    wf.artifact_version = w["artifact_version"]
    wf.versions = list(w["versions"])
    wf.version_counts = {k: [int(n), int(s)] for k, (n, s) in w["version_counts"].items()}
    wf.rule = _unrule(w["rule"])
    _refill(wf.window, w["window"], now)
    for sid, (tnf, low, entries) in w["steps"].items():
        step = br.StepRuntime()
        step.consecutive_target_not_found = int(tnf)
        step.consecutive_low_confidence = int(low)
        if entries:  # (an empty window, as older checkpoints wrote it, is none)
            step.window = SlidingWindow(wf.policy.step_breaker.window_seconds)
            _refill(step.window, entries, now)
        wf.steps[sid] = step
    wf.recovery_streak = int(w["recovery_streak"])
    wf.executions = int(w["executions"])
    wf.failures = int(w["failures"])
    cooldown, ready, deadline, probe_step = w["probe"]
    wf.probe_cooldown = float(cooldown)
    wf.probe_ready_at = _at(now, ready)
    wf.probe_deadline = _at(now, deadline)
    wf.probe_step = probe_step
    wf.refresh()
    return wf


def record(ledger: Ledger, at: At) -> int | None:
    """Input: record a checkpoint of the machine as of now (nothing when nothing is recorded).

    Returns the size of a checkpoint too large to record (the caller logs it), else ``None``.
    """
    if at.events is None:
        return None
    wall = ledger.wall(at.now, at.ts)
    details = capture(ledger, at.now, wall)
    size = len(json.dumps(details, separators=(",", ":")))
    if size > MAX_CHECKPOINT_BYTES:  # a line every reader can still read, or none
        return size
    count = len(details["workflows"])
    ledger.record(
        at,
        EventKind.CHECKPOINT,
        reason=Reason.CHECKPOINT,
        message=f"checkpoint of {count} workflow{'s' if count != 1 else ''}",
        details=details,
    )
    return None
