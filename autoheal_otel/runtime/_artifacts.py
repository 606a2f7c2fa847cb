"""Learned artifacts around the machine: the versioned store, snapshots and restores.

The :class:`ArtifactKeeper` owns the :class:`~.versioning.VersionedStore` and does the I/O the
machine asks for as actions: a :class:`~autoheal_otel.core._machine.Restore` (roll the store
back, then report the outcome to the machine) and a
:class:`~autoheal_otel.core._machine.MarkKnownGood`. It never holds the manager's lock while it
touches the disk; every decision it causes goes through the manager's one input path
(``decide``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..base._errors import InvalidInputError
from ..base._models import check_text
from ..core._machine import Action, Machine, MarkKnownGood, Restore
from ..semconv import SPAN_ROLLBACK, Reason
from ..versioning import VersionedStore

__all__ = ["ArtifactKeeper", "Decide"]

_log = logging.getLogger("autoheal_otel")

#: The manager's input path: ``decide(span_name, hook, workflow_id, input, *args)`` runs one
#: machine input under the lock with the clock, a span and publishing, and returns its output.
Decide = Callable[..., Any]


class ArtifactKeeper:
    """Own the versioned store and carry out the machine's artifact actions."""

    def __init__(
        self,
        machine: Machine,
        decide: Decide,
        monotonic: Callable[[], float],
        record_operation: Callable[[str, float], None],
        evidence: Callable[[str], dict[str, Any]],
    ) -> None:
        self._machine = machine
        self._decide = decide
        self._monotonic = monotonic
        self._record_operation = record_operation
        self._evidence = evidence
        self.store: VersionedStore | None = None
        self._known_good_label: str | None = None

    def attach(self, store: VersionedStore) -> None:
        """Version learned artifacts with ``store``; activate its current set everywhere."""
        self.store = store
        self._decide(
            None,
            "attach_store",
            None,
            None,
            self._machine.note_session,
            Reason.STORE_ATTACHED,
            "versioned store attached",
            {"store": str(store.dir)},
        )
        current = store.current()
        if current is not None:
            self.activate(None, current.label, "store attached", "autoheal")

    def require_store(self, name: str, value: Any, purpose: str) -> VersionedStore:
        """Return the attached store, or raise InvalidInputError naming ``name`` and ``value``."""
        if self.store is None:
            raise InvalidInputError(
                name, value, f"needs a versioned store (attach_store) {purpose}"
            )
        return self.store

    def activate(self, workflow_id: str | None, version: str, reason: str, actor: str) -> None:
        """Record that ``version`` became active for one workflow (None: every workflow)."""
        check_text(version=version, reason=reason)
        self._decide(
            None,
            "activate",
            workflow_id,
            None,
            self._machine.activate,
            workflow_id,
            version,
            reason,
            actor,
        )

    def snapshot(
        self, reason: str, metrics_baseline: dict[str, float] | None, known_good: bool
    ) -> Any:
        """Publish the current artifacts as a new version set and activate it."""
        assert self.store is not None
        started = self._monotonic()
        vset = self.store.snapshot(reason, metrics_baseline, known_good=known_good)
        self._record_operation("snapshot", self._monotonic() - started)
        self.activate(None, vset.label, reason, "autoheal")
        return vset

    def carry_out(self, action: Action) -> None:
        """Do what the machine asked for after a decision (outside the lock)."""
        if isinstance(action, Restore):
            self.restore(action)
        elif isinstance(action, MarkKnownGood):
            self._mark_known_good(action)

    def restore(self, action: Restore) -> None:
        """Roll the store back to its known-good set and report the outcome to the machine."""
        store = self.store
        if store is None:
            return
        started = self._monotonic()
        learning: dict[str, Any] = {}
        try:  # evidence only: what the target memory learned per version
            learning = self._evidence(action.workflow_id)
        except Exception:  # contained: evidence must not block a rollback
            _log.exception("autoheal could not read the target memory of %r", action.workflow_id)
        target = None
        error: str | None = None
        try:
            target = store.rollback("known_good", reason=action.reason)
        except Exception as exc:  # contained: a failed restore pauses the workflow
            error = f"{type(exc).__name__}: {exc}"
            _log.exception("autoheal rollback of %r failed", action.workflow_id)
        restored = f"{target.label} (known-good set {target.id})" if target is not None else None
        details = {
            "restored": target.label if target is not None else None,
            "duration_s": round(self._monotonic() - started, 6),
            "learning_success_rate": learning,
        }
        self._decide(
            SPAN_ROLLBACK,
            "rollback",
            action.workflow_id,
            None,
            self._machine.restore_done,
            action.workflow_id,
            restored,
            error,
            action.actor,
            details if target is not None else None,
        )
        self._record_operation("rollback", self._monotonic() - started)
        if target is not None:
            self.activate(None, target.label, f"rolled back: {action.reason}", action.actor)

    def _mark_known_good(self, action: MarkKnownGood) -> None:
        store = self.store
        version = action.verdict.active_version
        if store is None or version == self._known_good_label:
            return
        # At most once per set: the store is read only when a new version first passes.
        known = store.known_good()
        current = store.current()
        if current is not None and version == current.label:
            if known is None or known.id != current.id:
                store.mark_known_good(current.id)
            self._known_good_label = current.label
