"""Decide as one with the other processes that write to the same data directory.

Several robot processes on one data directory (pabot, two robots started at once) each run a
manager. Alone, each counts only its own failures: two processes with 3 failures each leave a
workflow RUNNING at 6 against a threshold of 5. Under ``audit.shared_decisions`` (the Robot
Framework listener turns it on) every input of a manager is one *turn*:

1. take the directory's decision lock (``audit/.decide.lock``, an exclusive ``flock``: one
   turn at a time across every process, and across this process's threads);
2. catch up: the step gates and results other writers recorded since this process's last
   turn are fed to this machine as if they were its own (the events they produce are not
   recorded again: their writer recorded them), their automatic transitions are taken over
   when this machine did not reach the same state by itself, and their operator moves are
   followed and acknowledged as always (:mod:`~._follow`);
3. decide, write this turn's records to the log, and release.

So every process decides from every decision made before it, and the log, read in
``(ts, seq)`` order, is one sequence of decisions that replay feeds to one machine.

The look costs a lock and an 8-byte read when nothing happened: the lock file holds a turn
counter that a turn which wrote records bumps; a process that has seen the current count reads
nothing. Other writers that do not take turns (``autoheal force`` from a CLI) are still
followed by the follower thread (within ``audit.follow_interval_seconds``).

Invariants: one turn at a time per data directory; a turn's records are in the log before the
next turn starts; a record is fed to this machine at most once (a tail reads each line once).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..base._errors import InvalidInputError, ManagerClosedError
from ..base._models import ExecutionState, StepResult, check_id, printable
from ..core._facts import Fact
from ..semconv import Cause, EventKind
from ._tail import stamp

__all__ = ["FACT_MARKERS", "NoFlockError", "SharedTurns", "parse_fact"]

_log = logging.getLogger("autoheal_otel")

LOCK_NAME = ".decide.lock"
#: Byte markers of the lines that hold another process's decision (every other line is not
#: decoded by the catch-up).
FACT_MARKERS = (b'"kind":"gate"', b'"kind":"result"', b'"kind":"transition"')
#: Transitions the catch-up never takes over: moves (followed and acknowledged by
#: :mod:`~._follow`) and the fleet's decisions (each host follows the fleet itself).
_NOT_TAKEN = {Cause.OPERATOR.value, Cause.FLEET.value}


class NoFlockError(OSError):
    """The data directory's file system has no working ``flock`` (shared decisions need it)."""


def parse_fact(writer: str, record: dict[str, Any]) -> Fact | None:
    """Return the decision a record holds, or None (not a decision to share, or malformed)."""
    kind, stamped = record.get("kind"), stamp(record)
    if stamped is None:
        return None
    seq, when = stamped
    try:
        wid = check_id("workflow_id", record.get("workflow_id"))  # a planted line stops here
        raw_step = record.get("step_id")
        step = check_id("step_id", raw_step) if raw_step is not None else None
        if kind == EventKind.GATE and step is not None:
            return Fact(when, writer, seq, "gate", wid, step)
        if kind == EventKind.RESULT and step is not None:
            details = record.get("details")
            result = StepResult(
                outcome=record.get("outcome"),  # type: ignore[arg-type]  # checked by StepResult
                confidence=record.get("confidence"),
                second_best=record.get("second_best"),
                validated=bool(record.get("validated")),
                duration_s=record.get("duration_s"),
                details=details if isinstance(details, dict) else {},
            )
            return Fact(when, writer, seq, "result", wid, step, result=result)
        cause = record.get("cause")
        if kind == EventKind.TRANSITION and isinstance(cause, str) and cause not in _NOT_TAKEN:
            Cause(cause)  # a cause this release does not know: skipped (ValueError)
            state = ExecutionState(str(record.get("state")))
            message = printable(record.get("message"), 500)
            return Fact(when, writer, seq, "transition", wid, None, state=state, cause=cause,
                        message=message)  # fmt: skip
    except (ValueError, TypeError, InvalidInputError):  # no machine could take it: skipped
        return None
    return None


class SharedTurns:
    """The decision lock of one data directory, and the turn counter it holds (see the module).

    Args:
        audit_dir: the data directory's ``audit`` folder.
        mode: permissions of the lock file when it is created here.
    """

    def __init__(self, audit_dir: Path, mode: int = 0o600) -> None:
        self.path = audit_dir / LOCK_NAME
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        self._fd = os.open(self.path, flags, mode)
        try:  # a file system without working locks (some network ones) is refused now
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        except BlockingIOError:
            pass  # another process holds it: locks work
        except OSError as exc:
            os.close(self._fd)
            raise NoFlockError(exc.errno, f"file locks do not work here ({exc.strerror})") from exc
        self._mutex = threading.RLock()
        self._depth = 0
        self._seen = -1
        self._wrote = False
        #: Turns that found other processes' records to read.
        self.catch_ups = 0

    def begin(self) -> bool:
        """Start a turn (re-entrant); return True when others wrote since this process's last.

        The outermost call of a thread takes the lock; nested calls (a catch-up's own input)
        return False and only count. Whatever interrupts it (a signal while it waits for the
        lock, a closed manager) leaves nothing taken: the caller's ``end`` is not called.

        Raises:
            ManagerClosedError: the manager was closed.
        """
        self._mutex.acquire()
        try:
            if self._fd < 0:
                raise ManagerClosedError("a shared decision after close()")
            if self._depth > 0:
                self._depth += 1
                return False
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                count = self._count()
            except BaseException:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                raise
            self._depth = 1
        except BaseException:
            self._mutex.release()
            raise
        changed = count != self._seen
        self._seen = count
        if changed:
            self.catch_ups += 1
        return changed

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran: no turn can start."""
        return self._fd < 0

    def wrote(self) -> None:
        """Say this turn wrote records (the counter moves at its end)."""
        self._wrote = True

    def end(self) -> None:
        """End a turn: bump the counter if it wrote, release the lock (outermost call)."""
        try:
            self._depth -= 1
            if self._depth == 0:
                try:
                    if self._wrote:  # the lock is held: the count is still the one read
                        self._seen += 1
                        try:
                            os.pwrite(self._fd, self._seen.to_bytes(8, "little"), 0)
                        except OSError:  # the others' follower threads still read it all
                            _log.warning("autoheal could not move the turn counter", exc_info=True)
                finally:
                    self._wrote = False
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _count(self) -> int:
        return int.from_bytes(os.pread(self._fd, 8, 0).ljust(8, b"\0"), "little")

    def close(self) -> None:
        """Close the lock file (waits for a turn in progress); later turns raise."""
        with self._mutex:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                os.close(fd)
