"""Replay many candidate policies over one decoded log, each exactly as a what-if would.

Each candidate gets its own :class:`~autoheal_otel.core._machine.Machine` and the replay feed of
:mod:`autoheal_otel.analytics.replay`. Gates and results (nearly every record) take a lean
way: the machine is called without an event list (the way a warm restart drives it, building
no event for a decision nobody reads), the transitions it makes are noted by its ledger, and
the gate answers are counted from what the machine returns. A result that may move a
calibrated threshold takes the full way, as does every other record (operator moves,
restarts, fleet records, calibration, policy and artifact records): the same code the
what-if runs. Candidates are split across processes (forked after the log is decoded, so
the rows are read once and shared).

Invariant: for every candidate, the report (and the list of automatic transitions) equals
``replay(data_dir, policy=candidate)``'s; a property test holds them equal on random logs.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..analytics._replay_report import ReplayReport
from ..analytics._replayer import INPUT_CAUSES, Replayer, calibration_change
from ..base._errors import AutoHealError
from ..base._events import RuleFiring
from ..base._models import ExecutionState
from ..core import _breakers as br
from ..core._ledger import NO_TRACE, Events, Ledger, Trace
from ..core._machine import Machine
from ..policy._config import PolicyConfig
from ..semconv import Cause, EventKind, Reason
from .decoded import ASSUMED, GATE, OTHER, RESULT, DecodedLog, Row, decode

__all__ = ["Candidate", "multi_replay"]

#: An automatic transition: (workflow_id, from, to, cause, ISO time of the record).
Transition = tuple[str, str | None, str | None, str, str]


@dataclass
class Candidate:
    """What one candidate policy would have decided over the log."""

    report: ReplayReport
    #: The automatic transitions in order (operator, restore and fleet moves left out).
    transitions: list[Transition] = field(default_factory=list)


class _NotingLedger(Ledger):
    """A ledger that notes each transition made without an event list."""

    def __init__(self, policy: PolicyConfig, writer: str, anchor: tuple[float, datetime]) -> None:
        super().__init__(policy, writer, anchor)
        self.silent: list[tuple[str, str, str, str]] = []

    def move(
        self,
        wf: br.WorkflowRuntime,
        target: ExecutionState,
        cause: Cause,
        now: float,
        ts: datetime | None,
        trace: Trace,
        events: Events,
        rule: RuleFiring | str,
        message: str,
        *,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Move the workflow as the ledger does; note the move when no event records it."""
        if events is None:
            self.silent.append((wf.workflow_id, wf.state.value, target.value, cause.value))
        super().move(
            wf, target, cause, now, ts, trace, events, rule, message, actor=actor, details=details
        )


class _LeanMachine(Machine):
    """The machine over a noting ledger."""

    def __init__(self, policy: PolicyConfig, writer: str, anchor: tuple[float, datetime]) -> None:
        self.ledger = _NotingLedger(policy, writer, anchor)
        self._workflows = self.ledger.workflows


def _one(log: DecodedLog, policy: PolicyConfig) -> Candidate:
    """Replay ``log`` under ``policy``: what ``replay(data_dir, policy)`` reports."""
    report = ReplayReport(what_if=True, skipped_lines=log.skipped_lines)
    if log.records == 0 or log.first is None:
        return Candidate(report)
    machine = _LeanMachine(policy, "replay", (0.0, log.first))
    ledger = machine.ledger
    assert isinstance(ledger, _NotingLedger)
    report.policy_version = machine.policy.version
    feed = Replayer(machine, report, log.first, log.last)
    feed.acked = set(log.acked)
    silent = ledger.silent
    writers = feed.writers
    readback = feed.readback
    gate, result = machine.gate, machine.result
    allowed = True
    for row in log.rows:
        code, writer, seq, wid, step, ts, now, payload = row
        if code == OTHER:  # acknowledged moves are among these: decode() keeps them whole
            feed.feed(payload)
            continue
        if code == ASSUMED:  # a result only a candidate that let its gate pass would see
            if allowed:
                _assume(feed, ledger, wid, step, payload, now, ts)
            continue
        writers.add(writer)
        try:
            if code == GATE:
                allowed = gate(wid, step, now, ts, NO_TRACE, None)[0]
                report.gates += 1
                if payload is False:
                    report.recorded_blocked_gates += 1
                if not allowed:
                    report.replayed_blocked_gates += 1
            elif isinstance(payload, AutoHealError):
                raise payload
            else:
                step_result, signals = payload
                if step_result.confidence is not None and ledger.calibration.enabled:
                    # A threshold may move: its record's details come from the event.
                    feed.feed(_as_record(row))
                    continue
                result(wid, step, step_result, now, ts, NO_TRACE, None)
                readback.result(wid, step, step_result, signals, ts)
        except AutoHealError as exc:
            kind = "gate" if code == GATE else "result"
            report.mismatch({"seq": seq, "kind": kind, "error": str(exc)})
        if silent:
            _note(feed, silent, ts)
    report.records = log.records
    feed.finish()
    return Candidate(report, feed.replayed)


