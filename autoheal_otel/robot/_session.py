"""The listener's manager, opened on first use and reopened when other processes wrote.

`pabot` runs a suite in several robot processes on one data directory. Each process owns one
:class:`AutoHealManager`, and a manager counts only its own results in a workflow's window
once it has started. So before each task the session looks at the other writers' audit
segments (names and sizes: a directory listing, no parsing); when they changed, it closes its
manager and opens a new one on the same directory, whose warm restart folds every process's
records into the windows and states. A single robot process never sees foreign segments
change, so it never pays for a reopen.

Invariant: the session's own segments (every writer id it used) never trigger a reopen.
"""

from __future__ import annotations

from pathlib import Path

from .._manager import AutoHealManager
from .._policy import PolicyConfig
from ..sinks.jsonl import segment_paths

__all__ = ["ManagerSession"]


class ManagerSession:
    """Own one listener's :class:`AutoHealManager` and keep it in step with other processes.

    Args:
        policy: a policy file path (hot-reloaded), a PolicyConfig, or None for the defaults.
        data_dir: the shared data directory, or None for memory only.
    """

    def __init__(self, policy: PolicyConfig | Path | None, data_dir: Path | None) -> None:
        self._policy = policy
        self._data_dir = data_dir
        self._manager: AutoHealManager | None = None
        self._own_writers: set[str] = set()
        self._seen: tuple[tuple[str, int], ...] = ()
        #: How many times the manager was reopened to take in other processes' records.
        self.reopened = 0

    @property
    def manager(self) -> AutoHealManager:
        """Return the manager, opening it (and warm-restarting from the log) on first use."""
        if self._manager is None:
            self._seen = self._foreign_segments()
            self._manager = AutoHealManager(policy=self._policy, data_dir=self._data_dir)
            self._own_writers.add(self._manager.writer)
        return self._manager

    def refresh(self) -> bool:
        """Reopen the manager when another process wrote to the data directory since the last look.

        Returns:
            True when the manager was reopened.
        """
        if self._manager is None or self._data_dir is None:
            return False
        if self._foreign_segments() == self._seen:
            return False
        self._manager.close()
        self._manager = None
        _ = self.manager
        self.reopened += 1
        return True

    def close(self) -> None:
        """Flush and close the manager, if it was opened."""
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    def _foreign_segments(self) -> tuple[tuple[str, int], ...]:
        if self._data_dir is None:
            return ()
        found = []
        for path in segment_paths(self._data_dir / "audit"):
            if any(f"-{writer}-" in path.name for writer in self._own_writers):
                continue
            try:
                found.append((path.name, path.stat().st_size))
            except FileNotFoundError:  # compacted away between the listing and the stat
                continue
        return tuple(found)
