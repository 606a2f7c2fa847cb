"""The thread that records a checkpoint every ``audit.checkpoint_interval_seconds``.

A checkpoint (:mod:`~autoheal_otel.core._checkpoint`) is built under the machine's lock like
any input, through the manager's one input path, but never on a hook's thread: this thread
wakes every few seconds of real time, reads the manager's clock (a test's fake clock advances
it), and records one when it is due.

Invariant: at most one checkpoint per interval of the manager's clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..core import _checkpoint
from ..core._machine import Machine

__all__ = ["Checkpointer", "write_checkpoint"]

_log = logging.getLogger("autoheal_otel")

#: Seconds of real time between two looks at the clock.
LOOK_SECONDS = 5.0


def write_checkpoint(decide: Callable[..., Any], machine: Machine) -> None:
    """Record a checkpoint through the manager's one input path (``decide``); log one too large."""
    skipped = decide(None, "checkpoint", None, None, machine.record_checkpoint)
    if skipped is not None:
        _log.warning("autoheal skipped a checkpoint of %d bytes (at most %d)", skipped,
                     _checkpoint.MAX_CHECKPOINT_BYTES)  # fmt: skip


class Checkpointer:
    """Record a checkpoint when one is due (see the module).

    Args:
        write: records one checkpoint (the manager's decide of the checkpoint input).
        monotonic: the manager's clock.
        interval: seconds of that clock between two checkpoints (read on every look).
    """

    def __init__(
        self,
        write: Callable[[], None],
        monotonic: Callable[[], float],
        interval: Callable[[], float],
    ) -> None:
        self._write = write
        self._monotonic = monotonic
        self._interval = interval
        self.due = monotonic() + interval()
        #: Checkpoints recorded by this thread.
        self.written = 0
        self._looking = threading.Lock()  # the thread and a direct look never both write
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="autoheal-checkpoint", daemon=True
            )
            self._thread.start()

    def look(self) -> bool:
        """Record a checkpoint if one is due now; return True when one was recorded."""
        with self._looking:
            now = self._monotonic()
            if now < self.due:
                return False
            self._write()
            self.written += 1
            self.due = now + self._interval()
            return True

    def _run(self) -> None:
        # allowed: this thread's own wait between looks; no hook ever waits here.
        while not self._stop.wait(LOOK_SECONDS):
            try:
                self.look()
            except Exception:  # a failed checkpoint is retried at the next look
                _log.exception("autoheal could not record a checkpoint")

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
