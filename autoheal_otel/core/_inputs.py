"""The machine's inputs from outside the hooks, as methods: each one delegates to its rule module.

:class:`~._machine.Machine` takes these from :class:`Inputs`, so a
collaborator changes the machine's state only by handing one of its methods to the manager's
one input path (``decide(..., machine.activate, version, ...)``), never by passing the ledger
around. The rules stay functions over the ledger, each in the module of its concern:
:mod:`~._upkeep` (activation, policy, sessions, the shared pause, restart),
:mod:`~._fleet_inputs` (the fleet's decisions),
:mod:`~._calibration` and :mod:`~._checkpoint`. Like every
input that may record something but the two hooks, they take one :class:`~._ledger.At` last
(the instant, the span's ids and the event list; see the machine's module); the restores and
restarts take what they restore, and the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..base._fleet_event import FleetEvent
from ..policy._config import PolicyConfig
from ..semconv import Reason
from . import _calibration, _checkpoint, _fleet_inputs, _moves, _records, _upkeep
from ._ledger import At, Ledger, Notes
from ._versions import Restore

__all__ = ["Inputs"]


class Inputs:
    """The machine's inputs from outside the hooks (see the module)."""

    _ledger: Ledger

    def activate(
        self,
        workflow_id: str | None,
        version: str,
        reason: str,
        actor: str,
        at: At,
    ) -> None:
        """Input: an artifact version became active for one workflow (or, None, for all).
        (:func:`~._upkeep.activate`)."""
        return _upkeep.activate(self._ledger, workflow_id, version, reason, actor, at)

    def change_policy(
        self,
        policy: PolicyConfig,
        source: str,
        at: At,
    ) -> None:
        """Input: a new policy is in force (recorded with the policy itself).
        (:func:`~._upkeep.change_policy`)."""
        return _upkeep.change_policy(self._ledger, policy, source, at)

    def reject_policy(
        self,
        message: str,
        field: str,
        source: str,
        at: At,
    ) -> None:
        """Input: a policy edit was invalid; the one in force stays (recorded).
        (:func:`~._upkeep.reject_policy`)."""
        return _upkeep.reject_policy(self._ledger, message, field, source, at)

    def note_session(
        self,
        reason: Reason,
        message: str,
        details: Mapping[str, Any],
        at: At,
    ) -> None:
        """Input: a manager started or stopped, or a store was attached (recorded).
        (:func:`~._upkeep.note_session`)."""
        return _upkeep.note_session(self._ledger, reason, message, details, at)

    def shared_pause(
        self,
        count: int,
        paused_elsewhere: bool,
        at: At,
    ) -> None:
        """Input: the global figures of every writer sharing the data directory.
        (:func:`~._upkeep.shared_pause`)."""
        return _upkeep.shared_pause(self._ledger, count, paused_elsewhere, at)

    def restore(self, restored: Any, now: float, wall: datetime) -> dict[str, int]:
        """Input: the state a new manager reads back from the log (the warm restart).
        (:func:`~._upkeep.restore`)."""
        return _upkeep.restore(self._ledger, restored, now, wall)

    def restart(
        self,
        now: float,
        policy: PolicyConfig | None,
        calibration_samples: Iterable[tuple[str, float, bool]],
        streaks: Mapping[tuple[str, str], tuple[int, int]],
    ) -> None:
        """Input: the process restarted here (replay): what a warm restart does not carry.
        (:func:`~._upkeep.restart`)."""
        return _upkeep.restart(self._ledger, now, policy, calibration_samples, streaks)

    def fleet_link(
        self,
        up: bool,
        reason: Reason,
        scopes: Iterable[str],
        details: dict[str, Any],
        at: At,
    ) -> None:
        """Input: the fleet link came up (the fleet decides ``scopes``) or went down (local).
        (:func:`~._fleet_inputs.link`)."""
        return _fleet_inputs.link(self._ledger, up, reason, scopes, details, at)

    def fleet_grant_probe(
        self,
        workflow_id: str,
        lease_seconds: float,
        host: str,
        at: At,
    ) -> None:
        """Input: this host won the fleet's probe lease of a quarantined workflow.
        (:func:`~._fleet_inputs.grant_probe`)."""
        return _fleet_inputs.grant_probe(self._ledger, workflow_id, lease_seconds, host, at)

    def fleet_apply(self, event: FleetEvent, at: At) -> bool:
        """Input: a fleet decision. Returns True when it changed something here.
        (:func:`~._fleet_inputs.apply`)."""
        return _fleet_inputs.apply(self._ledger, event, at)

    def fleet_rollback(self, event: FleetEvent, at: At) -> Restore | None:
        """Input: the fleet rolled a workflow back. Returns the restore to carry out here, if
        any. (:func:`~._fleet_inputs.rollback`)."""
        return _fleet_inputs.rollback(self._ledger, event, at)

    def fleet_reject(
        self,
        entry_id: str,
        workflow_id: str,
        why: str,
        at: At,
    ) -> None:
        """Input: a fleet entry this host read is malformed; it is skipped (recorded once).
        (:func:`~._fleet_inputs.reject`)."""
        return _fleet_inputs.reject(self._ledger, entry_id, workflow_id, why, at)

    def fleet_replay(
        self,
        rec: dict[str, Any],
        details: dict[str, Any],
        at: At,
    ) -> None:
        """Input (replay): feed back a record a fleet input wrote, as the same input.
        (:func:`~._fleet_inputs.replay_record`)."""
        return _fleet_inputs.replay_record(self._ledger, rec, details, at)

    def configure_calibration(
        self,
        overrides: Mapping[str, Any],
        at: At,
    ) -> None:
        """Input: turn calibration on, with ``overrides`` of the policy's section (recorded).
        (:func:`~._calibration.configure`)."""
        return _calibration.configure(self._ledger, overrides, at)

    def record_checkpoint(self, at: At) -> int | None:
        """Input: record a checkpoint of the machine as of now (nothing when nothing is
        recorded). (:func:`~._checkpoint.record`)."""
        return _checkpoint.record(self._ledger, at)

    def restore_checkpoint(self, data: dict[str, Any], now: float, *, policy: bool = True) -> None:
        """Put a checkpoint into ``ledger`` (fresh, or to be replaced) as of ``now``.
        (:func:`~._checkpoint.restore`)."""
        return _checkpoint.restore(self._ledger, data, now, policy=policy)

    def apply_moves(
        self,
        moves: list[_moves.Move],
        rollbacks: set[tuple[str, str]],
        notes: Notes,
        at: At,
    ) -> None:
        """Input: moves other writers recorded, applied and acknowledged
        (:func:`~._moves.apply_moves`); what to log goes to ``notes``."""
        _moves.apply_moves(self._ledger, moves, rollbacks, notes, at)

    def label(
        self,
        workflow_id: str,
        details: Mapping[str, Any],
        verdict: bool,
        reason: str,
        actor: str,
        at: At,
    ) -> None:
        """Input: an operator's label of a recorded stop (:func:`~._records.label`)."""
        _records.label(self._ledger, workflow_id, details, verdict, reason, actor, at)

    def lift_global_pause(self, actor: str, reason: str, at: At) -> None:
        """Input: the global pause was lifted by itself (a recorded resume replayed; the
        workflows it released come as their own records)."""
        self._ledger.clear_global_pause(at, actor, reason)

    def note_store(self) -> None:
        """Input: a versioned store is attached (replay learns it from the log)."""
        self._ledger.versioned = True

    def new_session(self) -> None:
        """Input: a new manager starts here (replay): its fleet link is down and it holds no
        probe lease, as a live manager at its start."""
        self._ledger.fleet_scopes = frozenset()
        self._ledger.probe_permits.clear()

    def record_pin(
        self,
        reason: str,
        pin: dict[str, Any],
        at: At,
    ) -> None:
        """Input: an operator pinned a range or removed a pin (:func:`~._records.pin`)."""
        _records.pin(self._ledger, reason, pin, at)

    def record_retention(self, details: dict[str, Any], at: At) -> None:
        """Input: a retention run deleted files past their keep-days
        (:func:`~._records.retention`)."""
        _records.retention(self._ledger, details, at)

    def record_audit_retention(self, details: dict[str, Any], at: At) -> None:
        """Input: audit retention deleted files or rows, or cannot meet the budget
        (:func:`~._records.audit_retention`)."""
        _records.audit_retention(self._ledger, details, at)

    def resume(self, resumed: Any, now: float) -> dict[str, Any]:
        """Input: the state rebuilt from a checkpoint and the records after it (the warm
        restart without the whole log; :func:`~._upkeep.resume`)."""
        return _upkeep.resume(self._ledger, resumed, now)
