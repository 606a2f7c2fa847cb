"""The listener's manager, opened on first use, deciding as one with the other robots.

`pabot` runs a suite in several robot processes on one data directory. Each process owns one
:class:`AutoHealManager`, opened with shared decisions (``audit.shared_decisions``): every
gate and result is a turn of the data directory's decision lock that first takes in what the
other processes decided since, so a workflow's windows count every process's failures before
the next step, and one process's quarantine holds the others at their next step.

With ``shared=off`` (a data directory on a file system without working ``flock``), the old way
remains: before each task the session looks at the other writers' segments (a directory
listing) and, when they changed, reopens its manager, whose warm restart folds every
process's records in; processes then share a workflow's window at task boundaries only.

Invariant: the session's own segments (every writer id it used) never trigger a reopen.
"""

from __future__ import annotations

from pathlib import Path

from ..policy._config import PolicyConfig
from ..runtime._manager import AutoHealManager
from ..sinks.jsonl import segment_paths

__all__ = ["ManagerSession"]


class ManagerSession:
    """Own one listener's :class:`AutoHealManager` and keep it in step with other processes.

    Args:
        policy: a policy file path (hot-reloaded), a PolicyConfig, or None for the defaults.
        data_dir: the shared data directory, or None for memory only.
        shared: decide as one with the other processes (False: reopen at task boundaries).
    """

    def __init__(
        self, policy: PolicyConfig | Path | None, data_dir: Path | None, shared: bool = True
    ) -> None:
        self._policy = policy
        self._data_dir = data_dir
        self._shared = shared
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
            self._manager = AutoHealManager(
                policy=self._policy, data_dir=self._data_dir, shared_decisions=self._shared
            )
            self._own_writers.add(self._manager.writer)
        return self._manager

    def refresh(self) -> bool:
        """Reopen the manager when another process wrote to the data directory since the last look.

        Returns:
            True when the manager was reopened.
        """
        if self._manager is None or self._data_dir is None or self._shared:
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
