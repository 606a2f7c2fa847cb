"""The integration protocol: an event sink that may bind to its manager."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..base._events import DecisionEvent

if TYPE_CHECKING:
    from ..runtime._manager import AutoHealManager

__all__ = ["Integration"]


@runtime_checkable
class Integration(Protocol):
    """An event sink with access to the manager it serves (``bind`` is called once)."""

    def bind(self, manager: AutoHealManager) -> None:
        """Remember the manager (to read status, policy, the data directory)."""
        ...

    def emit(self, event: DecisionEvent) -> None:
        """Handle one decision event (after the manager's lock)."""
        ...

    def flush(self) -> None:
        """Finish pending work."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...
