"""``autoheal force``, ``resume`` and ``versions``: operator moves, each audited or refused.

A move that would change nothing (forcing a workflow into the state it is in) or invent
something (forcing a workflow id the log has never seen, without ``--create``) is refused
with exit 1 and nothing is written. Snapshots and rollbacks of the versioned artifacts leave
an activation record in the audit log, with the actor and the reason, through the manager.

A move is a command: every robot running on the directory applies it within a second and
acknowledges it in its own log. Each command waits (``--wait``, default 3 s; ``--no-wait``)
and says which running processes applied it, or that none is running; a running process
that did not acknowledge in time is a problem (exit 1).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Literal

from ..runtime._delivery import Delivery, DeliveryWatch
from ..runtime._manager import AutoHealManager
from ..versioning import VersionedStore, VersionSet
from ._common import (
    EXIT_OK,
    EXIT_PROBLEM,
    Problem,
    Usage,
    close_matches,
    command_name,
    emit,
    load_policy,
    need_log,
    need_writable,
    table,
)

__all__ = ["run_force", "run_resume", "run_versions"]

_SET_ID = re.compile(r"^s?0*(\d+)$")


def run_force(args: argparse.Namespace) -> int:
    """Move a workflow to a state by hand; refuse moves that change nothing or invent ids."""
    if args.fleet:
        from ._fleet import run_force_fleet

        return run_force_fleet(args)
    if not args.create:
        need_log(args.data_dir)
    if args.data_dir.is_file():
        raise Problem(f"--data-dir {args.data_dir} is a file, not a data directory")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    need_writable(args.data_dir, "force", "records the move in the audit log")
    policy = load_policy(args.policy)
    # Decide from a reader first: a refused move must leave the log untouched.
    reader = AutoHealManager(policy=policy, data_dir=args.data_dir, read_only=True)
    try:
        known = reader.get_status_report().workflows
    finally:
        reader.close()
    current = known.get(args.workflow)
    if current is None and not args.create:
        raise Problem(
            f"no workflow {args.workflow!r} in {args.data_dir}'s audit log"
            f"{close_matches(args.workflow, known)}",
            "pass --create to start tracking a new workflow in that state",
        )
    if current is not None and current.state.value == args.state:
        raise Problem(
            f"{args.workflow} is already {args.state} (since {current.since:%Y-%m-%d %H:%M:%S}"
            f" UTC: {current.reason}); nothing recorded",
            f"`{command_name()} status --data-dir {args.data_dir}` shows every state",
        )
    store = VersionedStore.open(args.data_dir) if args.state == "rollback" else None
    watch = DeliveryWatch(args.data_dir)
    with AutoHealManager(policy=policy, data_dir=args.data_dir, store=store) as manager:
        info = manager.force_transition(
            args.workflow, args.state, reason=args.reason, actor=args.actor
        )
    delivery = _deliver(args, watch, manager.writer)
    line = (
        f"{info.workflow_id}: {info.previous_state} -> {info.state.value} "
        f"(by {info.actor}: {info.reason})"
    )
    return _report(args, json.loads(info.to_json()), line, delivery)


def run_resume(args: argparse.Namespace) -> int:
    """Release every PAUSED workflow and lift the global pause (audited, acknowledged)."""
    need_log(args.data_dir)
    need_writable(args.data_dir, "resume", "records the move in the audit log")
    policy = load_policy(args.policy)
    reader = AutoHealManager(policy=policy, data_dir=args.data_dir, read_only=True)
    try:
        report = reader.get_status_report()
    finally:
        reader.close()
    paused = [w for w, s in report.workflows.items() if s.state.value == "paused"]
    if not paused and not report.global_.paused:
        raise Problem(
            f"nothing is paused in {args.data_dir}; nothing recorded",
            f"`{command_name()} status --data-dir {args.data_dir}` shows every state",
        )
    watch = DeliveryWatch(args.data_dir)
    with AutoHealManager(policy=policy, data_dir=args.data_dir) as manager:
        released = manager.resume_all(args.reason, actor=args.actor, state=args.state)
    delivery = _deliver(args, watch, manager.writer)
    line = f"resumed {len(released)} paused workflow(s) to {args.state}: " + (
        ", ".join(released) or "(the global pause only)"
    )
    return _report(args, {"released": released, "state": args.state}, line, delivery)


def _deliver(args: argparse.Namespace, watch: DeliveryWatch, writer: str) -> Delivery | None:
    """Wait for the running processes' acknowledgements (None with ``--no-wait``)."""
    if args.no_wait:
        return None
    return watch.wait(writer, args.wait)


