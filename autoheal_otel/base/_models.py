"""The vocabulary: states, outcomes, triggers, step results and the records built from them.

Invariants:
- enums are ``StrEnum`` with lowercase values, so they serialize as plain strings;
- a :class:`StepResult` that exists is valid: scores are finite and in [0, 1], the outcome is
  known, the duration is finite and >= 0 (checked once, at construction);
- every record here round-trips through JSON (``to_json`` / ``from_json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ._errors import InvalidInputError

__all__ = [
    "EffectiveSettings",
    "ExecutionState",
    "ExecutionStateInfo",
    "FailureWindow",
    "Outcome",
    "StepResult",
    "Trigger",
    "VersionInfo",
    "check_id",
]

MAX_ID_LENGTH = 256


class ExecutionState(StrEnum):
    """The mode a workflow runs in."""

    RUNNING = "running"
    DEGRADED = "degraded"
    QUARANTINED = "quarantined"
    ROLLBACK = "rollback"
    PAUSED = "paused"

    @property
    def is_blocked(self) -> bool:
        """Return True when the state admits no step (QUARANTINED, ROLLBACK, PAUSED)."""
        return self not in _ADMITTING


_ADMITTING = frozenset({ExecutionState.RUNNING, ExecutionState.DEGRADED})


class Outcome(StrEnum):
    """What happened when the executor ran a step."""

    SUCCESS = "success"
    TARGET_NOT_FOUND = "target_not_found"
    POSTCONDITION_FAILED = "postcondition_failed"
    WATCHDOG_TIMEOUT = "watchdog_timeout"
    ERROR = "error"


class Trigger(StrEnum):
    """A failure type counted by the circuit breakers.

    The four failing outcomes map to the trigger of the same name; ``low_confidence`` is a
    match below the low-confidence floor (even on success); ``ambiguous_match`` is a match whose
    top-two gap is below the ambiguity margin while strict ambiguity is on (DEGRADED).
    """

    TARGET_NOT_FOUND = "target_not_found"
    POSTCONDITION_FAILED = "postcondition_failed"
    WATCHDOG_TIMEOUT = "watchdog_timeout"
    ERROR = "error"
    LOW_CONFIDENCE = "low_confidence"
    AMBIGUOUS_MATCH = "ambiguous_match"


OUTCOME_TRIGGER: Mapping[Outcome, Trigger] = {
    Outcome.TARGET_NOT_FOUND: Trigger.TARGET_NOT_FOUND,
    Outcome.POSTCONDITION_FAILED: Trigger.POSTCONDITION_FAILED,
    Outcome.WATCHDOG_TIMEOUT: Trigger.WATCHDOG_TIMEOUT,
    Outcome.ERROR: Trigger.ERROR,
}


def _check_score(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(name, value, "must be a number in [0, 1] or None")
    score = float(value)
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise InvalidInputError(name, value, "must be a finite number in [0, 1]")
    return score


def check_id(field_name: str, value: Any) -> str:
    """Return ``value`` if it is a usable workflow or step id, else raise InvalidInputError.

    Ids are data, never paths: any printable text up to 256 characters is accepted (``../x``
    included); empty strings, non-strings and control characters are refused.
    """
    if not isinstance(value, str):
        raise InvalidInputError(field_name, value, "must be a string")
    if not value:
        raise InvalidInputError(field_name, value, "must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInputError(
            field_name, value[:40] + "...", f"must be at most {MAX_ID_LENGTH} characters"
        )
    if not value.isprintable():
        raise InvalidInputError(field_name, value, "must not contain control characters")
    return value


#: The longest operator text (a reason, an actor) a move records.
MAX_TEXT = 1000


def check_text(**values: object) -> None:
    """Raise InvalidInputError for the first value that is not usable operator text.

    One rule for every operator field (reason, actor): a non-empty string of at most
    ``MAX_TEXT`` characters with no control characters (they would reach terminals).
    """
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(name, value, "must be a non-empty string")
        if len(value) > MAX_TEXT:
            raise InvalidInputError(
                name, value[:40] + "...", f"must be at most {MAX_TEXT} characters"
            )
        if not value.isprintable():
            raise InvalidInputError(name, value, "must not contain control characters")


def printable(value: Any, limit: int) -> str:
    """Return text read from elsewhere as safe to keep and show: cut to ``limit`` (marked with
    ``...``), every control character replaced by ``?`` (non-text reads as empty)."""
    text = value if isinstance(value, str) else ""
    clean = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return clean + ("..." if len(text) > limit else "")


@dataclass(frozen=True, slots=True)
class StepResult:
    """The result of one step, as the executor reports it to ``on_step_result``.

    Args:
        outcome: what happened (an :class:`Outcome` or its string value).
        confidence: best match score in [0, 1] (e.g. the FAISS similarity), if a match ran.
        second_best: the runner-up score in [0, 1]; a small gap to ``confidence`` is ambiguity.
        validated: True when the action's postcondition was verified.
        duration_s: how long the step took, in seconds.
        details: free-form, JSON-serializable context (matching method, selector, ...).

    Raises:
        InvalidInputError: an unknown outcome, a NaN, infinite or out-of-range score, or a
            negative duration; the error names the field and the value.
    """

    outcome: Outcome
    confidence: float | None = None
    second_best: float | None = None
    validated: bool = False
    duration_s: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        outcome = self.outcome
        if type(outcome) is not Outcome:
            try:
                outcome = Outcome(outcome)
            except ValueError:
                allowed = ", ".join(o.value for o in Outcome)
                raise InvalidInputError(
                    "outcome", self.outcome, f"must be one of {allowed}"
                ) from None
            object.__setattr__(self, "outcome", outcome)
        if self.confidence is not None:
            object.__setattr__(self, "confidence", _check_score("confidence", self.confidence))
        if self.second_best is not None:
            object.__setattr__(self, "second_best", _check_score("second_best", self.second_best))
        if not isinstance(self.validated, bool):
            raise InvalidInputError("validated", self.validated, "must be a bool")
        if self.duration_s is not None:
            d = self.duration_s
            if (
                isinstance(d, bool)
                or not isinstance(d, int | float)
                or not math.isfinite(d)
                or d < 0
            ):
                raise InvalidInputError("duration_s", d, "must be a finite number >= 0")
            object.__setattr__(self, "duration_s", float(d))
        if not isinstance(self.details, Mapping):
            raise InvalidInputError("details", self.details, "must be a mapping")

    @property
    def gap(self) -> float | None:
        """Return the top-two score gap, or None when either score is missing."""
        if self.confidence is None or self.second_best is None:
            return None
        return self.confidence - self.second_best

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "outcome": self.outcome.value,
            "confidence": self.confidence,
            "second_best": self.second_best,
            "validated": self.validated,
            "duration_s": self.duration_s,
            "details": dict(self.details),
        }

    @classmethod
    def coerce(cls, value: Any) -> StepResult:
        """Return ``value`` as a result: itself, or one built from a mapping of its fields.

        Raises:
            InvalidInputError: neither a StepResult nor a mapping (or a mapping with bad fields).
        """
        if isinstance(value, StepResult):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise InvalidInputError("result", value, "must be a StepResult or a mapping of its fields")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        """Build a result from :meth:`to_dict` output (validated like the constructor)."""
        unknown = set(data) - {
            "outcome",
            "confidence",
            "second_best",
            "validated",
            "duration_s",
            "details",
        }
        if unknown:
            raise InvalidInputError("StepResult", sorted(unknown), "has no such fields")
        if "outcome" not in data:
            raise InvalidInputError("outcome", None, "is required")
        return cls(
            outcome=data["outcome"],
            confidence=data.get("confidence"),
            second_best=data.get("second_best"),
            validated=data.get("validated", False),
            duration_s=data.get("duration_s"),
            details=data.get("details") or {},
        )

    def to_json(self) -> str:
        """Return the result as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> StepResult:
        """Parse a result written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError("StepResult", text[:80], f"must be valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InvalidInputError("StepResult", data, "must be a JSON object")
        return cls.from_dict(data)


class _Record(BaseModel):
    """Base of the immutable, JSON-round-tripping records."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> str:
        """Return the record as a JSON string."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> Any:
        """Parse a record written by :meth:`to_json`."""
        return cls.model_validate_json(text)


class ExecutionStateInfo(_Record):
    """Where a workflow stands: its state, since when, and why."""

    workflow_id: str
    state: ExecutionState
    since: AwareDatetime
    reason: str
    previous_state: ExecutionState | None = None
    actor: str | None = None


class FailureWindow(_Record):
    """One sliding-window counter against its threshold, as reported to people."""

    scope: str = Field(description="'step', 'workflow' or 'global'")
    key: str = Field(description="what the window is about: a step, a workflow, or '*'")
    rule: str
    window_seconds: float
    count: int
    threshold: int | None
    counts_by_trigger: dict[Trigger, int] = Field(default_factory=dict)

    @property
    def fill(self) -> float:
        """Return count / threshold (0 when the rule is off)."""
        return self.count / self.threshold if self.threshold else 0.0


class VersionInfo(_Record):
    """One version of a learned artifact (prototypes, FAISS index, target memory, files)."""

    component: str
    version: int = Field(ge=1)
    created_at: AwareDatetime
    reason: str = ""
    checksums: dict[str, str] = Field(default_factory=dict)
    metrics_baseline: dict[str, float] = Field(default_factory=dict)
    parent: int | None = None


class EffectiveSettings(_Record):
    """What the executor must apply to a workflow right now, in one object."""

    workflow_id: str
    state: ExecutionState
    min_confidence: float
    low_confidence_floor: float
    learning_enabled: bool
    strict_ambiguity: bool
    ambiguity_margin: float
    postcondition_required: bool
    step_delay_ms: int
    max_retries: int
    step_allowed: bool
    method_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Calibrated minimum confidence per matching method."
    )

    def min_confidence_for(self, method: str) -> float:
        """Return the threshold to apply to a match made by ``method``."""
        return self.method_thresholds.get(method, self.min_confidence)

    @property
    def step_delay_s(self) -> float:
        """Return the pause between steps in seconds."""
        return self.step_delay_ms / 1000.0
