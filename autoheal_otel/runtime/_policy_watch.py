"""Hot reload of a policy file.

The watcher is polled from the hooks, at most once per ``check_interval_seconds`` of the
injected clock, outside the manager's lock. Invariants:

- a file that did not change (same mtime, size, inode, or same bytes) is never parsed twice;
- a valid change yields the new :class:`PolicyConfig`; an invalid one yields the error and the
  last good policy stays in force; the same bad content is reported once, not on every poll;
- nothing it does raises into the caller (a deleted or unreadable file is a reported error);
- nothing it does blocks the caller: a path that is not a regular file (a FIFO, a device) is
  refused from its ``stat`` without being opened, and the read itself never blocks
  (:func:`read_regular_file`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from ..base._errors import PolicyError
from ..base._fs import read_regular_file
from ..policy._config import PolicyConfig

__all__ = ["PolicyChange", "PolicyWatcher"]


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """The outcome of a poll that saw new content: a policy, or the error that kept the old."""

    policy: PolicyConfig | None
    error: PolicyError | None


class PolicyWatcher:
    """Detect and validate changes of one policy file."""

    def __init__(self, path: Path, interval: float, now: float) -> None:
        self.path = path
        self.interval = interval
        self.next_check = now + interval
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._digest = self._hash()

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)

    def _hash(self) -> str | None:
        try:
            return hashlib.sha256(read_regular_file(self.path)).hexdigest()
        except OSError:
            return None

    def poll(self, now: float) -> PolicyChange | None:
        """Check the file if the interval has passed; return a change, or None.

        Only one thread polls at a time; the others return None at once.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if now < self.next_check:
                return None
            self.next_check = now + self.interval
            signature = self._stat()
            if signature == self._signature:
                return None
            self._signature = signature
            if signature is None:
                error = PolicyError(
                    "cannot read policy: the file is missing; keeping the last good policy",
                    source=str(self.path),
                )
                self._digest = None
                return PolicyChange(None, error)
            if not stat.S_ISREG(signature[3]):
                self._digest = None
                return PolicyChange(
                    None,
                    PolicyError(
                        "cannot read policy: not a regular file; keeping the last good policy",
                        source=str(self.path),
                    ),
                )
            try:
                text = read_regular_file(self.path)
            except OSError as exc:
                return PolicyChange(
                    None, PolicyError(f"cannot read policy: {exc.strerror}", source=str(self.path))
                )
            digest = hashlib.sha256(text).hexdigest()
            if digest == self._digest:
                return None
            self._digest = digest
            try:
                policy = PolicyConfig.from_json(text, source=str(self.path))
                policy.resolve_shadow(self.path.parent)
            except PolicyError as exc:
                exc.source = str(self.path)
                return PolicyChange(None, exc)
            except Exception as exc:  # contained: an unreadable edit keeps the last good policy
                error = PolicyError(
                    f"cannot read policy ({type(exc).__name__}); keeping the last good policy",
                    source=str(self.path),
                )
                return PolicyChange(None, error)
            return PolicyChange(policy, None)
        finally:
            self._lock.release()
