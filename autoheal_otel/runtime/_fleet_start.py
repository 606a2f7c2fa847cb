"""Start the fleet link of a manager whose policy enables it (redis is imported only here).

Kept apart from the facade so that a manager with the fleet off never imports
:mod:`autoheal_otel.fleet` (nor redis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..base._errors import InvalidInputError
from ..policy._fleet import FleetPolicy
from ._publisher import Publisher

if TYPE_CHECKING:
    import threading

    from ..core._machine import Machine
    from ..fleet import FleetLink

__all__ = ["build_fleet"]


def build_fleet(
    policy: FleetPolicy,
    publisher: Publisher,
    *,
    machine: Machine,
    decide: Callable[..., Any],
    lock: threading.Lock,
    monotonic: Callable[[], float],
    meter: Any,
    carry_out: Callable[[Any], None] | None = None,
) -> FleetLink:
    """Build the link and register it with ``publisher`` as a sink; :meth:`FleetLink.start`
    starts its threads.

    The manager starts them after its session start is recorded: a replay resets the link at
    each session start, so the link's first record (``fleet.connected``) must come after it.

    ``carry_out`` runs the restore a fleet rollback asks of this host (the facade's artifact
    keeper, which does nothing without a versioned store).

    Raises:
        InvalidInputError: the ``[fleet]`` extra (redis) is not installed.
    """
    try:
        from ..fleet import FleetLink
    except ImportError as exc:
        raise InvalidInputError(
            "fleet.enabled", True, "needs the fleet extra: pip install 'autoheal-otel[fleet]'"
        ) from exc
    link = FleetLink(machine, decide, lock, monotonic, policy, meter, carry_out)
    publisher.add(link)
    return link
