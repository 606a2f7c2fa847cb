"""Feeding one log's records to a machine, and comparing what it decides with the record.

:class:`Replayer` is replay's core (:mod:`.replay` streams the records to it): each record
becomes the machine input the live manager fed (a gate, a result, an operator move, a finished
restore, an activation, a policy change, a session or restart, a calibration), and what the
machine decides is compared with what was recorded. A log whose head was deleted starts at
its first checkpoint; writers that decided at once without shared decisions are named.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..base._errors import AutoHealError
from ..base._events import DecisionEvent
from ..base._models import ExecutionState, StepResult
from ..core._ledger import NO_TRACE, At
from ..core._machine import Machine
from ..core._report import effective_settings
from ..policy._config import PolicyConfig
from ..semconv import Cause, EventKind, Reason
from ._readback import Readback
from ._replay_report import ReplayReport

__all__ = ["INPUT_CAUSES", "Replayer", "calibration_change", "details_of", "result_of"]

#: Transitions whose cause lies outside the machine: the log gives them as inputs.
INPUT_CAUSES = {
    Cause.OPERATOR.value,
    Cause.RESTORE_OK.value,
    Cause.RESTORE_FAILED.value,
    Cause.FLEET.value,  # the fleet's decisions reach a host as recorded inputs
}


def _instant(value: Any) -> datetime | None:
    """Return an ISO time from a record's details as an aware UTC datetime (None: absent)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def details_of(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except (ValueError, RecursionError):  # hostile nesting: no details, never a traceback
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return dict(value) if value else {}


def result_of(rec: dict[str, Any]) -> StepResult:
    """Return the step result a ``result`` record holds (raises as StepResult does)."""
    return StepResult(
        outcome=rec["outcome"],
        confidence=rec["confidence"],
        second_best=rec["second_best"],
        validated=bool(rec["validated"]),
        duration_s=rec["duration_s"],
        details=details_of(rec["details"]),
    )


def calibration_change(details: Any) -> tuple[Any, ...]:
    """Return a calibration change as (method, previous, threshold)."""
    return (details.get("method"), details.get("previous"), details.get("threshold"))


