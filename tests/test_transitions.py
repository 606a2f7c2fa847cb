"""The transition table: its shape, its checks, and the README diagram rendered from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autoheal_otel import Cause, ExecutionState, IllegalTransitionError
from autoheal_otel.core._transitions import TRANSITIONS, edge, is_legal, mermaid

S = ExecutionState
README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_diagram_is_rendered_from_the_table() -> None:
    """The Mermaid block in the README equals mermaid() of the table."""
    blocks = re.findall(r"```mermaid\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no mermaid block"
    assert blocks[0].strip() == mermaid().strip()


def test_no_self_loops_and_every_state_reachable() -> None:
    """No edge goes from a state to itself, and every state can be entered and left."""
    assert all(e.source != e.target for e in TRANSITIONS)
    for state in S:
        assert any(e.target == state for e in TRANSITIONS), state
        assert any(e.source == state for e in TRANSITIONS), state


@pytest.mark.parametrize(
    ("source", "target", "cause", "legal"),
    [
        (S.RUNNING, S.DEGRADED, Cause.STEP_BREAKER, True),
        (S.DEGRADED, S.DEGRADED, Cause.STEP_BREAKER, False),
        (S.DEGRADED, S.RUNNING, Cause.RECOVERY, True),
        (S.QUARANTINED, S.RUNNING, Cause.RECOVERY, False),
        (S.QUARANTINED, S.RUNNING, Cause.OPERATOR, True),
        (S.RUNNING, S.ROLLBACK, Cause.OPERATOR, True),
        (S.ROLLBACK, S.RUNNING, Cause.OPERATOR, False),
        (S.ROLLBACK, S.PAUSED, Cause.OPERATOR, True),
        (S.PAUSED, S.RUNNING, Cause.GLOBAL_BREAKER, False),
        (S.ROLLBACK, S.DEGRADED, Cause.RESTORE_OK, True),
    ],
    ids=lambda v: str(v),
)
def test_legal_edges(source: S, target: S, cause: Cause, legal: bool) -> None:
    """is_legal agrees with the table for representative edges."""
    assert is_legal(source, target, cause) is legal


def test_check_names_state_and_event() -> None:
    """An illegal move raises an error naming the workflow, the states and the cause."""
    with pytest.raises(IllegalTransitionError) as err:
        edge("invoice", S.QUARANTINED, S.RUNNING, Cause.RECOVERY)
    message = str(err.value)
    assert "invoice" in message and "quarantined" in message and "recovery" in message
    assert err.value.state == "quarantined" and err.value.target == "running"
