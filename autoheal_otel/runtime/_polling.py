"""Periodic work outside the lock: policy hot reload, and the shared log on a thread of its own.

The :class:`Periodic` collaborator runs at most every ``check_interval_seconds`` /
``sync_interval_seconds`` of the injected clock and turns what it finds into machine inputs
(a policy change or rejection, the shared global figures), fed through
the manager's one input path. The policy check (a ``stat``) runs on the hook's thread when due;
the shared-log sync (a DuckDB query over every writer's log) never does: the hook only wakes
the sync thread, which feeds what it finds when the query is done. Nothing here ever raises
into an executor's hook.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..base._errors import PolicyError
from ..base._models import ExecutionState
from ..core._machine import Machine
from ..policy._config import PolicyConfig
from ._policy_watch import PolicyWatcher

__all__ = ["Periodic"]

_log = logging.getLogger("autoheal_otel")


class Periodic:
    """Poll the policy file and the shared audit log when due, and feed the machine."""

    def __init__(
        self,
        machine: Machine,
        decide: Callable[..., Any],
        watcher: PolicyWatcher | None,
        data_dir: Path | None,
        anchor: tuple[float, datetime],
        record_operation: Callable[[str, float], None],
        monotonic: Callable[[], float],
    ) -> None:
        self._machine = machine
        self._decide = decide
        self.watcher = watcher
        self._data_dir = data_dir
        self._record_operation = record_operation
        self._monotonic = monotonic
        now = anchor[0]
        self._analytics: Any = None
        #: Why the last policy edit was rejected (None after a good one).
        self.last_error: PolicyError | None = None
        self.sync_at = math.inf
        self._wall: Callable[[], datetime] | None = None
        self._wanted = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._closing = False
        self._thread: threading.Thread | None = None
        #: Called with each policy put in force (the shadow keeper), after it is recorded.
        self.on_policy: Callable[[PolicyConfig], None] | None = None
        self._schedule(now)
        #: When the next check is due (the hooks compare against it, nothing more).
        self.due = self._next_due()

    def _schedule(self, now: float) -> None:
        gp = self._machine.policy.breakers.global_
        if self._data_dir is not None and gp.shared_across_processes:
            self.sync_at = min(self.sync_at, now + gp.sync_interval_seconds)
        else:
            self.sync_at = math.inf

    @property
    def syncs(self) -> bool:
        """Whether this manager syncs the global figures of every writer on its directory."""
        return (
            self._data_dir is not None
            and self._machine.policy.breakers.global_.shared_across_processes
        )

    def _next_due(self) -> float:
        return min(self.watcher.next_check if self.watcher else math.inf, self.sync_at)

    def poll(self, now: float, wall: Callable[[], datetime]) -> None:
        """Run the checks that are due: the shared global scope, then the policy file."""
        if now >= self.sync_at:
            self.sync_at = now + self._machine.policy.breakers.global_.sync_interval_seconds
            self._request_sync(wall)
        watcher = self.watcher
        if watcher is not None and now >= watcher.next_check:
            change = watcher.poll(now)
            if change is not None and change.policy is not None:
                self.apply_policy(change.policy, now, str(watcher.path))
            elif change is not None and change.error is not None:
                error = self.last_error = change.error
                _log.warning("autoheal policy rejected, keeping the last good one: %s", error)
                self._decide(
                    None,
                    "policy",
                    None,
                    None,
                    self._machine.reject_policy,
                    str(error),
                    error.field,
                    error.source,
                )
        self.due = self._next_due()

    def apply_policy(self, policy: PolicyConfig, now: float, source: str) -> None:
        """Put ``policy`` in force (recorded) and follow its polling intervals."""
        self.last_error = None
        self._decide(None, "policy", None, None, self._machine.change_policy, policy, source)
        if self.on_policy is not None:
            try:
                self.on_policy(policy)
            except Exception:  # contained: the shadow never reaches the hook that polled
                _log.exception("autoheal shadow could not follow the policy change")
        if self.watcher is not None:
            if policy.hot_reload.enabled:
                self.watcher.interval = policy.hot_reload.check_interval_seconds
            else:
                self.watcher.next_check = math.inf
        self._schedule(now)
        self.due = self._next_due()

    def _sync_global(self, wall: datetime) -> None:
        """Read the shared audit log: other processes' failures and global pauses.

        Counts every process's failures in the global window and follows a global pause
        another process recorded. (Operator moves do not wait for this: every manager follows
        them within a second, whatever the policy; see :mod:`~._follow`.)
        """
        from ..analytics import AuditAnalytics

        assert self._data_dir is not None
        if self._analytics is None:
            self._analytics = AuditAnalytics(self._data_dir)
        db = self._analytics
        started = self._monotonic()
        db.refresh()
        gp = self._machine.policy.breakers.global_
        rows = db.query(
            "global_window",
            as_of=wall,
            window_seconds=gp.window_seconds,
            triggers=[t.value for t in gp.counted_triggers],
        )
        count = sum(int(r["failures"]) for r in rows)
        state = db.query("global_state", as_of=wall)
        self._record_operation("query", self._monotonic() - started)
        paused = bool(state) and state[0]["state"] == ExecutionState.PAUSED.value
        self._decide(None, "sync", None, None, self._machine.shared_pause, count, paused)

    def _request_sync(self, wall: Callable[[], datetime]) -> None:
        """Wake the sync thread (started on first use); never waits for the query."""
        self._wall = wall
        self._idle.clear()
        self._wanted.set()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._sync_loop, name="autoheal-shared-sync", daemon=True
            )
            self._thread.start()

    def _sync_loop(self) -> None:
        while True:
            self._wanted.wait()  # allowed: the sync thread sleeps until a hook finds it due
            if self._closing:
                return
            self._wanted.clear()
            try:
                assert self._wall is not None
                self._sync_global(self._wall())
            except Exception:  # reading other processes' logs must never break the manager
                _log.exception("autoheal could not read the shared audit log")
            if not self._wanted.is_set():
                self._idle.set()

    def wait_synced(self, timeout: float) -> bool:
        """Wait until no shared-log sync is pending or running; return False on timeout."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Stop the sync thread and release the shared log's DuckDB connection."""
        self._closing = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._analytics is not None:
            self._analytics.close()
