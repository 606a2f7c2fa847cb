"""The transition table: which state changes are legal, and what each one resets.

Each :class:`Edge` is (source, target, cause) plus the counters the change resets. The state
machine asks :func:`edge` before every change and raises :class:`IllegalTransitionError`
otherwise, so an impossible path cannot happen by accident; it then applies exactly the
edge's resets. The SQL that rebuilds windows at a warm restart is generated from the same
table (:func:`reset_condition`), so the in-memory windows and the DuckDB queries cannot
disagree about what clears a window. :func:`mermaid` renders the table for the README (a
test keeps the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..base._errors import IllegalTransitionError
from ..base._models import ExecutionState
from ..semconv import Cause

__all__ = [
    "TRANSITIONS",
    "Cause",
    "Edge",
    "Reset",
    "edge",
    "is_legal",
    "mermaid",
    "reset_condition",
    "resetting",
]

R = ExecutionState.RUNNING
D = ExecutionState.DEGRADED
Q = ExecutionState.QUARANTINED
B = ExecutionState.ROLLBACK
P = ExecutionState.PAUSED


class Reset(StrEnum):
    """A counter a transition clears."""

    WORKFLOW_WINDOW = "workflow_window"  # the workflow's failure window
    STEPS = "steps"  # every step's streaks and windows, and the recovery streak
    PROBE_COOLDOWN = "probe_cooldown"  # the probe cool-down back to the policy's start value


_RELEASE = frozenset({Reset.WORKFLOW_WINDOW, Reset.STEPS, Reset.PROBE_COOLDOWN})
_NONE: frozenset[Reset] = frozenset()


@dataclass(frozen=True, slots=True)
class Edge:
    """One legal transition and the counters it resets."""

    source: ExecutionState
    target: ExecutionState
    cause: Cause
    resets: frozenset[Reset] = _NONE


def _operator_edges() -> list[Edge]:
    # An operator may move a workflow between any two different states (into ROLLBACK only
    # with a versioned store attached: the manager checks), and out of ROLLBACK only to PAUSED
    # (abort), since a restore is in flight. Releasing (to RUNNING or DEGRADED) clears the
    # workflow's counters: the operator vouches for it.
    edges = []
    for source in ExecutionState:
        for target in ExecutionState:
            if source == target:
                continue
            if source == B and target != P:
                continue
            resets = _RELEASE if target in (R, D) else _NONE
            edges.append(Edge(source, target, Cause.OPERATOR, resets))
    return edges


def _fleet_edges() -> list[Edge]:
    # The fleet moves a host's workflow to the state the fleet decided: from any state but
    # ROLLBACK (a restore is in flight here) into any other. A fleet ROLLBACK is taken only by
    # a host with a versioned store (``_fleet_inputs.rollback`` checks), which then restores
    # its own known-good set and leaves ROLLBACK like a local rollback (restore_ok/failed).
    # Like an operator release, a fleet release clears the counters.
    return [
        Edge(source, target, Cause.FLEET, _RELEASE if target in (R, D) else _NONE)
        for source in ExecutionState
        for target in ExecutionState
        if source != target and source != B
    ]


TRANSITIONS: tuple[Edge, ...] = (
    Edge(R, D, Cause.STEP_BREAKER),
    Edge(R, Q, Cause.WORKFLOW_BREAKER),
    Edge(D, Q, Cause.WORKFLOW_BREAKER),
    Edge(R, P, Cause.GLOBAL_BREAKER),
    Edge(D, P, Cause.GLOBAL_BREAKER),
    # Recovery keeps the workflow window on purpose: a workflow that flaps between DEGRADED
    # and RUNNING must still reach its quarantine threshold.
    Edge(D, R, Cause.RECOVERY, frozenset({Reset.STEPS})),
    Edge(R, B, Cause.REGRESSION),
    Edge(D, B, Cause.REGRESSION),
    Edge(B, D, Cause.RESTORE_OK),
    Edge(B, P, Cause.RESTORE_FAILED),
    Edge(Q, D, Cause.PROBE_SUCCESS, _RELEASE),
    Edge(Q, R, Cause.PROBE_SUCCESS, _RELEASE),
    *_operator_edges(),
    *_fleet_edges(),
)

_EDGES = {(e.source, e.target, e.cause): e for e in TRANSITIONS}


def is_legal(source: ExecutionState, target: ExecutionState, cause: Cause) -> bool:
    """Return True when the table has the edge."""
    return (source, target, cause) in _EDGES


def edge(workflow_id: str, source: ExecutionState, target: ExecutionState, cause: Cause) -> Edge:
    """Return the table's edge, or raise IllegalTransitionError when there is none."""
    found = _EDGES.get((source, target, cause))
    if found is None:
        raise IllegalTransitionError(workflow_id, source.value, target.value, cause.value)
    return found


def resetting(reset: Reset) -> frozenset[tuple[str, str]]:
    """Return the (cause, target state) of every edge that resets ``reset``.

    A transition record resets ``reset`` when its cause and state are one of these: what
    :func:`reset_condition` says in SQL, and what replay reads a record by.
    """
    return frozenset((e.cause.value, e.target.value) for e in TRANSITIONS if reset in e.resets)


def reset_condition(reset: Reset) -> str:
    """Return a SQL condition over transition records: true where the edge taken resets ``reset``.

    Generated from :func:`resetting`: one ``(cause = ... AND state IN (...))`` term per
    cause, the targets sorted, so the text is stable.
    """
    targets: dict[str, set[str]] = {}
    for cause, target in resetting(reset):
        targets.setdefault(cause, set()).add(target)
    terms = [
        f"(cause = '{cause}' AND state IN ({', '.join(repr(t) for t in sorted(states))}))"
        for cause, states in sorted(targets.items())
    ]
    return "(" + " OR ".join(terms) + ")" if terms else "false"


def mermaid() -> str:
    """Render the automatic transitions (operator edges summarized) as a Mermaid diagram."""
    lines = ["stateDiagram-v2", "    [*] --> running"]
    for e in TRANSITIONS:
        if e.cause is not Cause.OPERATOR and e.cause is not Cause.FLEET:
            lines.append(f"    {e.source.value} --> {e.target.value}: {e.cause.value}")
    lines.append("    note right of paused")
    lines.append("        operator (force_transition): any state to any other")
    lines.append("        (into rollback with a versioned store); out of rollback only to paused")
    lines.append("        fleet: any state to any other (into rollback with a versioned")
    lines.append("        store, restored locally); never out of rollback")
    lines.append("    end note")
    return "\n".join(lines)