def _note(feed: Replayer, silent: list[tuple[str, str, str, str]], ts: datetime) -> None:
    """Count the transitions the ledger noted, as the feed counts transition events."""
    for workflow_id, previous, state, cause in silent:
        feed.report.replayed[state] += 1
        if cause not in INPUT_CAUSES:
            feed.replayed.append((workflow_id, previous, state, cause, ts.isoformat()))
    silent.clear()


def _assume(
    feed: Replayer,
    ledger: _NotingLedger,
    wid: str,
    step: str,
    payload: Any,
    now: float,
    ts: datetime,
) -> None:
    """Feed an assumed result: as a recorded one, minus what a restart would read back."""
    events: list[Any] | None = [] if ledger.calibration.enabled else None
    feed.machine.result(wid, step, payload[0], now, ts, NO_TRACE, events)
    for e in events or ():
        if e.kind is EventKind.TRANSITION:
            state = e.state.value if e.state else "?"
            feed.report.replayed[state] += 1
            if e.cause not in INPUT_CAUSES:
                prev = e.previous_state.value if e.previous_state else None
                feed.replayed.append((wid, prev, state, e.cause, ts.isoformat()))
        elif e.kind is EventKind.CALIBRATION and e.reason == Reason.CALIBRATION_CHANGED:
            feed.report.replayed_calibrations.append(calibration_change(e.details))
    _note(feed, ledger.silent, ts)


def _as_record(row: Row) -> dict[str, Any]:
    """Rebuild the record a gate or result row came from (for the feed's full way)."""
    code, writer, seq, wid, step, ts, _now, payload = row
    assert code == RESULT or not isinstance(payload, AutoHealError)
    rec: dict[str, Any] = {
        "kind": "gate" if code == GATE else "result",
        "writer": writer,
        "seq": seq,
        "workflow_id": wid,
        "step_id": step,
        "ts": ts,
        "allowed": payload if code == GATE else None,
    }
    if code == RESULT:
        made, signals = payload
        rec.update(
            outcome=made.outcome,
            confidence=made.confidence,
            second_best=made.second_best,
            validated=made.validated,
            duration_s=made.duration_s,
            details=dict(made.details),
            signals=signals,
        )
    return rec


def _share(log: DecodedLog, policies: list[PolicyConfig], part: int, parts: int) -> list[Candidate]:
    return [_one(log, p) for p in policies[part::parts]]


def _child(log: DecodedLog, policies: list[PolicyConfig], part: int, parts: int, conn: Any) -> None:
    try:
        conn.send(("ok", _share(log, policies, part, parts)))
    except Exception as exc:  # contained: the parent reports it, the child must not hang it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def multi_replay(
    source: str | Path | DecodedLog,
    policies: list[PolicyConfig],
    workers: int | None = None,
) -> list[Candidate]:
    """Replay the log of ``source`` (a data directory, or a log decoded once) under each of
    ``policies``; return one :class:`Candidate` per policy, in order.

    ``workers`` processes share the candidates (default: the CPUs this process may use, at
    most one per candidate); the first share runs here, the others in forked children that
    read the decoded rows without copying them first.

    Raises:
        AutoHealError: a child failed (its error is named).
    """
    log = source if isinstance(source, DecodedLog) else decode(source)
    parts = max(1, min(workers or len(os.sched_getaffinity(0)), len(policies)))
    if parts == 1:
        return _share(log, policies, 0, 1)
    ctx = multiprocessing.get_context("fork")
    children = []
    for part in range(1, parts):
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_child, args=(log, policies, part, parts, send), daemon=True)
        process.start()
        send.close()
        children.append((part, process, receive))
    shares: dict[int, list[Candidate]] = {0: _share(log, policies, 0, parts)}
    for part, process, receive in children:
        try:
            status, payload = receive.recv()
        except EOFError:
            status, payload = "error", f"worker {part} ended without an answer"
        process.join()
        if status != "ok":
            raise AutoHealError(f"multi-policy replay failed: {payload}")
        shares[part] = payload
    out: list[Candidate | None] = [None] * len(policies)
    for part, share in shares.items():
        for index, candidate in zip(range(part, len(policies), parts), share, strict=True):
            out[index] = candidate
    return [c for c in out if c is not None]
