"""The policy's sections: one pydantic model per concern, each number bounded.

Every field has the design's default, a strict type (a JSON ``true`` or ``"3"`` for a count is
an error) and an upper bound the clock, DuckDB and the log can carry (``MAX_SECONDS``,
``MAX_COUNT``). :class:`~._config.PolicyConfig` composes them and merges per-workflow
overrides into a :class:`WorkflowPolicy`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from ..base._models import Trigger

__all__ = [
    "MAX_COUNT",
    "MAX_SECONDS",
    "MAX_SEGMENT_BYTES",
    "AuditPolicy",
    "BreakerPolicy",
    "ConfidencePolicy",
    "Count",
    "DegradedPolicy",
    "Flag",
    "GlobalBreakerPolicy",
    "HotReloadPolicy",
    "Number",
    "QuarantinePolicy",
    "RollbackPolicy",
    "RunningPolicy",
    "StepBreakerPolicy",
    "VersioningPolicy",
    "WatchdogPolicy",
    "WorkflowBreakerPolicy",
    "WorkflowPolicy",
]


_DEFAULT_COUNTED = (
    Trigger.TARGET_NOT_FOUND,
    Trigger.POSTCONDITION_FAILED,
    Trigger.WATCHDOG_TIMEOUT,
    Trigger.ERROR,
    Trigger.AMBIGUOUS_MATCH,
)


#: Upper bounds every number must respect, so that a policy that validates always runs: a
#: duration must fit the clock's datetime arithmetic (ten years), a count a 32-bit integer (what
#: orjson, DuckDB and every JSON reader carry exactly), a segment 1 TiB.
MAX_SECONDS = 10 * 365.25 * 86_400
MAX_COUNT = 2**31 - 1
MAX_SEGMENT_BYTES = 2**40

# Strict scalars: a JSON `true` or "3" where a count belongs is a mistake, not a 1 or a 3.
Count = Annotated[int, Strict()]
Number = Annotated[float, Strict()]
Flag = Annotated[bool, Strict()]


class _FieldError(ValueError):
    """A consistency error inside a section; ``field`` is relative to that section."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        super().__init__(f"{field} {rule}, but was {value!r}")
        self.field = field
        self.value = value


class _Section(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        validate_by_name=True,
        validate_by_alias=True,
        use_enum_values=False,
    )


def _probability(default: float, description: str) -> Any:
    return Field(default, ge=0.0, le=1.0, description=description)


class ConfidencePolicy(_Section):
    """Match-confidence thresholds."""

    normal_threshold: Number = _probability(0.75, "Minimum match confidence in RUNNING.")
    degraded_boost: Number = _probability(0.10, "Added to the threshold in DEGRADED.")
    degraded_cap: Number = _probability(0.95, "The DEGRADED threshold never exceeds this.")
    low_confidence_floor: Number = _probability(
        0.70, "A best score below this is a low-confidence signal, even on success."
    )
    ambiguity_margin: Number = _probability(0.05, "A top-two score gap below this is ambiguous.")

    @model_validator(mode="after")
    def _consistent(self) -> ConfidencePolicy:
        if self.degraded_cap < self.normal_threshold:
            raise _FieldError(
                "degraded_cap",
                self.degraded_cap,
                f"must be >= normal_threshold ({self.normal_threshold})",
            )
        if self.low_confidence_floor > self.normal_threshold:
            raise _FieldError(
                "low_confidence_floor",
                self.low_confidence_floor,
                f"must be <= normal_threshold ({self.normal_threshold})",
            )
        return self

    @property
    def degraded_threshold(self) -> float:
        """Return the DEGRADED threshold: the normal one raised by the boost, capped."""
        return min(self.normal_threshold + self.degraded_boost, self.degraded_cap)


class StepBreakerPolicy(_Section):
    """Step scope: consecutive counters (and an optional sliding window) -> DEGRADED."""

    consecutive_target_not_found: Count = Field(3, ge=1, le=MAX_COUNT)
    consecutive_low_confidence: Count = Field(3, ge=1, le=MAX_COUNT)
    window_failure_threshold: Count | None = Field(
        None,
        ge=1,
        le=MAX_COUNT,
        description="Failures of one step in the window -> DEGRADED (null: off).",
    )
    window_seconds: Number = Field(600.0, gt=0, le=MAX_SECONDS)


