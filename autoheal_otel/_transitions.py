"""The transition table: the only place that says which state changes are legal.

Each :class:`Edge` is (source, target, cause). The manager asks :func:`check` before every
change and raises :class:`IllegalTransitionError` otherwise, so an impossible path cannot
happen by accident. :func:`mermaid` renders the table for the README (a test keeps the two
equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ._errors import IllegalTransitionError
from ._models import ExecutionState

__all__ = ["TRANSITIONS", "Cause", "Edge", "check", "is_legal", "mermaid"]

R = ExecutionState.RUNNING
D = ExecutionState.DEGRADED
Q = ExecutionState.QUARANTINED
B = ExecutionState.ROLLBACK
P = ExecutionState.PAUSED


class Cause(StrEnum):
    """Why a transition happens."""

    STEP_BREAKER = "step_breaker"  # consecutive TARGET_NOT_FOUND / low-confidence on a step
    WORKFLOW_BREAKER = "workflow_breaker"  # failures in the workflow window
    GLOBAL_BREAKER = "global_breaker"  # failures of all workflows, or too many quarantines
    RECOVERY = "recovery"  # consecutive validated successes in DEGRADED
    REGRESSION = "regression"  # the active artifact version measurably worse
    RESTORE_OK = "restore_ok"  # rollback restored the last known-good set
    RESTORE_FAILED = "restore_failed"
    PROBE_SUCCESS = "probe_success"  # the half-open probe of a quarantine succeeded
    OPERATOR = "operator"  # force_transition, audited with actor and reason


@dataclass(frozen=True, slots=True)
class Edge:
    """One legal transition."""

    source: ExecutionState
    target: ExecutionState
    cause: Cause


def _operator_edges() -> list[Edge]:
    # An operator may move a workflow between any two different states (into ROLLBACK only
    # with a versioned store attached: the manager checks), and out of ROLLBACK only to PAUSED
    # (abort), since a restore is in flight.
    edges = []
    for source in ExecutionState:
        for target in ExecutionState:
            if source == target:
                continue
            if source == B and target != P:
                continue
            edges.append(Edge(source, target, Cause.OPERATOR))
    return edges


TRANSITIONS: tuple[Edge, ...] = (
    Edge(R, D, Cause.STEP_BREAKER),
    Edge(R, Q, Cause.WORKFLOW_BREAKER),
    Edge(D, Q, Cause.WORKFLOW_BREAKER),
    Edge(R, P, Cause.GLOBAL_BREAKER),
    Edge(D, P, Cause.GLOBAL_BREAKER),
    Edge(D, R, Cause.RECOVERY),
    Edge(R, B, Cause.REGRESSION),
    Edge(D, B, Cause.REGRESSION),
    Edge(B, D, Cause.RESTORE_OK),
    Edge(B, P, Cause.RESTORE_FAILED),
    Edge(Q, D, Cause.PROBE_SUCCESS),
    Edge(Q, R, Cause.PROBE_SUCCESS),
    *_operator_edges(),
)

_LEGAL = frozenset((e.source, e.target, e.cause) for e in TRANSITIONS)


def is_legal(source: ExecutionState, target: ExecutionState, cause: Cause) -> bool:
    """Return True when the table has the edge."""
    return (source, target, cause) in _LEGAL


def check(workflow_id: str, source: ExecutionState, target: ExecutionState, cause: Cause) -> None:
    """Raise IllegalTransitionError unless the table has the edge."""
    if (source, target, cause) not in _LEGAL:
        raise IllegalTransitionError(workflow_id, source.value, target.value, cause.value)


def mermaid() -> str:
    """Render the automatic transitions (operator edges summarized) as a Mermaid diagram."""
    lines = ["stateDiagram-v2", "    [*] --> running"]
    for e in TRANSITIONS:
        if e.cause is not Cause.OPERATOR:
            lines.append(f"    {e.source.value} --> {e.target.value}: {e.cause.value}")
    lines.append("    note right of paused")
    lines.append("        operator (force_transition): any state to any other")
    lines.append("        (into rollback with a versioned store); out of rollback only to paused")
    lines.append("    end note")
    return "\n".join(lines)
