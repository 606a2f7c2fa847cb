"""One set of breakers for every executor host, on Redis (extra ``[fleet]``).

Enable it in the policy (``"fleet": {"enabled": true, "url": "redis://...", "host_id": ...}``)
and every manager with that policy becomes a host of one fleet: the workflow windows, the
global window (with a quorum of ``min_hosts``), quarantines, pauses, operator moves and the
half-open probe are fleet-wide, decided atomically in Redis, and so is a rollback (each host
with a versioned store restores its own known-good set); step streaks stay per host. The
hooks never wait on Redis (see :class:`FleetLink`); with Redis unreachable a host falls back
to its own breakers, visibly, and catches up on reconnect.

:class:`FleetStore` is the client the link and the ``autoheal fleet`` / ``--fleet`` commands
use.
"""

from __future__ import annotations

from ._link import FleetLink
from ._store import FleetError, FleetRefusal, FleetStore

__all__ = ["FleetError", "FleetLink", "FleetRefusal", "FleetStore"]
