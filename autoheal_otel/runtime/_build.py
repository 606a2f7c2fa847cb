"""How a manager's parts are built and connected, in order, from its constructor's arguments.

The facade (:class:`~._manager.AutoHealManager`) owns what :func:`assemble` returns: the
machine rebuilt from the data directory, the sinks behind one publisher, the telemetry, the
scaffold every input goes through, and the collaborators that feed it (artifacts, periodic
checks, background compaction, the fleet link).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..base._clock import Clock, SystemClock
from ..base._errors import InvalidInputError, PolicyError
from ..base._events import EventSink
from ..base._fs import folder_inside
from ..core._facts import Fact
from ..core._ledger import Notes
from ..core._machine import Machine
from ..core._moves import Move
from ..core._report import StatusReport
from ..disk._retention import RetentionKeeper, start_retention
from ..disk._usage import DiskMeter
from ..disk._usage import annotate as annotate_disk
from ..policy._config import PolicyConfig
from ..policy._sections import AuditPolicy
from ..semconv import Reason
from ..sinks.jsonl import AUDIT_DIR, JsonlAuditSink, new_writer_id
from ..sinks.otel import OTelSink
from ..sinks.sqlite import SuccessStore
from ._artifacts import ArtifactKeeper
from ._checkpointer import Checkpointer, write_checkpoint
from ._compactor import AutoCompactor, start_compactor
from ._data_dir import Telemetry, open_data_dir, resolve_policy, unwritable
from ._fleet_start import build_fleet
from ._follow import Follower, SharedFollow
from ._polling import Periodic
from ._publisher import Publisher
from ._runner import Scaffold
from ._shadows import Shadows
from ._shared import FACT_MARKERS, NoFlockError, SharedTurns

if TYPE_CHECKING:
    from ..fleet import FleetLink

__all__ = ["Parts", "assemble"]


_log = logging.getLogger("autoheal_otel")

#: The jobs :meth:`Parts.run_background` runs: other writers' moves, a due checkpoint,
#: compaction, retention, and the shared global figures' sync.
BACKGROUND_JOBS = ("follow", "checkpoint", "compaction", "retention", "sync", "shadow")


@dataclass(slots=True)
class Parts:
    """What a manager is made of (see :func:`assemble`)."""

    clock: Clock
    writer: str
    machine: Machine
    scaffold: Scaffold
    publisher: Publisher
    telemetry: Telemetry
    audit: JsonlAuditSink | None
    success_store: SuccessStore | None
    artifacts: ArtifactKeeper
    periodic: Periodic
    compactor: AutoCompactor | None
    fleet: FleetLink | None
    #: Applies other writers' operator moves (None: no writable data directory).
    follower: Follower | None
    #: The data directory's decision lock when decisions are shared (None: this process alone).
    shared: SharedTurns | None
    #: Records a checkpoint every ``audit.checkpoint_interval_seconds`` (None: nothing recorded).
    checkpointer: Checkpointer | None
    #: What the warm restart rebuilt (per kind of figure) and as of when, for the session's
    #: first record.
    restored: dict[str, Any]
    data_dir: Path | None
    read_only: bool
    #: Records how long an operation took (a no-op without telemetry).
    record_operation: Callable[[str, float], None]
    #: Measures the data directory against the retention budget (None: no directory).
    disk: DiskMeter | None = None
    #: Deletes what is past its keep-days, on a thread of its own (None: not writing).
    retention: RetentionKeeper | None = None
    #: Keeps the policy's shadow running (None: no writable data directory).
    shadows: Shadows | None = None

    def start(self, versioned: bool) -> None:
        """Record the session's start in the audit log, then start the fleet link's threads.

        In this order: replay resets the fleet link at a session start, so the link's own
        records (``fleet.connected``) must follow it, whatever the threads' timing.
        """
        if self.audit is not None:  # session records exist for the audit log (and replay)
            details = {
                "writer": self.writer,
                "policy": self.machine.policy.to_record(),
                "restored": self.restored,
                "versioned": versioned,
                "shared": self.shared is not None,
                "library_version": __version__,  # which release's rules wrote what follows
            }
            self._note(Reason.SESSION_START, f"manager started (writer {self.writer})", details)
        if self.follower is not None:
            self.follower.start()
        if self.checkpointer is not None:
            self.checkpointer.start()
        if self.fleet is not None:
            self.fleet.start()
        if self.retention is not None:
            self.retention.start()

    def jobs(self) -> list[str]:
        """Return the background jobs this manager runs on threads of their own."""
        named = {
            "follow": self.follower,
            "checkpoint": self.checkpointer,
            "compaction": self.compactor,
            "retention": self.retention,
            "sync": self.periodic if self.periodic.syncs else None,
            "shadow": self.shadows if self.shadows is not None and self.shadows.running() else None,
        }
        return [name for name, part in named.items() if part is not None]

    def run_background(self, job: str) -> int:
        """Do one turn of a background job on this thread (see the manager's method)."""
        if job not in BACKGROUND_JOBS:
            raise InvalidInputError("job", job, f"must be one of {', '.join(BACKGROUND_JOBS)}")
        if job == "follow":
            return self.follower.look_now() if self.follower is not None else 0
        if job == "checkpoint":
            return int(self.checkpointer.look()) if self.checkpointer is not None else 0
        if job == "compaction":
            if self.compactor is None:
                return 0
            report = self.compactor.run_once()
            return len(report.compacted) if report is not None else 0
        if job == "retention":
            return int(self.retention.tick()) if self.retention is not None else 0
        if job == "shadow":
            if self.shadows is None:
                return 0
            self.publisher.flush()
            return int(self.shadows.sync())
        if not self.periodic.syncs:  # "sync"
            return 0
        return int(self.periodic.wait_synced(30.0))

    def status_report(self, policy_error: PolicyError | None) -> StatusReport:
        """Return every workflow's state and counters, the settings and the parts' health."""
        now, wall = self.clock.monotonic(), self.clock.now()
        with self.scaffold.lock:
            report = self.machine.report(now, wall, policy_error, self.publisher)
        if self.disk is not None:  # outside the lock: a walk (cached) never holds a hook
            report = annotate_disk(report, self.disk.usage())
        shadow = self.shadows.status() if self.shadows is not None else None
        if shadow is not None:
            report = report.model_copy(update={"shadow": shadow})
        return self.fleet.annotate(report) if self.fleet is not None else report

    def close(self) -> None:
        """Record the session's end, refuse later inputs, close the sinks, stop the threads."""
        if self.scaffold.closed:
            return
        if self.retention is not None:  # its records go through the scaffold: stop it first
            self.retention.close()
        if self.follower is not None:
            self.follower.close()
        if self.checkpointer is not None:
            self.checkpointer.close()
        if self.fleet is not None:
            self.fleet.close()
        if self.audit is not None:
            details = {"writer": self.writer}
            self._note(Reason.SESSION_STOP, f"manager closed (writer {self.writer})", details)
        with self.scaffold.lock:
            self.scaffold.closed = True
        self.publisher.close()
        self.periodic.close()
        if self.compactor is not None:
            self.compactor.close()
        if self.shared is not None:
            self.shared.close()

    def _note(self, reason: Reason, message: str, details: Mapping[str, Any]) -> None:
        feed = self.machine.note_session
        self.scaffold.decide(None, "session", None, None, feed, reason, message, details)


def open_turns(data_dir: Path, audit: AuditPolicy) -> SharedTurns:
    """Open the data directory's decision lock, creating the folders inside it only.

    Raises:
        InvalidInputError: the directory cannot be created or written (or leads outside).
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=audit.dir_mode)
        return SharedTurns(folder_inside(data_dir, data_dir / AUDIT_DIR), audit.mode)
    except NoFlockError:
        raise InvalidInputError(
            "data_dir",
            str(data_dir),
            "must be on a file system whose file locks work, for shared decisions (or turn"
            " them off: audit.shared_decisions false, or the listener's shared=off)",
        ) from None
    except OSError as exc:
        raise unwritable(data_dir, exc) from exc


def _open_in_turn(
    shared: SharedTurns | None,
    data_dir: Path,
    machine: Machine,
    clock: Clock,
    writer: str,
    read_only: bool,
) -> tuple[dict[str, Any], JsonlAuditSink | None, SuccessStore | None]:
    """Read the log back and open the sinks, inside the turn ``shared`` began (if any)."""
    try:
        return open_data_dir(data_dir, machine, clock, writer, read_only)
    except BaseException:
        if shared is not None:  # the manager will not exist: nothing may keep its lock file
            shared.end()
            shared.close()
            shared = None
        raise
    finally:
        if shared is not None:
            shared.end()


def _log_all(notes: Notes) -> None:
    """Write what an input noted for the process's log (the core logs nothing itself)."""
    for message, exc in notes:
        _log.warning("%s", message, exc_info=exc)


def _checkpointer(
    machine: Machine, scaffold: Scaffold, monotonic: Callable[[], float]
) -> Checkpointer:
    """Return the thread that records a checkpoint every ``audit.checkpoint_interval_seconds``."""

    def write() -> None:
        write_checkpoint(scaffold.decide, machine)

    return Checkpointer(write, monotonic, lambda: machine.policy.audit.checkpoint_interval_seconds)


def assemble(
    policy: PolicyConfig | str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str] | None,
    clock: Clock | None,
    providers: tuple[Any, Any, Any],
    sinks: Iterable[EventSink],
    writer: str | None,
    read_only: bool,
    shared_decisions: bool | None = None,
) -> Parts:
    """Build a manager's parts: policy, machine, warm restart, sinks, telemetry, collaborators.

    Raises:
        PolicyError: the initial policy file is missing or invalid.
        InvalidInputError: ``data_dir`` is not a writable directory, or ``policy`` has the
            wrong type.
    """
    data_dir = Path(data_dir) if data_dir is not None else None
    clock = clock if clock is not None else SystemClock()
    monotonic = clock.monotonic
    now, wall = monotonic(), clock.now()
    config, watcher = resolve_policy(policy, now)
    writer = writer or new_writer_id()
    machine = Machine(config, writer, (now, wall))
    lock = threading.Lock()
    publisher = Publisher()
    restored: dict[str, Any] = {}
    audit: JsonlAuditSink | None = None
    successes: SuccessStore | None = None
    follower: Follower | None = None
    rollbacks: set[tuple[str, str]] = set()

    shared: SharedTurns | None = None

    def follow(moves: list[Move]) -> None:
        notes: Notes = []
        try:
            scaffold.decide(
                None, "follow", None, None, machine.apply_moves, moves, rollbacks, notes
            )
        finally:
            _log_all(notes)  # (an input that raised part-way still said what it did)

    def take_over(facts: list[Fact]) -> None:
        floor = scaffold.last[0]  # this machine's last input: facts are fed after it
        notes: Notes = []
        try:
            scaffold.decide(None, "catch_up", None, None, machine.take_facts, facts, floor, notes)
        finally:
            _log_all(notes)

    if data_dir is not None and not read_only:
        if config.audit.shared_decisions if shared_decisions is None else shared_decisions:
            shared = open_turns(data_dir, config.audit)
            shared.begin()  # no other process decides between the read-back and the tail
        follower = Follower(
            data_dir / AUDIT_DIR,
            writer,
            follow,
            config.audit.follow_interval_seconds,
            SharedFollow(take_over, FACT_MARKERS, shared) if shared is not None else None,
        )
        # Before the warm restart reads the log: a move recorded in between is applied twice
        # at worst (the second time finds the state already there), never missed.
        follower.skip_existing()
    if data_dir is not None:
        restored, audit, successes = _open_in_turn(
            shared, data_dir, machine, clock, writer, read_only
        )

    def dropped() -> dict[str, int]:
        counts = {"JsonlAuditSink": audit.dropped} if audit is not None else {}
        if successes is not None:
            counts["SuccessStore"] = successes.dropped
        return counts

    telemetry = Telemetry(
        providers, view=machine.view, lock=lock, monotonic=monotonic, publisher=publisher,
        dropped=dropped,
    )  # fmt: skip
    otel: OTelSink | None = telemetry.sink
    for sink in (audit, successes, otel, *sinks):
        if sink is not None:
            publisher.add(sink)
    if otel is not None and data_dir is not None:
        otel.record_operation("warm_restart", monotonic() - now)
    scaffold = Scaffold(monotonic, clock.now, publisher, otel, lock, (now, wall))
    checkpointer = _checkpointer(machine, scaffold, monotonic) if audit is not None else None
    if shared is not None and follower is not None:
        scaffold.share(shared, follower.poll)
    decide = scaffold.decide
    record = _recorder(otel)

    def evidence(workflow_id: str) -> dict[str, Any]:
        return successes.learning_success_rate(workflow_id) if successes is not None else {}

    artifacts = ArtifactKeeper(machine, decide, monotonic, record, evidence)
    periodic = Periodic(machine, decide, watcher, data_dir, (now, wall), record, monotonic)
    scaffold.periodic = periodic
    writable = data_dir if not read_only else None
    shadows = Shadows(publisher, writable, writer, machine.view) if writable else None
    if shadows is not None:
        shadows.on_policy(config)
        periodic.on_policy = shadows.on_policy
    compactor = start_compactor(data_dir, config.audit, read_only)
    # The fleet link (off by default; only then is redis imported) ships this host's
    # failures and follows the fleet's decisions on threads of its own.
    fleet = None
    if config.fleet.enabled and not read_only:
        fleet = build_fleet(
            config.fleet, publisher, machine=machine, decide=decide, lock=lock,
            monotonic=monotonic, meter=telemetry.meter, carry_out=artifacts.carry_out,
        )  # fmt: skip
    disk, retention = start_retention(data_dir, machine, decide, read_only, clock, telemetry.meter)
    return Parts(
        clock,
        writer,
        machine,
        scaffold,
        publisher,
        telemetry,
        audit,
        successes,
        artifacts,
        periodic,
        compactor,
        fleet,
        follower,
        shared,
        checkpointer,
        restored,
        data_dir,
        read_only,
        record,
        disk,
        retention,
        shadows,
    )


def _recorder(otel: OTelSink | None) -> Callable[[str, float], None]:
    """Return how operation durations are recorded (nothing without telemetry)."""
    if otel is not None:
        return otel.record_operation
    return lambda _operation, _seconds: None