class WorkflowBreakerPolicy(_Section):
    """Workflow scope: failures in a sliding window -> QUARANTINED."""

    failure_threshold: Count = Field(10, ge=1, le=MAX_COUNT)
    window_seconds: Number = Field(600.0, gt=0, le=MAX_SECONDS)
    counted_triggers: tuple[Trigger, ...] = Field(_DEFAULT_COUNTED, min_length=1)


class GlobalBreakerPolicy(_Section):
    """Global scope: failures of all workflows, or quarantined workflows -> PAUSED."""

    failure_threshold: Count = Field(50, ge=1, le=MAX_COUNT)
    window_seconds: Number = Field(600.0, gt=0, le=MAX_SECONDS)
    quarantined_workflows_threshold: Count = Field(3, ge=1, le=MAX_COUNT)
    counted_triggers: tuple[Trigger, ...] = Field(_DEFAULT_COUNTED, min_length=1)
    shared_across_processes: Flag = Field(
        False,
        description="Also count the failures other processes wrote to the shared audit log"
        " (and follow their global pauses), re-read every sync_interval_seconds.",
    )
    sync_interval_seconds: Number = Field(10.0, gt=0, le=MAX_SECONDS)


class BreakerPolicy(_Section):
    """The circuit breakers of the three scopes."""

    step: StepBreakerPolicy = StepBreakerPolicy()
    workflow: WorkflowBreakerPolicy = WorkflowBreakerPolicy()
    global_: GlobalBreakerPolicy = Field(GlobalBreakerPolicy(), alias="global")


class RunningPolicy(_Section):
    """What the executor applies in RUNNING."""

    step_delay_ms: Count = Field(0, ge=0, le=MAX_COUNT)
    max_retries: Count = Field(2, ge=0, le=MAX_COUNT)
    postcondition_required: Flag = False
    strict_ambiguity: Flag = False


class DegradedPolicy(_Section):
    """What changes in DEGRADED, and how it recovers."""

    recovery_successes: Count = Field(
        5, ge=1, le=MAX_COUNT, description="Consecutive validated successes."
    )
    step_delay_ms: Count = Field(500, ge=0, le=MAX_COUNT)
    max_retries: Count = Field(1, ge=0, le=MAX_COUNT)
    postcondition_required: Flag = True
    freeze_learning: Flag = True
    strict_ambiguity: Flag = True


class QuarantinePolicy(_Section):
    """The optional timed half-open probe that can release a quarantine."""

    probe_enabled: Flag = False
    probe_cooldown_seconds: Number = Field(300.0, gt=0, le=MAX_SECONDS)
    probe_backoff_factor: Number = Field(2.0, ge=1.0, le=1000.0)
    probe_max_cooldown_seconds: Number = Field(3600.0, gt=0, le=MAX_SECONDS)
    probe_timeout_seconds: Number = Field(
        120.0,
        gt=0,
        le=MAX_SECONDS,
        description="A probe with no result after this counts as failed.",
    )
    release_to: Literal["degraded", "running"] = "degraded"

    @model_validator(mode="after")
    def _consistent(self) -> QuarantinePolicy:
        if self.probe_max_cooldown_seconds < self.probe_cooldown_seconds:
            raise _FieldError(
                "probe_max_cooldown_seconds",
                self.probe_max_cooldown_seconds,
                f"must be >= probe_cooldown_seconds ({self.probe_cooldown_seconds})",
            )
        return self


class WatchdogPolicy(_Section):
    """The step wrapper's default deadline."""

    default_timeout_seconds: Number = Field(60.0, gt=0, le=MAX_SECONDS)


class RollbackPolicy(_Section):
    """Automatic rollback on a measured regression."""

    enabled: Flag = Field(
        True, description="Roll back automatically on a measured regression (needs a store)."
    )
    mark_known_good: Flag = Field(
        True,
        description="Mark the active set known-good once it passes the regression test.",
    )
    success_rate_drop_points: Number = Field(20.0, gt=0, le=100)
    min_executions: Count = Field(10, ge=1, le=MAX_COUNT)
    confidence_level: Number = Field(0.95, gt=0.5, lt=1.0)


class VersioningPolicy(_Section):
    """Retention of learned-artifact versions."""

    keep_versions: Count = Field(5, ge=1, le=MAX_COUNT)


