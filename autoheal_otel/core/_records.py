"""Inputs that only record: an operator's label or pin, what retention deleted or could not.

Inputs like any other, so each is in the audit log in decision order and a replay sees it;
nothing the machine decides reads them (no gate, rule or counter changes):

- :func:`label`: an operator's label of a recorded stop, right or wrong, with why (the
  policy lab learns from it);
- :func:`pin`: an operator pinned a time range so that retention skips it, or unpinned it;
- :func:`retention`: a retention run deleted failure cases and reports past their keep-days;
- :func:`audit_retention`: audit retention deleted compacted files or success-store rows, or
  cannot meet the disk budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base._units import human_bytes
from ..semconv import EventKind, Reason
from ._ledger import At, Ledger

__all__ = ["audit_retention", "label", "pin", "retention"]


def label(
    ledger: Ledger,
    workflow_id: str,
    details: Mapping[str, Any],
    verdict: bool,
    reason: str,
    actor: str,
    at: At,
) -> None:
    """Input: record a label (``verdict`` True: the stop was right) of one transition."""
    if at.events is None:
        return
    ledger.record(
        at,
        EventKind.LABEL,
        workflow_id,
        None,
        None,
        reason=(Reason.LABEL_TRUE if verdict else Reason.LABEL_FALSE).value,
        message=reason,
        actor=actor,
        details=dict(details),
    )


def retention(
    ledger: Ledger,
    details: dict[str, Any],
    at: At,
) -> None:
    """Input: a retention run deleted files (recorded; the machine's state is unchanged)."""
    if at.events is None:
        return
    what = ", ".join(f"{a['units']} {name}" for name, a in details["areas"].items()) or "nothing"
    ledger.record(
        at,
        EventKind.RETENTION,
        reason=Reason.RETENTION_DELETED.value,
        message=(
            f"retention deleted {what} past their keep-days"
            f" ({human_bytes(details['bytes_freed'])} freed)"
            + (", finishing an interrupted run" if details["resumed"] else "")
        ),
        actor="autoheal",
        details=details,
    )


def audit_retention(
    ledger: Ledger,
    details: dict[str, Any],
    at: At,
) -> None:
    """Input: audit retention deleted files, or cannot meet the budget (recorded only)."""
    if at.events is None:
        return
    if details.get("area") == "success_store":
        reason = Reason.RETENTION_DELETED.value
        message = (
            f"retention deleted {details['rows_deleted']} success-store rows older than"
            f" {details['cut_off']} (keep_days {details['keep_days']}; their pages are reused)"
        )
    elif details.get("deleted"):
        reason = Reason.RETENTION_DELETED.value
        whys = sorted({d["why"] for d in details["deleted"]})
        message = (
            f"retention deleted {len(details['deleted'])} compacted audit file set(s)"
            f" ({', '.join(whys)}; {human_bytes(details['bytes_freed'])} freed)"
            + (", finishing an interrupted run" if details.get("resumed") else "")
        )
    else:
        reason = Reason.RETENTION_BLOCKED.value
        message = f"retention cannot meet the disk budget: {details['blocked']}"
    ledger.record(
        at,
        EventKind.RETENTION,
        reason=reason,
        message=message,
        actor="autoheal",
        details=details,
    )


def pin(
    ledger: Ledger,
    reason: str,
    pin: dict[str, Any],
    at: At,
) -> None:
    """Input: an operator pinned a range (``retention.pinned``) or removed a pin
    (``retention.unpinned``); ``pin`` is its record."""
    if at.events is None:
        return
    verb = "pinned" if reason == Reason.RETENTION_PINNED else "unpinned"
    ledger.record(
        at,
        EventKind.RETENTION,
        reason=reason,
        message=f"{verb} {pin['start']} .. {pin['end']}: {pin['reason']}",
        actor=pin["actor"],
        details={"pin": pin},
    )
