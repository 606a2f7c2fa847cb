"""Replay many candidate policies over one decoded log, each exactly as a what-if would.

Each candidate gets its own :class:`~autoheal_otel.core._machine.Machine` and the replay feed of
:mod:`autoheal_otel.analytics.replay`. Gates and results (nearly every record) take a lean
way. A known step's gate, and a clean success of a known step that is neither a recovery,
nor a probe, nor counted against an artifact version, are answered without the machine,
doing exactly what the machine does for them without events (a gate: the answer of the
workflow's state; a result: count it, reset the step's streaks, keep its decided match). Any
other gate or result calls the machine without an event list (the way a warm restart drives
it, building no event for a decision nobody reads); the transitions it makes are noted by
its ledger. A result that may move a calibrated threshold takes the full way, as does every
other record (operator moves, restarts, fleet records, calibration, policy and artifact
records): the same code the what-if runs. What every candidate shares (what each restart
reads back, the writers met) comes from :func:`~.prepass.prepass`, computed once. The
candidates are shared by processes forked after that (the rows are read, not copied), each
taking the next candidate left.

Invariant: for every candidate, the report (and the list of automatic transitions) equals
``replay(data_dir, policy=candidate)``'s; a property test holds them equal on random logs.
"""

from __future__ import annotations

import gc
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
from ..base._models import ExecutionState, Outcome
from ..core import _breakers as br
from ..core._ledger import NO_TRACE, At, Ledger
from ..core._machine import Machine
from ..policy._config import PolicyConfig
from ..semconv import Cause, EventKind, Reason
from .decoded import ASSUMED, GATE, OTHER, RESULT, DecodedLog, Row, decode
from .prepass import Prepass, SharedReadback, prepass

__all__ = ["Candidate", "multi_replay"]