class AuditPolicy(_Section):
    """The JSONL audit log."""

    fsync: Literal["never", "interval", "always"] = "never"
    fsync_interval_seconds: Number = Field(1.0, gt=0, le=MAX_SECONDS)
    segment_max_bytes: Count = Field(64 * 1024 * 1024, ge=4096, le=MAX_SEGMENT_BYTES)
    rotate_daily: Flag = True
    record_allowed_gates: Flag = Field(
        True,
        description="Record every gate that lets a RUNNING workflow's step run. Off, only"
        " refused gates, probes and gates in other states are recorded (the result line of"
        " the step still shows it ran): half the lines on a healthy fleet.",
    )
    allowed_gates_with_result: Flag = Field(
        False,
        description="Opt-in: hold an allowed gate's line back and write it with the next"
        " decision's, its step's result (one write per step, a little faster). What it"
        " loses: a robot killed between the two leaves no record that it was allowed to"
        " act, exactly the line a post-mortem needs. Off (the default), every decision"
        " reaches the OS before its hook returns.",
    )
    file_mode: str = Field(
        "0600",
        pattern=r"^0?[0-7][0-7][0-7]$",
        description="Permissions of the audit segments and the success store, in octal; the"
        " data directory and its audit folder, when created here, get the same plus the"
        " search bits (0600 -> 0700). The log names robots, workflows and operators: keep it"
        " private, or widen it (0640, 0644) for a log shipper that runs as another user.",
    )
    shared_decisions: Flag = Field(
        False,
        description="Decide as one with every other process writing to this data directory"
        " (pabot, several robots on one host): each input takes the directory's decision"
        " lock, first applies what the others recorded since (their step results and"
        " transitions), then decides and writes before releasing, so a workflow's windows"
        " count every process's failures before the next step. Costs a lock and an 8-byte"
        " read per input when nothing changed. Read when the manager starts. The Robot"
        " Framework listener turns it on.",
    )
    follow_interval_seconds: Number = Field(
        0.2,
        gt=0,
        le=1.0,
        description="How often (seconds of real time) a running manager reads what other"
        " writers appended to the log, to apply their operator moves (`autoheal force`,"
        " `resume`, `versions rollback`, another process) and acknowledge them. At most 1 s:"
        " a move reaches every running robot within a second. A thread of its own; never"
        " on a hook's thread.",
    )
    checkpoint_interval_seconds: Number = Field(
        3600.0,
        ge=60,
        le=MAX_SECONDS,
        description="How often a running manager records a checkpoint: everything its machine"
        " needs to continue (states, windows, streaks, calibration, the policy), so that a"
        " replay of a log whose older segments were deleted starts from it. A thread of its"
        " own; never on a hook's thread.",
    )
    restore_horizon_seconds: Number = Field(
        3600.0,
        gt=0,
        le=MAX_SECONDS,
        description="How far back a warm restart looks for step streaks, idle workflows and"
        " the last sequence number (states, windows and the global scope are always restored"
        " in full).",
    )
    compact_interval_seconds: Number = Field(
        300.0,
        ge=0,
        le=MAX_SECONDS,
        description="How often a background thread compacts the closed segments of the log"
        " (rotated away, or left by a stopped process) into Parquet, so a warm restart reads"
        " mostly Parquet. Never on a hook's thread. 0 turns it off (`autoheal compact` still"
        " compacts by hand).",
    )

    @property
    def mode(self) -> int:
        """Return ``file_mode`` as a number (``0o600``)."""
        return int(self.file_mode, 8)

    @property
    def dir_mode(self) -> int:
        """Return the folders' mode: ``file_mode`` with a search bit wherever it reads."""
        mode = self.mode
        return mode | ((mode & 0o444) >> 2)


class HotReloadPolicy(_Section):
    """How often the manager re-reads a policy file it was given by path."""

    enabled: Flag = True
    check_interval_seconds: Number = Field(5.0, gt=0, le=MAX_SECONDS)


class WorkflowPolicy(_Section):
    """The sections that can differ per workflow: the global ones with overrides merged in."""

    confidence: ConfidencePolicy = ConfidencePolicy()
    step_breaker: StepBreakerPolicy = StepBreakerPolicy()
    workflow_breaker: WorkflowBreakerPolicy = WorkflowBreakerPolicy()
    running: RunningPolicy = RunningPolicy()
    degraded: DegradedPolicy = DegradedPolicy()
    quarantine: QuarantinePolicy = QuarantinePolicy()
    watchdog: WatchdogPolicy = WatchdogPolicy()


# Override keys and where each lands in WorkflowPolicy.
