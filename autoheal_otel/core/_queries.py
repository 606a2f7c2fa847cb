"""What collaborators may read of the machine: its state, its report, its checkpoint.

:class:`~._machine.Machine` takes these from :class:`Queries`. None of them changes the
state: the view is a read-only :class:`~._ledger.LedgerView` (call them under the manager's
lock), and the report and the checkpoint are built from it. Changes come only through the
machine's inputs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..base._errors import PolicyError
from ..policy._config import PolicyConfig
from . import _checkpoint
from ._ledger import Ledger, LedgerView
from ._report import PublishCounts, StatusReport, build_report

__all__ = ["Queries"]


class Queries:
    """The machine's reads (see the module)."""

    _ledger: Ledger

    @property
    def policy(self) -> PolicyConfig:
        """Return the policy in force."""
        return self._ledger.policy

    @property
    def view(self) -> LedgerView:
        """The machine's state, to read (under the manager's lock): the only way to see it
        from outside the core. Changes come only through the inputs."""
        return self._ledger

    def report(
        self,
        now: float,
        wall: datetime,
        last_policy_error: PolicyError | None,
        publisher: PublishCounts,
    ) -> StatusReport:
        """Return the status report as of ``now`` (:func:`~._report.build_report`)."""
        return build_report(self._ledger, now, wall, last_policy_error, publisher)

    def checkpoint(self, now: float, wall: datetime) -> dict[str, Any]:
        """Return what a checkpoint record holds, as of ``now`` (:func:`~._checkpoint.capture`)."""
        return _checkpoint.capture(self._ledger, now, wall)
