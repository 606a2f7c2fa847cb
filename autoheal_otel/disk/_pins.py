"""Pinned time ranges: an incident under investigation that audit retention must keep.

An operator pins ``[from, to]`` (``autoheal pin add``) with a reason and an actor; retention
(:mod:`._audit_retention`) deletes no compacted file overlapping a pin, nor anything newer
(the kept log has no holes). Pins live in ``pins.json`` inside the data directory (written
atomically, so they survive a restart and a crash), and each add or remove is an operator act
recorded in the audit log (kind ``retention``, reason ``retention.pinned`` or
``retention.unpinned``, with the actor, the reason and the range).

Invariants: the file is written before the record (a crash between them leaves a pin in
force without its record, never a recorded pin that retention ignores); a file that cannot
be read (corrupt, foreign) makes retention delete nothing of the audit log (:class:`PinsError`
is raised, the run is blocked and says why); times are aware UTC.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..base._errors import InvalidInputError
from ..base._fs import read_regular_file, write_atomic

__all__ = ["PINS_FILE", "Pin", "PinsError", "add_pin", "load_pins", "overlaps", "remove_pin"]

PINS_FILE = "pins.json"
#: The most pins a directory holds (each one is checked against every file retention plans).
MAX_PINS = 1000
_MAX_BYTES = 1024 * 1024


class PinsError(Exception):
    """``pins.json`` cannot be read: retention keeps the whole audit log until it can."""


@dataclass(frozen=True, slots=True)
class Pin:
    """One pinned range of time."""

    id: str
    start: datetime
    end: datetime
    reason: str
    actor: str
    created: datetime

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def overlaps(pin: Pin, first: datetime, last: datetime) -> bool:
    """Return whether records from ``first`` to ``last`` (aware or naive UTC) touch ``pin``."""
    return _utc(first) <= pin.end and _utc(last) >= pin.start


def load_pins(data_dir: Path) -> list[Pin]:
    """Return the pins of ``data_dir`` (none when the file does not exist).

    Raises:
        PinsError: the file exists but is not a list of pins this release reads.
    """
    path = Path(data_dir) / PINS_FILE
    if not path.exists() and not path.is_symlink():
        return []
    try:
        data = json.loads(read_regular_file(path, _MAX_BYTES))
        return [
            Pin(
                id=str(p["id"]),
                start=_utc(datetime.fromisoformat(p["start"])),
                end=_utc(datetime.fromisoformat(p["end"])),
                reason=str(p["reason"]),
                actor=str(p["actor"]),
                created=_utc(datetime.fromisoformat(p["created"])),
            )
            for p in data["pins"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PinsError(f"{path} cannot be read ({exc}): fix or remove it") from exc


def _write(data_dir: Path, pins: list[Pin]) -> None:
    text = json.dumps({"pins": [p.to_dict() for p in pins]}, indent=2)
    write_atomic(Path(data_dir) / PINS_FILE, text.encode())


def add_pin(
    data_dir: Path, start: datetime, end: datetime, reason: str, actor: str, created: datetime
) -> Pin:
    """Pin ``[start, end]`` in ``data_dir`` (written before the act is recorded); return it.

    Raises:
        InvalidInputError: the range is empty or reversed, or the directory holds too many.
        PinsError: ``pins.json`` cannot be read.
    """
    start, end = _utc(start), _utc(end)
    if end < start:
        raise InvalidInputError("to", end.isoformat(), f"must not be before --from {start}")
    pins = load_pins(data_dir)
    if len(pins) >= MAX_PINS:
        raise InvalidInputError("pins", len(pins), f"at most {MAX_PINS}; remove old ones first")
    pin = Pin(f"p-{created:%Y%m%d}-{secrets.token_hex(3)}", start, end, reason, actor, created)
    _write(data_dir, [*pins, pin])
    return pin


def remove_pin(data_dir: Path, pin_id: str) -> Pin:
    """Remove the pin ``pin_id`` from ``data_dir``; return it.

    Raises:
        InvalidInputError: no pin has that id.
        PinsError: ``pins.json`` cannot be read.
    """
    pins = load_pins(data_dir)
    found = next((p for p in pins if p.id == pin_id), None)
    if found is None:
        known = ", ".join(p.id for p in pins[:10]) or "none"
        raise InvalidInputError("pin", pin_id, f"is not a pin of {data_dir} (pins: {known})")
    _write(data_dir, [p for p in pins if p.id != pin_id])
    return found
