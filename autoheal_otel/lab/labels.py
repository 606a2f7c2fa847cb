"""Labels from history: which stops were right, which were wrong, which incidents were missed.

The packaged query ``labels`` infers a label for every automatic stop (a transition to
QUARANTINED, PAUSED or ROLLBACK the operator did not make) and every *missed incident* (an
operator stop of a running or degraded workflow) from what operators did next; an operator's
explicit ``label`` record (``autoheal label``) overrides the inference and says who and why.
:func:`record_label` writes that record through a manager, like every operator act: with the
next ``seq``, the actor and the reason, never read by a gate.

Invariant: a label names the transition it judges by (writer, seq), so compaction, restarts
and other writers cannot make it point at another decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..analytics import AuditAnalytics
from ..base._errors import InvalidInputError
from ..runtime._manager import AutoHealManager

__all__ = ["Label", "find_transition", "label_rows", "record_label"]

#: What the labels mean for a stop the machine made, and for one an operator made.
STOP_LABELS = ("true_stop", "false_stop")
INCIDENT_LABELS = ("missed_incident", "no_incident")


@dataclass(frozen=True)
class Label:
    """One judged stop: the transition (writer, seq), its workflow, and the label."""

    writer: str
    seq: int
    workflow_id: str
    ts: datetime
    label: str
    source: str
    why: str
    stopped_by: str
    #: When an operator released the workflow after the stop (None: never, or not a stop).
    released_at: datetime | None = None

    @property
    def ref(self) -> str:
        """Return the transition's reference as ``autoheal label`` takes it."""
        return f"{self.writer}:{self.seq}"


def label_rows(
    data_dir: str | Path, release_seconds: float = 1800.0, clean_seconds: float = 1800.0
) -> list[Label]:
    """Return every automatic stop and missed incident of the log, labelled, oldest first."""
    with AuditAnalytics(data_dir) as db:
        rows = db.query("labels", release_seconds=release_seconds, clean_seconds=clean_seconds)
    return [
        Label(
            writer=str(r["writer"]),
            seq=int(r["seq"]),
            workflow_id=str(r["workflow_id"]),
            ts=r["ts"],
            label=str(r["label"]),
            source=str(r["source"]),
            why=str(r["why"]),
            stopped_by=str(r["stopped_by"]),
            released_at=r["released_at"],
        )
        for r in rows
    ]


def find_transition(data_dir: str | Path, ref: str) -> dict[str, Any]:
    """Return the transition record ``ref`` names (``writer:seq``, or a ``seq`` one writer has).

    Raises:
        InvalidInputError: ``ref`` is malformed, names no transition, or is ambiguous.
    """
    writer, sep, seq_text = ref.rpartition(":")
    if not seq_text.isdigit() or len(seq_text) > 18:
        raise InvalidInputError(
            "transition", ref, "must be WRITER:SEQ or SEQ as `autoheal query labels` lists it"
        )
    with AuditAnalytics(data_dir) as db:
        rows = db.sql(
            "SELECT ts, seq, writer, workflow_id, state, previous_state, cause FROM audit_events"
            " WHERE kind = 'transition' AND seq = $seq AND ($writer = '' OR writer = $writer)",
            {"seq": int(seq_text), "writer": writer if sep else ""},
        )
    if not rows:
        raise InvalidInputError("transition", ref, "names no transition in the audit log")
    if len(rows) > 1:
        writers = ", ".join(f"{r['writer']}:{r['seq']}" for r in rows)
        raise InvalidInputError("transition", ref, f"is ambiguous; name one of {writers}")
    return rows[0]


def record_label(
    manager: AutoHealManager,
    transition: Mapping[str, Any],
    verdict: bool,
    reason: str,
    actor: str,
) -> None:
    """Record an operator's label of ``transition`` (a row of :func:`find_transition`).

    ``verdict`` True: the stop was right (for an operator stop: it was an incident); False:
    it should not have happened. Nothing else changes: no gate reads a label.

    Raises:
        InvalidInputError: ``reason`` or ``actor`` is not usable operator text.
    """
    details = {
        "transition_writer": str(transition["writer"]),
        "transition_seq": int(transition["seq"]),
        "label": verdict,
    }
    manager.label_transition(str(transition["workflow_id"]), details, verdict, reason, actor)