def _report(
    args: argparse.Namespace, data: dict[str, Any], line: str, delivery: Delivery | None
) -> int:
    """Print what was recorded and who applied it; exit 1 when a running process did not."""
    if delivery is not None:
        data["delivery"] = delivery.to_dict()

    def human() -> None:
        print(line)
        if delivery is not None:
            print(f"  {delivery.describe()}")

    emit(args, data, human)
    if delivery is not None and not delivery.complete:
        if not args.json:
            print(
                f"{command_name()}: the move is recorded, but {', '.join(delivery.missing)} did"
                f" not acknowledge it within {args.wait:g} s; check that process (is it hung?)",
                file=sys.stderr,
            )
        return EXIT_PROBLEM
    return EXIT_OK


def _target(text: str) -> int | Literal["known_good", "previous"]:
    """Return the set id in ``s000002``/``2`` form, or ``known_good``/``previous``."""
    if text == "known_good":
        return "known_good"
    if text == "previous":
        return "previous"
    match = _SET_ID.match(text.strip())
    if match is None:
        raise Usage(
            f"--to must be a set id (as `versions list` prints it, e.g. s000002), "
            f"known_good or previous, but was {text!r}"
        )
    return int(match.group(1))


def _open_store(args: argparse.Namespace, read_only: bool) -> VersionedStore:
    if not (args.data_dir / "versions" / "components.json").is_file():
        raise Problem(
            f"{args.data_dir} has no versioned artifacts",
            f"pass --data-dir (or run `{command_name()} demo` to make one)",
        )
    return VersionedStore.open(args.data_dir, read_only=read_only)


def _audit_activation(
    args: argparse.Namespace, vset: VersionSet, reason: str, watch: DeliveryWatch
) -> Delivery | None:
    """Record the newly active set in the audit log, through the manager (the one writer)."""
    with AutoHealManager(data_dir=args.data_dir) as manager:
        manager.activate_artifact_version(vset.label, reason=reason, actor=args.actor)
    return _deliver(args, watch, manager.writer)


def run_versions(args: argparse.Namespace) -> int:
    """List, snapshot, roll back or verify the versioned artifacts."""
    writes = args.action in ("snapshot", "rollback")
    if writes and args.reason is None:  # the same rule as force: a recorded move says why
        raise Usage(
            f"versions {args.action} needs --reason (it is recorded with the move)",
            f'e.g. `{command_name()} versions {args.action} --reason "bad model"`',
        )
    to = _target(args.to) if args.action == "rollback" else None
    if writes:
        _open_store(args, read_only=True)
        need_writable(args.data_dir, f"versions {args.action}", "writes the artifacts and the log")
    store = _open_store(args, read_only=not writes)
    if args.action == "list":
        return _list(args, store)
    if args.action == "snapshot":
        watch = DeliveryWatch(args.data_dir)
        vset = store.snapshot(args.reason)
        delivery = _audit_activation(args, vset, f"snapshot {vset.label}: {args.reason}", watch)
        line = f"snapshot {vset.label} is active (recorded in the audit log)"
        return _report(args, json.loads(vset.model_dump_json()), line, delivery)
    if args.action == "rollback":
        assert to is not None
        watch = DeliveryWatch(args.data_dir)
        vset = store.rollback(to, reason=args.reason)
        reason = f"rolled back to {vset.label}: {args.reason}"
        delivery = _audit_activation(args, vset, reason, watch)
        line = f"rolled back: {vset.label} is active (recorded in the audit log)"
        return _report(args, json.loads(vset.model_dump_json()), line, delivery)
    report = store.verify()
    emit(
        args,
        {"set": report.set_id, "checked": report.checked, "problems": report.problems},
        lambda: print(
            f"set s{report.set_id:06d}: {report.checked} files checked, "
            f"{'all match' if report.ok else str(len(report.problems)) + ' problems'}"
        ),
    )
    for problem in report.problems if not args.json else []:
        print(f"  {problem['component']}/{problem['file']}: {problem['problem']}")
    return EXIT_OK if report.ok else EXIT_PROBLEM


def _list(args: argparse.Namespace, store: VersionedStore) -> int:
    current, known = store.current(), store.known_good()
    sets: list[dict[str, Any]] = [
        {
            "set": s.label,
            "created_at": s.created_at,
            "reason": s.reason,
            "active": current is not None and s.id == current.id,
            "known_good": known is not None and s.id == known.id,
            "components": {k: v.version for k, v in s.components.items()},
        }
        for s in store.list()
    ]
    emit(
        args,
        sets,
        lambda: table(
            [
                {
                    **s,
                    "components": ", ".join(f"{k}=v{v:02d}" for k, v in s["components"].items()),
                }
                for s in sets
            ]
        ),
    )
    return EXIT_OK
