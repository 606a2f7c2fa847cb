"""The vocabulary: enums, StepResult validation, and JSON round trips of the records."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoheal_otel import (
    EffectiveSettings,
    ExecutionState,
    ExecutionStateInfo,
    FailureWindow,
    InvalidInputError,
    Outcome,
    StepResult,
    Trigger,
    VersionInfo,
)
from autoheal_otel.base._models import check_id


def test_enum_values_are_the_contract() -> None:
    """States and outcomes serialize to the lowercase strings of the public contract."""
    assert [s.value for s in ExecutionState] == [
        "running",
        "degraded",
        "quarantined",
        "rollback",
        "paused",
    ]
    assert {o.value for o in Outcome} == {
        "success",
        "target_not_found",
        "postcondition_failed",
        "watchdog_timeout",
        "error",
    }
    assert ExecutionState.DEGRADED == "degraded"


@pytest.mark.parametrize(
    ("state", "blocked"),
    [
        (ExecutionState.RUNNING, False),
        (ExecutionState.DEGRADED, False),
        (ExecutionState.QUARANTINED, True),
        (ExecutionState.ROLLBACK, True),
        (ExecutionState.PAUSED, True),
    ],
    ids=lambda v: str(v),
)
def test_is_blocked(state: ExecutionState, blocked: bool) -> None:
    """Only RUNNING and DEGRADED admit steps."""
    assert state.is_blocked is blocked


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"outcome": "exploded"}, "outcome"),
        ({"outcome": "success", "confidence": math.nan}, "confidence"),
        ({"outcome": "success", "confidence": math.inf}, "confidence"),
        ({"outcome": "success", "confidence": 1.01}, "confidence"),
        ({"outcome": "success", "confidence": -0.1}, "confidence"),
        ({"outcome": "success", "confidence": "0.9"}, "confidence"),
        ({"outcome": "success", "confidence": True}, "confidence"),
        ({"outcome": "success", "second_best": math.nan}, "second_best"),
        ({"outcome": "success", "duration_s": -1}, "duration_s"),
        ({"outcome": "success", "duration_s": math.nan}, "duration_s"),
        ({"outcome": "success", "validated": "yes"}, "validated"),
        ({"outcome": "success", "details": ["x"]}, "details"),
    ],
    ids=[
        "unknown-outcome",
        "nan",
        "inf",
        "above-1",
        "negative",
        "string-score",
        "bool-score",
        "nan-second",
        "negative-duration",
        "nan-duration",
        "validated-string",
        "details-list",
    ],
)
def test_step_result_rejects_bad_input(kwargs: dict[str, object], field: str) -> None:
    """A bad StepResult field raises InvalidInputError naming the field and the value."""
    with pytest.raises(InvalidInputError) as err:
        StepResult(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert field in str(err.value)
    assert repr(kwargs[field])[:3] in str(err.value)


def test_step_result_coerces_outcome_strings() -> None:
    """An outcome given as its string value becomes the enum member."""
    result = StepResult(outcome="target_not_found", confidence=1)  # type: ignore[arg-type]
    assert result.outcome is Outcome.TARGET_NOT_FOUND
    assert result.confidence == 1.0
    assert isinstance(result.confidence, float)


@given(
    outcome=st.sampled_from(Outcome),
    confidence=st.none() | st.floats(0, 1),
    second=st.none() | st.floats(0, 1),
    validated=st.booleans(),
    duration=st.none() | st.floats(0, 1e6),
)
def test_step_result_json_round_trip(
    outcome: Outcome,
    confidence: float | None,
    second: float | None,
    validated: bool,
    duration: float | None,
) -> None:
    """to_json -> from_json gives back an equal StepResult."""
    result = StepResult(outcome, confidence, second, validated, duration, {"method": "faiss"})
    assert StepResult.from_json(result.to_json()) == result


def test_step_result_from_dict_rejects_unknown_fields() -> None:
    """A typo in a result mapping is an error, not a silently dropped field."""
    with pytest.raises(InvalidInputError, match="confidnce"):
        StepResult.from_dict({"outcome": "success", "confidnce": 0.9})


def test_records_round_trip_through_json() -> None:
    """Every public record serializes to JSON and back unchanged."""
    ts = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    records = [
        ExecutionStateInfo(
            workflow_id="w",
            state=ExecutionState.QUARANTINED,
            since=ts,
            reason="r",
            previous_state=ExecutionState.RUNNING,
            actor="ops",
        ),
        FailureWindow(
            scope="workflow",
            key="w",
            rule="workflow.failure_window",
            window_seconds=600,
            count=3,
            threshold=10,
            counts_by_trigger={Trigger.TARGET_NOT_FOUND: 3},
        ),
        VersionInfo(
            component="faiss_index",
            version=3,
            created_at=ts,
            reason="learned",
            checksums={"index.faiss": "ab"},
            metrics_baseline={"success_rate": 0.9},
            parent=2,
        ),
        EffectiveSettings(
            workflow_id="w",
            state=ExecutionState.DEGRADED,
            min_confidence=0.85,
            low_confidence_floor=0.7,
            learning_enabled=False,
            strict_ambiguity=True,
            ambiguity_margin=0.05,
            postcondition_required=True,
            step_delay_ms=500,
            max_retries=1,
            step_allowed=True,
        ),
    ]
    for record in records:
        assert type(record).from_json(record.to_json()) == record


def test_failure_window_fill() -> None:
    """fill is count over threshold, and 0 for a rule that is off."""
    window = FailureWindow(scope="step", key="s", rule="r", window_seconds=1, count=3, threshold=4)
    assert window.fill == 0.75
    off = FailureWindow(scope="step", key="s", rule="r", window_seconds=1, count=3, threshold=None)
    assert off.fill == 0.0


@pytest.mark.parametrize(
    "value",
    ["", "a\x00b", "line\nbreak", 42, None, "x" * 257],
    ids=["empty", "nul", "newline", "int", "none", "too-long"],
)
def test_check_id_rejects_unusable_ids(value: object) -> None:
    """Empty, non-string, control-character and over-long ids are refused by name."""
    with pytest.raises(InvalidInputError) as err:
        check_id("workflow_id", value)
    assert err.value.field == "workflow_id"


@pytest.mark.parametrize("value", ["../../etc/passwd", "/abs/path", "CON", "ünïcode ✓", "a b"])
def test_check_id_accepts_path_like_ids_as_data(value: str) -> None:
    """Ids are data: path-like or unusual printable text is accepted unchanged."""
    assert check_id("workflow_id", value) == value
