"""Keep the policy's shadow running, for a manager on a writable data directory.

The shadow's process and its keeper (:mod:`~.shadow`) are imported only when a policy names
a shadow, so a manager whose policy names none never loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core._ledger import LedgerView
from ..policy._config import PolicyConfig
from ._publisher import Publisher

__all__ = ["Shadows"]


class Shadows:
    """Keep the policy's shadow running: started now when the policy names one (the lab's
    process is imported only then), swapped or stopped at a reload. The shadow file was read
    with the policy (a bad one failed the start); a shadow process that cannot start is
    logged, and the manager runs without it."""

    def __init__(self, publisher: Publisher, data_dir: Path, writer: str, view: LedgerView):
        self._publisher = publisher
        self._data_dir = data_dir
        self._writer = writer
        self._view = view
        self._keeper: Any = None

    def on_policy(self, policy: PolicyConfig) -> None:
        """Start, swap or stop the shadow for the policy now in force."""
        if self._keeper is None:
            if policy.shadow is None:
                return
            from .shadow import ShadowKeeper

            view = self._view
            self._keeper = ShadowKeeper(
                self._publisher, self._data_dir, self._writer, lambda: int(view.seq)
            )
        self._keeper.apply(policy)

    def running(self) -> bool:
        """Whether a shadow runs now."""
        return self._keeper is not None and self._keeper.sink is not None

    def status(self) -> dict[str, Any] | None:
        """The running shadow's name, process, health and counts (None: none runs)."""
        return self._keeper.status() if self._keeper is not None else None

    def sync(self) -> bool:
        """Wait for stopped shadows to end and the running one to catch up (flush first)."""
        return bool(self._keeper is not None and self._keeper.sync())
