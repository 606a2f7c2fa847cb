"""``autoheal pin``: keep a range of time (an incident under investigation) from retention.

``pin add --from T --to T --reason R [--actor A]`` pins a range, ``pin list`` lists the pins,
``pin remove ID --reason R`` removes one; each add and remove is recorded in the audit log
with the actor and the reason, like every operator act. Times are ISO 8601; one without a
zone is UTC. A bad command line (a missing or unreadable time, a reversed range, an unknown
id) exits 2 with one line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import UTC, datetime

from ..base._errors import InvalidInputError
from ..disk._pins import Pin, PinsError, load_pins
from ..runtime._manager import AutoHealManager
from ._common import EXIT_OK, Problem, Usage, command_name, emit, need_log, need_writable, table

__all__ = ["add_pin_command", "run_pin"]

Command = Callable[..., argparse.ArgumentParser]


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an ISO 8601 time such as 2026-03-01T14:00 (UTC unless it says), not {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def add_pin_command(command: Command, text: Callable[[str], str]) -> None:
    """Add ``pin`` through the parser's ``command`` helper."""
    pin = command("pin", "keep a range of time from retention (add, list, remove); audited")
    pin.add_argument("pin_command", choices=["add", "list", "remove"])
    pin.add_argument("id", nargs="?", help="the pin to remove (as `autoheal pin list` shows)")
    pin.add_argument("--from", dest="start", type=_instant, metavar="TIME")
    pin.add_argument("--to", dest="end", type=_instant, metavar="TIME")
    pin.add_argument("--reason", type=text)
    pin.add_argument("--actor", default=os.environ.get("USER", "operator"), type=text)


def run_pin(args: argparse.Namespace) -> int:
    """Add, list or remove a pin."""
    need_log(args.data_dir)
    if args.pin_command == "list":
        return _list(args)
    if args.reason is None:
        raise Usage(f"pin {args.pin_command} needs --reason", "say why, for the audit log")
    if args.pin_command == "add":
        if args.start is None or args.end is None:
            raise Usage("pin add needs --from and --to", "e.g. --from 2026-03-01T14:00 --to …")
        if args.id is not None:
            raise Usage(f"pin add takes no id (got {args.id!r})", "the id is chosen for you")
        if args.end < args.start:
            raise Usage(f"--to {args.end.isoformat()} is before --from {args.start.isoformat()}")
    elif args.id is None:
        raise Usage("pin remove needs the pin's id", f"`{command_name()} pin list` shows them")
    need_writable(args.data_dir, "pin", "records the pin in the audit log")
    try:
        known = {p.id for p in load_pins(args.data_dir)}
    except PinsError as exc:
        raise Problem(str(exc)) from exc
    if args.pin_command == "remove" and args.id not in known:
        raise Usage(f"{args.id!r} is not a pin of {args.data_dir}", f"`{command_name()} pin list`")
    try:
        with AutoHealManager(data_dir=args.data_dir) as manager:
            if args.pin_command == "add":
                pin = manager.pin_range(args.start, args.end, args.reason, args.actor)
            else:
                pin = manager.unpin(str(args.id), args.reason, args.actor)
    except InvalidInputError as exc:
        raise Usage(str(exc)) from exc
    verb = "pinned" if args.pin_command == "add" else "unpinned"
    line = f"{verb} {pin.id}: {pin.start.isoformat()} .. {pin.end.isoformat()} ({pin.reason})"
    emit(args, {"action": verb, **pin.to_dict()}, lambda: print(line))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    try:
        pins: list[Pin] = load_pins(args.data_dir)
    except PinsError as exc:
        raise Problem(str(exc)) from exc
    rows = [p.to_dict() for p in pins]

    def human() -> None:
        if not rows:
            print(f"no pins in {args.data_dir}: retention deletes by keep_days and the budget")
        else:
            table(rows, ["id", "start", "end", "reason", "actor", "created"])

    emit(args, rows, human)
    return EXIT_OK