RUNNING = ExecutionState.RUNNING
DEGRADED = ExecutionState.DEGRADED
QUARANTINED = ExecutionState.QUARANTINED
SUCCESS = Outcome.SUCCESS

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
        at: At,
        rule: RuleFiring | str,
        message: str,
        *,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Move the workflow as the ledger does; note the move when no event records it."""
        if at.events is None:
            self.silent.append((wf.workflow_id, wf.state.value, target.value, cause.value))
        super().move(wf, target, cause, at, rule, message, actor=actor, details=details)


class _LeanMachine(Machine):
    """The machine over a noting ledger."""

    def __init__(self, policy: PolicyConfig, writer: str, anchor: tuple[float, datetime]) -> None:
        #: The machine's own ledger, which notes the silent moves (the lab reads it).
        self.noting = self._ledger = _NotingLedger(policy, writer, anchor)
        self._workflows = self.noting.workflows


def _one(log: DecodedLog, policy: PolicyConfig, shared: Prepass) -> Candidate:
    """Replay ``log`` under ``policy``: what ``replay(data_dir, policy)`` reports."""
    report = ReplayReport(what_if=True, skipped_lines=log.skipped_lines)
    if log.records == 0 or log.first is None:
        return Candidate(report)
    if log.headless:
        return _from_checkpoint(log, policy, report)
    machine = _LeanMachine(policy, "replay", (0.0, log.first))
    ledger = machine.noting
    report.policy_version = machine.policy.version
    feed = Replayer(machine, report, log.first, log.last)
    feed.acked = set(log.acked)
    feed.readback = SharedReadback(shared.readbacks)
    workflows = ledger.workflows
    get = workflows.get
    calibration = ledger.calibration
    allowed = True
    # Gates answered without the machine: how many, recorded as blocked, refused now.
    gates = recorded_blocked = refused = 0
    rows = log.rows
    for code, wid, step, recorded, payload, index in shared.program:
        if OTHER <= code <= ASSUMED:
            _aside(feed, rows[index], allowed, shared)
            continue
        wf = get(wid)
        if code != RESULT:  # a gate, alone or with its result (PAIR)
            # A known step's gate, answered as Machine.gate answers it without events (no
            # state changes but a quarantine's probe, which takes the machine's way).
            state = wf.state if wf is not None and step in wf.steps else None
            if state is RUNNING or state is DEGRADED:
                allowed = True
                gates += 1
                recorded_blocked += recorded is False
            elif state is None or (state is QUARANTINED and _probes(wf)):
                allowed = _decide(feed, rows[index], allowed)
                wf = get(wid)
            else:
                allowed = False
                gates += 1
                refused += 1
                recorded_blocked += recorded is False
            if code == GATE:
                continue
            index += 1
        if (
            wf is not None
            and wf.artifact_version is None
            and type(payload) is tuple
            and wf.state is not DEGRADED
            and (wf.state is not QUARANTINED or wf.probe_step != step)
        ):
            made = payload[0]
            conf = made.confidence
            # A clean success of a known step, neither a recovery (DEGRADED) nor a probe,
            # nor counted against an artifact version: all Machine.result does without
            # events is count it, reset the step's streaks and (calibration off) keep its
            # decided match. The same test for clean as Machine.result's.
            if (
                made.outcome is SUCCESS
                and (
                    conf is None
                    or (
                        conf >= wf.floor
                        and (
                            not wf.strict
                            or made.second_best is None
                            or conf - made.second_best >= wf.margin
                        )
                    )
                )
                and (conf is None or not calibration.enabled)
            ):
                runtime = wf.steps.get(step)
                if runtime is not None:
                    wf.executions += 1
                    runtime.consecutive_target_not_found = 0
                    runtime.consecutive_low_confidence = 0
                    sample = payload[2]
                    if sample is not None:
                        calibration.samples[sample[0]].append(sample[1])
                    continue
        _decide(feed, rows[index], allowed)
    report.gates += gates
    report.recorded_blocked_gates += recorded_blocked
    report.replayed_blocked_gates += refused
    report.records = log.records
    feed.spans, feed.shared = shared.spans, shared.shared
    feed.finish()
    return Candidate(report, feed.replayed)


def _probes(wf: br.WorkflowRuntime | None) -> bool:
    """Return whether a quarantined workflow admits probes (its gate may admit one)."""
    return wf is not None and wf.policy.quarantine.probe_enabled


def _from_checkpoint(log: DecodedLog, policy: PolicyConfig, report: ReplayReport) -> Candidate:
    """Replay a log whose head was deleted: every record through the what-if's own feed,
    which starts at the first checkpoint (rare: no lean way, no shared read-back)."""
    assert log.first is not None
    machine = Machine(policy, "replay", (0.0, log.first))
    report.policy_version = machine.policy.version
    feed = Replayer(machine, report, log.first, log.last)
    feed.acked = set(log.acked)
    feed.headless = True
    for row in log.rows:
        code, writer, seq, _wid, _step, ts, _now, payload = row
        if code == OTHER:
            feed.feed(payload)
        elif isinstance(payload, AutoHealError):  # a result with invalid fields, as fed
            feed.writers.add(writer)
            if feed.headless:
                report.before_checkpoint += 1
            else:
                feed._note_writer({"kind": "result", "writer": writer}, ts)
                report.mismatch({"seq": seq, "kind": "result", "error": str(payload)})
        elif code != ASSUMED:
            feed.feed(_as_record(row))
    report.records = log.records
    feed.finish()
    return Candidate(report, feed.replayed)


def _aside(feed: Replayer, row: Row, allowed: bool, shared: Prepass) -> None:
    """Feed any other record (acknowledged moves are among these: decode() keeps them
    whole), or an assumed result (which only a candidate that let its gate pass sees)."""
    code, _writer, _seq, wid, step, ts, now, payload = row
    if code == OTHER:
        met = shared.writers.get(id(payload))
        if met is not None:
            feed.writers = set(met)
        feed.feed(payload)
    elif allowed:
        machine = feed.machine
        assert isinstance(machine, _LeanMachine)
        ledger = machine.noting
        _assume(feed, ledger, wid, step, payload, now, ts)


def _decide(feed: Replayer, row: Row, allowed: bool) -> bool:
    """Feed a gate or result the way that calls the machine; return the gate's answer
    (``allowed`` unchanged for a result)."""
    code, _writer, seq, wid, step, ts, now, payload = row
    machine, report = feed.machine, feed.report
    assert isinstance(machine, _LeanMachine)
    ledger = machine.noting
    try:
        if code == GATE:
            allowed = machine.gate(wid, step, now, ts, NO_TRACE, None)[0]
            report.gates += 1
            if payload is False:
                report.recorded_blocked_gates += 1
            if not allowed:
                report.replayed_blocked_gates += 1
        elif isinstance(payload, AutoHealError):
            raise payload
        else:
            made = payload[0]
            if made.confidence is not None and ledger.calibration.enabled:
                # A threshold may move: its record's details come from the event.
                feed.feed(_as_record(row))
                return allowed
            machine.result(wid, step, made, now, ts, NO_TRACE, None)
    except AutoHealError as exc:
        kind = "gate" if code == GATE else "result"
        report.mismatch({"seq": seq, "kind": kind, "error": str(exc)})
    if ledger.silent:
        _note(feed, ledger.silent, ts)
    return allowed


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
    assert not isinstance(payload, AutoHealError)
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
        made, signals = payload[0], payload[1]
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


def _take(
    log: DecodedLog, policies: list[PolicyConfig], shared: Prepass, counter: Any
) -> list[tuple[int, Candidate]]:
    """Replay candidates until none is left: each takes the next index from ``counter``."""
    out: list[tuple[int, Candidate]] = []
    while True:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        if index >= len(policies):
            return out
        out.append((index, _one(log, policies[index], shared)))


def _child(
    log: DecodedLog, policies: list[PolicyConfig], shared: Prepass, counter: Any, conn: Any
) -> None:
    try:
        conn.send(("ok", _take(log, policies, shared, counter)))
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
    most one per candidate), each taking the next candidate left when it is done with one;
    one runs here, the others in children forked after the log is decoded and its
    policy-independent part read (:func:`.prepass`), so they read those without copying
    them first.

    Raises:
        AutoHealError: a child failed (its error is named).
    """
    log = source if isinstance(source, DecodedLog) else decode(source)
    shared = prepass(log)
    parts = max(1, min(workers or len(os.sched_getaffinity(0)), len(policies)))
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("q", 0)
    if parts == 1:
        return [c for _, c in sorted(_take(log, policies, shared, counter), key=_first)]
    children = []
    # The decoded rows are never freed while the children run: keep the collector off them
    # (a collection would touch every row's page, copying it into each child).
    gc.freeze()
    try:
        for part in range(1, parts):
            receive, send = ctx.Pipe(duplex=False)
            process = ctx.Process(
                target=_child, args=(log, policies, shared, counter, send), daemon=True
            )
            process.start()
            send.close()
            children.append((part, process, receive))
        done = _take(log, policies, shared, counter)
        for part, process, receive in children:
            try:
                status, payload = receive.recv()
            except EOFError:
                status, payload = "error", f"worker {part} ended without an answer"
            process.join()
            if status != "ok":
                raise AutoHealError(f"multi-policy replay failed: {payload}")
            done.extend(payload)
    finally:
        gc.unfreeze()
    return [c for _, c in sorted(done, key=_first)]


def _first(item: tuple[int, Candidate]) -> int:
    return item[0]
