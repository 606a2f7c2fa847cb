"""The status report: every workflow's state and counters against thresholds, and health.

Built under the manager's lock from its runtime objects; the result is an immutable pydantic
model that serializes to JSON (the CLI's ``status`` and the ``/status`` endpoint print it).
Global health: ``critical`` when the global breaker paused everything, ``degraded`` when any
workflow is not RUNNING, else ``ok``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..base._errors import PolicyError
from ..base._models import EffectiveSettings, ExecutionState, FailureWindow
from ..policy._config import WorkflowPolicy
from ..semconv import Rule
from ._ledger import Ledger

__all__ = [
    "GlobalStatus",
    "MethodCalibration",
    "StatusReport",
    "StepStatus",
    "WorkflowStatus",
    "build_report",
    "effective_settings",
]

Health = Literal["ok", "degraded", "critical"]


class PublishCounts(Protocol):
    """What the report reads of the publisher: events handed on, and failures per sink."""

    @property
    def published(self) -> int: ...

    @property
    def errors(self) -> Mapping[str, int]: ...


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)


class StepStatus(_Model):
    """The consecutive counters of one step against their thresholds."""

    consecutive_target_not_found: int
    consecutive_target_not_found_threshold: int
    consecutive_low_confidence: int
    consecutive_low_confidence_threshold: int
    window: FailureWindow | None = None


class WorkflowStatus(_Model):
    """One workflow in the status report."""

    workflow_id: str
    state: ExecutionState
    since: AwareDatetime
    reason: str
    rule: dict[str, Any] | None = None
    previous_state: ExecutionState | None = None
    actor: str | None = None
    executions: int
    failures: int
    window: FailureWindow
    steps: dict[str, StepStatus] = Field(default_factory=dict)
    recovery_streak: int
    recovery_required: int
    settings: EffectiveSettings
    #: Executions per artifact version, in order of activation (the active version last).
    versions: dict[str, int] = Field(default_factory=dict)
    #: Successes per artifact version (the regression rule compares the last two).
    version_successes: dict[str, int] = Field(default_factory=dict)
    history: list[dict[str, Any]] = Field(default_factory=list)
    last_errors: list[dict[str, Any]] = Field(default_factory=list)
    probe_ready_in_s: float | None = None


class GlobalStatus(_Model):
    """The global scope in the status report."""

    health: Health
    paused: bool
    paused_since: AwareDatetime | None = None
    reason: str = ""
    window: FailureWindow
    quarantined_workflows: int
    quarantined_workflows_threshold: int
    states: dict[ExecutionState, int]


class MethodCalibration(_Model):
    """One matching method's calibrated threshold and its evidence (the last window)."""

    samples: int
    correct: int
    precision: float | None = None
    #: The threshold last recorded (None until ``min_samples`` decided matches).
    threshold: float | None = None
    #: Calibration is on: the executor's settings apply the threshold.
    applied: bool = False
    target_precision: float
    min_samples: int
    window: int
    #: When the threshold in force was recorded.
    since: AwareDatetime | None = None


class StatusReport(_Model):
    """What :meth:`AutoHealManager.get_status_report` returns."""

    generated_at: AwareDatetime
    policy_version: str
    last_policy_error: str | None = None
    global_: GlobalStatus = Field(alias="global")
    workflows: dict[str, WorkflowStatus]
    events_published: int
    sink_errors: dict[str, int] = Field(default_factory=dict)
    #: Per matching method: the calibrated threshold and its evidence.
    calibration: dict[str, MethodCalibration] = Field(default_factory=dict)
    #: This host's fleet link (None with the fleet off): host, connected, why not, queue.
    fleet: dict[str, Any] | None = None
    #: The data directory's disk use by part against the retention budget (None: no directory).
    disk: dict[str, Any] | None = None
    #: The policy's shadow in this process (None: none runs): its name, process id, whether
    #: it is alive, its exit code, the inputs it judged and skipped, and the writer it follows.
    shadow: dict[str, Any] | None = None

    def to_json(self, indent: int | None = 2) -> str:
        """Return the report as JSON (``global`` spelled out)."""
        return self.model_dump_json(by_alias=True, indent=indent)


def effective_settings(
    workflow_id: str,
    state: ExecutionState,
    policy: WorkflowPolicy,
    method_thresholds: Mapping[str, float] | None = None,
) -> EffectiveSettings:
    """Return the executor-facing settings of a workflow in ``state``.

    ``method_thresholds`` are calibrated per matching method; a method's effective threshold
    is the larger of it and the state's minimum confidence.
    """
    degraded = state is not ExecutionState.RUNNING
    mode = policy.degraded if degraded else policy.running
    floor = policy.confidence.degraded_threshold if degraded else policy.confidence.normal_threshold
    return EffectiveSettings(
        method_thresholds={m: max(floor, t) for m, t in (method_thresholds or {}).items()},
        workflow_id=workflow_id,
        state=state,
        min_confidence=(
            policy.confidence.degraded_threshold if degraded else policy.confidence.normal_threshold
        ),
        low_confidence_floor=policy.confidence.low_confidence_floor,
        learning_enabled=state is ExecutionState.RUNNING
        or (state is ExecutionState.DEGRADED and not policy.degraded.freeze_learning),
        strict_ambiguity=mode.strict_ambiguity,
        ambiguity_margin=policy.confidence.ambiguity_margin,
        postcondition_required=mode.postcondition_required,
        step_delay_ms=mode.step_delay_ms,
        max_retries=mode.max_retries,
        step_allowed=not state.is_blocked,
    )