class Replayer:
    """Feed one log's records to a machine and compare what it decides."""

    def __init__(
        self,
        machine: Machine,
        report: ReplayReport,
        start: datetime,
        last: dict[str | None, tuple[datetime, int]],
    ) -> None:
        self.machine = machine
        # Each writer's last record (ts, seq), and the writers met so far: together they tell
        # a restart from another writer's start.
        self.last = last
        self.writers: set[str | None] = set()
        self.report = report
        self.start = start
        self.what_if = report.what_if
        self.recorded: list[tuple[Any, ...]] = []
        self.replayed: list[tuple[Any, ...]] = []
        self.sessions = 0
        # What a warm restart reads back from the log, whatever the last process held.
        self.readback = Readback()
        # Moves another writer recorded that a running process acknowledged: each takes
        # effect at its first ack (when the running process applied it), not at its record,
        # or at its record when an ack sorts before it.
        self.acked: set[tuple[str, int]] = set()
        self.deferred: dict[tuple[str, int], dict[str, Any]] = {}
        # A log some writer's first records are missing from lost its head (deleted files):
        # replay starts at its first checkpoint (set by replay() before the first record).
        self.headless = False
        # Per writer: [first, last] decision time, and whether its sessions shared decisions.
        self.spans: dict[str, list[datetime]] = {}
        self.shared: dict[str, bool] = {}

    def feed(self, rec: dict[str, Any]) -> None:
        self.writers.add(rec["writer"])
        ts = rec["ts"].replace(tzinfo=UTC)
        now = (ts - self.start).total_seconds()
        if self.headless:
            self._seek_checkpoint(rec, now, ts)
            return
        self._note_writer(rec, ts)
        events: list[DecisionEvent] = []
        try:
            self._input(rec, now, ts, events)
        except AutoHealError as exc:
            self.report.mismatch({"seq": rec["seq"], "kind": rec["kind"], "error": str(exc)})
        for e in events:
            if e.kind is EventKind.TRANSITION:
                self.report.replayed[e.state.value if e.state else "?"] += 1
                if e.cause not in INPUT_CAUSES:
                    prev = e.previous_state.value if e.previous_state else None
                    state = e.state.value if e.state else None
                    self.replayed.append((e.workflow_id, prev, state, e.cause, ts.isoformat()))
            elif e.kind is EventKind.GATE and e.allowed is False:
                self.report.replayed_blocked_gates += 1
            elif e.kind is EventKind.CALIBRATION and e.reason == Reason.CALIBRATION_CHANGED:
                self.report.replayed_calibrations.append(calibration_change(e.details))

    def _input(self, rec: dict[str, Any], now: float, ts: datetime, events: list[Any]) -> None:
        m = self.machine
        kind, wid, step = rec["kind"], rec["workflow_id"], rec["step_id"]
        if self.acked and (rec["writer"], rec["seq"]) in self.acked:
            self.deferred[(rec["writer"], rec["seq"])] = rec
            return
        if kind == EventKind.ACK:
            details = details_of(rec["details"])
            key = (str(details.get("move_writer")), int(details.get("move_seq") or 0))
            move = self.deferred.pop(key, None)
            # An ack at the same instant as its move may sort before it (by seq): the move
            # then takes effect at its own record, which follows at once.
            self.acked.discard(key)
            if move is not None:
                self._input(move, now, ts, events)
            return
        if kind == EventKind.GATE:
            self._gate(rec, m.gate(wid, step, now, ts, NO_TRACE, events)[0])
        elif kind == EventKind.RESULT:
            result = result_of(rec)
            m.result(wid, step, result, now, ts, NO_TRACE, events)
            self.readback.result(wid, step, result, rec["signals"], ts)
        elif kind == EventKind.TRANSITION:
            self.readback.transition(wid, rec["cause"], rec["state"])
            self._transition(rec, now, ts, events)
        elif kind == EventKind.FLEET or (kind == EventKind.GLOBAL and rec["cause"] == Cause.FLEET):
            details = details_of(rec["details"])
            m.fleet_replay(rec, details, At(now, ts, NO_TRACE, events))
        elif kind == EventKind.GLOBAL and rec["reason"] == Reason.GLOBAL_RESUMED:
            actor = rec["actor"] or "operator"
            m.lift_global_pause(actor, rec["message"] or "", At(now, ts, NO_TRACE, events))
        elif kind == EventKind.ACTIVATION and rec["artifact_version"]:
            m.note_store()  # an activation means a store (0.1.0 said only this)
            m.activate(
                wid,
                rec["artifact_version"],
                "replayed",
                rec["actor"] or "autoheal",
                At(now, ts, NO_TRACE, events),
            )
        elif kind == EventKind.POLICY_RELOAD and not self.what_if:
            policy = details_of(rec["details"]).get("policy")
            if policy:
                m.change_policy(
                    PolicyConfig.from_dict(policy), "replay", At(now, ts, NO_TRACE, events)
                )
        elif kind == EventKind.SESSION:
            self._session(rec, now, ts)
        elif kind == EventKind.CALIBRATION:
            self._calibration(rec, now, ts, events)

    def _note_writer(self, rec: dict[str, Any], ts: datetime) -> None:
        kind, writer = rec["kind"], str(rec["writer"])
        if kind == EventKind.GATE or kind == EventKind.RESULT:
            span = self.spans.get(writer)
            if span is None:
                self.spans[writer] = [ts, ts]
            else:
                span[1] = ts
        elif kind == EventKind.SESSION and rec["reason"] == Reason.SESSION_START:
            shared = bool(details_of(rec["details"]).get("shared"))
            self.shared[writer] = self.shared.get(writer, True) and shared

    def unshared_overlaps(self) -> list[list[str]]:
        """Return the pairs of writers whose decisions overlap in time, not both shared."""
        spans = sorted(self.spans.items(), key=lambda item: item[1][0])
        pairs = []
        for i, (a, (_a0, a1)) in enumerate(spans):
            for b, (b0, _b1) in spans[i + 1 :]:
                if b0 > a1:
                    break
                if not (self.shared.get(a, False) and self.shared.get(b, False)):
                    pairs.append(sorted([a, b]))
        return pairs[:20]

    def _seek_checkpoint(self, rec: dict[str, Any], now: float, ts: datetime) -> None:
        """Skip a headless log's records up to its first checkpoint; start from that."""
        if rec["kind"] != EventKind.CHECKPOINT:
            self.report.before_checkpoint += 1
            return
        data = details_of(rec["details"])
        try:
            self.machine.restore_checkpoint(data, now, policy=not self.what_if)
            # What a later restart reads back of calibration starts from the checkpoint's.
            self.readback.seed(data["calibration"]["samples"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.report.mismatch({"seq": rec["seq"], "kind": "checkpoint", "error": str(exc)})
            return
        self.headless = False
        self.report.from_checkpoint = ts.isoformat()
        # A process was running when it was recorded: the next session start that takes
        # over is a restart.
        self.sessions = max(self.sessions, 1)

    def _calibration(
        self, rec: dict[str, Any], now: float, ts: datetime, events: list[Any]
    ) -> None:
        details = details_of(rec["details"])
        if rec["reason"] == Reason.CALIBRATION_CHANGED:
            self.report.recorded_calibrations.append(calibration_change(details))
        elif rec["reason"] == Reason.CALIBRATION_CONFIGURED:
            # A what-if keeps calibration on but takes its knobs from the policy it was given.
            overrides = {} if self.what_if else dict(details.get("overrides") or {})
            self.machine.configure_calibration(overrides, At(now, ts, NO_TRACE, events))

    def _gate(self, rec: dict[str, Any], allowed: bool) -> None:
        report = self.report
        report.gates += 1
        if rec["allowed"] is False:
            report.recorded_blocked_gates += 1
        if not self.what_if and allowed != rec["allowed"]:
            report.gate_mismatches += 1
            report.mismatch(
                {
                    "seq": rec["seq"],
                    "gate": rec["workflow_id"],
                    "step": rec["step_id"],
                    "recorded": rec["allowed"],
                    "replayed": allowed,
                }
            )

    def _transition(self, rec: dict[str, Any], now: float, ts: datetime, events: list[Any]) -> None:
        m = self.machine
        wid, cause, message = str(rec["workflow_id"]), rec["cause"], rec["message"] or ""
        self.report.recorded[rec["state"]] += 1
        actor = rec["actor"] or "operator"
        if cause == Cause.FLEET:
            details = details_of(rec["details"])
            m.fleet_replay(rec, details, At(now, ts, NO_TRACE, events))
        elif cause == Cause.OPERATOR:
            target = ExecutionState(rec["state"])
            m.operator(wid, target, message or "replayed", actor, At(now, ts, NO_TRACE, events))
        elif cause == Cause.RESTORE_OK:
            m.restore_done(
                wid,
                message.removeprefix("restored "),
                None,
                actor,
                details_of(rec["details"]),
                At(now, ts, NO_TRACE, events),
            )
        elif cause == Cause.RESTORE_FAILED:
            m.restore_done(
                wid,
                None,
                message.removeprefix("restore failed: "),
                actor,
                None,
                At(now, ts, NO_TRACE, events),
            )
        else:
            self.recorded.append((wid, rec["previous_state"], rec["state"], cause, ts.isoformat()))

    def _session(self, rec: dict[str, Any], now: float, ts: datetime) -> None:
        details = details_of(rec["details"])
        if rec["reason"] == Reason.SESSION_START:
            # A new manager starts with its fleet link down and no probe lease (live too).
            self.machine.new_session()
            self.sessions += 1
            if self.sessions > 1 and self._takes_over(rec, ts):
                # A new manager read the log back and carries on alone: a warm restart.
                ledger = self.machine.view
                started = details.get("policy")
                policy = PolicyConfig.from_dict(started) if started and not self.what_if else None
                horizon = (policy or ledger.policy).audit.restore_horizon_seconds
                as_of = _instant((details.get("restored") or {}).get("as_of")) or ts
                streaks = self.readback.streaks(as_of, horizon)
                samples = self.readback.calibration_samples()
                self.machine.restart(now, policy, samples, streaks)
            if details.get("versioned"):
                self.machine.note_store()
        elif rec["reason"] == Reason.STORE_ATTACHED:
            self.machine.note_store()

    def _takes_over(self, rec: dict[str, Any], ts: datetime) -> bool:
        """Return whether a session start is a restart: no other writer writes after it.

        Another writer that still writes after it (the robot, while ``autoheal force`` or a
        snapshot runs a short session of its own) did not restart: its decisions go on
        under its own policy, streaks and windows.
        """
        here = (ts.replace(tzinfo=None), rec["seq"])
        last = self.last
        return all(w == rec["writer"] or last[w] <= here for w in self.writers)

    def finish(self) -> None:
        """Keep the calibration and every workflow's effective settings at the end."""
        self.report.unshared_writers = self.unshared_overlaps()
        if self.headless:
            self.report.mismatch(
                {
                    "error": "the log's first records were deleted and no checkpoint follows:"
                    " no decision can be reproduced"
                }
            )
        ledger = self.machine.view
        thresholds = ledger.calibration.thresholds()
        self.report.method_thresholds = thresholds
        self.report.settings = {
            wid: effective_settings(wid, wf.state, wf.policy, thresholds)
            for wid, wf in sorted(ledger.workflows.items())
        }

    def compare(self) -> None:
        """Record where the automatic transitions and calibrations differ from the log's."""
        if self.what_if:
            return
        report = self.report
        if report.recorded_calibrations != report.replayed_calibrations:
            report.mismatch(
                {
                    "calibration": "differs",
                    "recorded": report.recorded_calibrations[:10],
                    "replayed": report.replayed_calibrations[:10],
                }
            )
        for i in range(max(len(self.recorded), len(self.replayed))):
            got = self.replayed[i] if i < len(self.replayed) else None
            want = self.recorded[i] if i < len(self.recorded) else None
            if got != want:
                self.report.mismatch({"index": i, "recorded": want, "replayed": got})
