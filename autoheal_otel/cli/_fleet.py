"""``autoheal fleet status|resume`` and ``autoheal force --fleet``: the operator's view of a fleet.

They talk to the fleet's Redis (the ``fleet`` section of ``--policy``, or ``--url`` /
``--namespace``), never to a host's data directory: a move published here reaches every host
through the fleet's event stream, and each host records it in its own audit log with cause
``fleet``. Redis unreachable is a problem (exit 1), named in one line.
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

from ..base._models import ExecutionState
from ..policy._fleet import FleetPolicy, redact_url
from ._common import EXIT_OK, Problem, Usage, command_name, emit, load_policy, plural, table

__all__ = ["STALE_S", "run_fleet", "run_force_fleet"]

#: A host not seen for this long is marked stale (a live host ships at least every 0.5 s).
STALE_S = 10.0


def _policy(args: argparse.Namespace) -> FleetPolicy:
    fleet = load_policy(args.policy).fleet
    update: dict[str, Any] = {"timeout_seconds": 2.0}
    if getattr(args, "url", None):
        update["url"] = args.url
    if getattr(args, "namespace", None):
        update["namespace"] = args.namespace
    return FleetPolicy.model_validate({**fleet.model_dump(), **update})


def _store(args: argparse.Namespace) -> Any:
    try:
        from ..fleet import FleetStore
    except ImportError as exc:
        raise Problem(
            "the fleet commands need redis-py", "pip install 'autoheal-otel[fleet]'"
        ) from exc
    # An operator's moves are credited to the operator's CLI, never to a robot's host id
    # (the policy file may well be a robot's).
    policy = _policy(args)
    try:
        return FleetStore(policy, host=f"cli@{socket.gethostname()}"[:128])
    except ValueError as exc:  # redis-py's word for a URL it cannot use
        raise Usage(
            f"--url must be a redis:// or rediss:// URL, but was {redact_url(policy.url)!r}"
            f" ({exc})",
            "e.g. --url redis://127.0.0.1:6379/0",
        ) from exc


def _call(args: argparse.Namespace, what: str, fn: Any) -> Any:
    from ..fleet import FleetError, FleetRefusal
    from ..fleet._surface import describe

    try:
        return fn()
    except FleetRefusal as exc:
        raise Problem(
            str(exc),
            "pass --create to start tracking a new workflow in that state"
            if "runs a workflow" in str(exc)
            else f"`{command_name()} fleet status` shows the fleet's states",
        ) from exc
    except FleetError as exc:
        policy = _policy(args)
        url = redact_url(policy.url)
        why = describe(exc, policy)
        if why.startswith("redis: "):  # no refusal: Redis is away
            raise Problem(
                f"cannot {what}: Redis at {url} did not answer ({why[7:]})",
                "check fleet.url in --policy (or pass --url) and that Redis runs",
            ) from exc
        raise Problem(f"cannot {what} at {url}: {why}") from exc


def run_force_fleet(args: argparse.Namespace) -> int:
    """Publish an operator move of one workflow to every host of the fleet."""
    target = ExecutionState(args.state)
    store = _store(args)

    def publish() -> str:
        return str(store.move(args.workflow, target, args.actor, args.reason, create=args.create))

    try:
        event = _call(args, "publish the move", publish)
    finally:
        store.close()
    out = {"workflow": args.workflow, "state": target.value, "fleet_event": event}
    emit(
        args,
        out,
        lambda: print(
            f"{args.workflow} -> {target.value} on every host (fleet event {event}, "
            f"by {args.actor}: {args.reason})"
        ),
    )
    return EXIT_OK


def run_fleet(args: argparse.Namespace) -> int:
    """Show the fleet (hosts, windows, states) or resume it."""
    store = _store(args)
    try:
        if args.fleet_command == "resume":
            target = ExecutionState(args.state)
            event = _call(
                args, "resume the fleet", lambda: store.resume(target, args.actor, args.reason)
            )
            emit(
                args,
                {"fleet_event": event, "state": target.value},
                lambda: print(f"fleet resumed to {target.value} (fleet event {event})"),
            )
            return EXIT_OK
        status = _call(args, "read the fleet", store.status)
    finally:
        store.close()
    for host in status["hosts"].values():
        host["stale"] = host["last_seen_s"] > STALE_S
    if not status["hosts"] and not status["workflows"]:
        raise Problem(
            f"fleet namespace {status['namespace']!r} has no hosts and no workflows",
            "check --namespace (or fleet.namespace in --policy): no host has shipped there",
        )
    emit(args, status, lambda: _print_status(status))
    return EXIT_OK


def _print_status(status: dict[str, Any]) -> None:
    glob = status["global"]
    print(
        f"fleet {status['namespace']}: global {glob['state']}, "
        f"{plural(glob['window'], 'failure')} in the window from"
        f" {plural(glob['hosts_failing'], 'host')}"
    )
    hosts = [
        {"host": h, "last_seen_s": v["last_seen_s"], "stale": "STALE" if v["stale"] else ""}
        for h, v in status["hosts"].items()
    ]
    if hosts:
        table(hosts)
    else:
        print("no host has shipped yet")
    rows = [{"workflow": w, **v} for w, v in status["workflows"].items()]
    if rows:
        table(rows)