def _window(
    scope: str, key: str, rule: str, window: Any, threshold: int | None, now: float
) -> FailureWindow:
    return FailureWindow(
        scope=scope,
        key=key,
        rule=rule,
        window_seconds=window.window_seconds,
        count=window.total(now),
        threshold=threshold,
        counts_by_trigger=window.counts(now),
    )


def build_report(
    ledger: Ledger,
    now: float,
    wall: datetime,
    last_policy_error: PolicyError | None,
    publisher: PublishCounts,
) -> StatusReport:
    """Assemble the report (call it with the manager's lock held)."""
    workflows, glob, policy = ledger.workflows, ledger.glob, ledger.policy
    published, sink_errors = publisher.published, dict(publisher.errors)
    states = dict.fromkeys(ExecutionState, 0)
    entries: dict[str, WorkflowStatus] = {}
    calibrated = ledger.calibration.thresholds()
    for wid, wf in workflows.items():
        states[wf.state] += 1
        wp = wf.policy
        sp = wp.step_breaker
        steps = {
            sid: StepStatus(
                consecutive_target_not_found=s.consecutive_target_not_found,
                consecutive_target_not_found_threshold=sp.consecutive_target_not_found,
                consecutive_low_confidence=s.consecutive_low_confidence,
                consecutive_low_confidence_threshold=sp.consecutive_low_confidence,
                window=(
                    _window(
                        "step",
                        sid,
                        Rule.STEP_FAILURE_WINDOW,
                        s.window,
                        sp.window_failure_threshold,
                        now,
                    )
                    if s.window is not None
                    else None
                ),
            )
            for sid, s in wf.steps.items()
        }
        probe_in = None
        if (
            wf.state is ExecutionState.QUARANTINED
            and wp.quarantine.probe_enabled
            and wf.probe_ready_at
        ):
            probe_in = max(0.0, wf.probe_ready_at - now)
        last_errors = [
            {
                **{k: v for k, v in e.items() if k != "monotonic"},
                "ts": (wall - timedelta(seconds=now - e["monotonic"])).isoformat(),
            }
            for e in wf.last_errors or ()
        ]
        entries[wid] = WorkflowStatus(
            workflow_id=wid,
            state=wf.state,
            since=wf.since,
            reason=wf.reason,
            rule=wf.rule.to_dict() if wf.rule else None,
            previous_state=wf.previous_state,
            actor=wf.actor,
            executions=wf.executions,
            failures=wf.failures,
            window=_window(
                "workflow",
                wid,
                Rule.WORKFLOW_FAILURE_WINDOW,
                wf.window,
                wp.workflow_breaker.failure_threshold,
                now,
            ),
            steps=steps,
            recovery_streak=wf.recovery_streak,
            recovery_required=wp.degraded.recovery_successes,
            settings=effective_settings(wid, wf.state, wp, calibrated),
            history=list(wf.history or ()),
            versions={v: wf.version_counts.get(v, [0, 0])[0] for v in wf.versions},
            version_successes={v: wf.version_counts.get(v, [0, 0])[1] for v in wf.versions},
            last_errors=last_errors,
            probe_ready_in_s=probe_in,
        )
    gp = policy.breakers.global_
    if glob.paused:
        health: Health = "critical"
    elif any(n for s, n in states.items() if s is not ExecutionState.RUNNING):
        health = "degraded"
    else:
        health = "ok"
    return StatusReport(
        generated_at=wall,
        policy_version=policy.version,
        last_policy_error=str(last_policy_error) if last_policy_error else None,
        global_=GlobalStatus(
            health=health,
            paused=glob.paused,
            paused_since=glob.paused_since if glob.paused else None,
            reason=glob.reason if glob.paused else "",
            window=_window(
                "global", "*", Rule.GLOBAL_FAILURE_WINDOW, glob.window, gp.failure_threshold, now
            ),
            quarantined_workflows=len(glob.quarantined),
            quarantined_workflows_threshold=gp.quarantined_workflows_threshold,
            states=states,
        ),
        workflows=entries,
        events_published=published,
        sink_errors=sink_errors,
        calibration=_calibration(ledger),
    )


def _calibration(ledger: Ledger) -> dict[str, MethodCalibration]:
    cal = ledger.calibration
    out = {}
    for method in cal.methods():
        e = cal.evidence(method)
        out[method] = MethodCalibration(
            samples=e.samples,
            correct=e.correct,
            precision=e.precision,
            threshold=e.threshold,
            applied=cal.settings.enabled,
            target_precision=e.target_precision,
            min_samples=e.min_samples,
            window=e.window,
            since=e.since,
        )
    return out
