"""Operator acts that only record: a label of a recorded stop, a pinned time range.

:class:`OperatorRecords` gives :class:`~autoheal_otel.runtime._manager.AutoHealManager` the
acts whose only effect on the machine is their audit record (``autoheal label``, ``autoheal
pin``): each is checked like every other input (the field and value named) and recorded
through the one input path, in decision order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..base._errors import InvalidInputError
from ..base._models import check_id, check_text
from ..core._machine import Machine
from ..disk._pins import Pin, add_pin, remove_pin
from ..semconv import Reason
from ._build import Parts

__all__ = ["OperatorRecords"]


class OperatorRecords:
    """Labels and pins (see the module)."""

    _machine: Machine
    _parts: Parts
    _decide: Callable[..., Any]

    def label_transition(
        self, workflow_id: str, details: Mapping[str, Any], verdict: bool, reason: str, actor: str
    ) -> None:
        """Record an operator's label of a recorded stop (``autoheal label``; the lab reads it).

        ``details`` names the transition (its writer and seq). No gate or rule reads a label.

        Raises:
            InvalidInputError: an argument is unusable (the field and value are named).
        """
        check_id("workflow_id", workflow_id)
        check_text(reason=reason, actor=actor)
        if not isinstance(verdict, bool):
            raise InvalidInputError("verdict", verdict, "must be true or false")
        if not isinstance(details, Mapping) or not all(isinstance(k, str) for k in details):
            raise InvalidInputError("details", details, "must be a mapping with text keys")
        try:
            json.dumps(dict(details))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError("details", details, f"must be JSON-ready ({exc})") from exc
        feed = self._machine.label
        self._decide(
            None, "label", workflow_id, None, feed, workflow_id, details, verdict, reason, actor
        )

    def pin_range(self, start: datetime, end: datetime, reason: str, actor: str) -> Pin:
        """Keep ``[start, end]`` of the audit log from retention (``autoheal pin add``).

        The pin is written to the data directory's ``pins.json`` first, then recorded
        (``retention.pinned``). Returns the pin, with its id.

        Raises:
            InvalidInputError: no data directory, an empty or reversed range, too many pins,
                or unusable operator text.
            PinsError: ``pins.json`` cannot be read.
        """
        check_text(reason=reason, actor=actor)
        pin = add_pin(self._pins_dir(), start, end, reason, actor, self._parts.clock.now())
        self._record_pin(Reason.RETENTION_PINNED, pin.to_dict())
        return pin

    def unpin(self, pin_id: str, reason: str, actor: str) -> Pin:
        """Remove the pin ``pin_id`` (``autoheal pin remove``), recorded
        (``retention.unpinned``) with who removed it and why. Returns the pin removed.

        Raises:
            InvalidInputError: no data directory, no pin with that id, or unusable text.
            PinsError: ``pins.json`` cannot be read.
        """
        check_text(reason=reason, actor=actor)
        found = remove_pin(self._pins_dir(), pin_id)
        record = found.to_dict() | {"reason": reason, "actor": actor, "pin_reason": found.reason}
        self._record_pin(Reason.RETENTION_UNPINNED, record)
        return found

    def _record_pin(self, reason: Reason, record: dict[str, Any]) -> None:
        feed = self._machine.record_pin
        self._decide(None, "pin", None, None, feed, reason.value, record)

    def _pins_dir(self) -> Path:
        data_dir = self._parts.data_dir
        if data_dir is None:
            raise InvalidInputError("data_dir", None, "a pin needs a data directory")
        return Path(data_dir)
