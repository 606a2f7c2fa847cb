"""``autoheal label`` and ``autoheal tune``: the policy lab's operator surfaces.

``label`` records an operator's verdict on a stop (audited like ``force``, with the actor and
the reason; no gate reads it). ``tune`` scores a search space of policies on the labelled
history and writes the recommendation to a candidate file; it refuses to write the policy
file in force, which only an operator's edit changes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..analytics import AuditAnalytics
from ..analytics._replayer import details_of
from ..base._errors import InvalidInputError
from ..base._fs import write_atomic
from ..policy._config import PolicyConfig
from ..runtime._manager import AutoHealManager
from ._common import (
    EXIT_OK,
    Problem,
    Usage,
    command_name,
    emit,
    load_policy,
    need_log,
    need_writable,
    table,
)

__all__ = ["run_label", "run_shadow", "run_tune"]


def run_label(args: argparse.Namespace) -> int:
    """Record an operator's label of one transition."""
    from ..lab.labels import find_transition, record_label

    need_log(args.data_dir)
    need_writable(args.data_dir, "label", "records the label in the audit log")
    try:
        transition = find_transition(args.data_dir, args.transition)
    except InvalidInputError as exc:
        raise Problem(
            str(exc), f"`{command_name()} query labels --data-dir {args.data_dir}` lists them"
        ) from exc
    verdict = args.verdict == "true"
    with AutoHealManager(data_dir=args.data_dir) as manager:
        record_label(manager, transition, verdict, args.reason, args.actor)
    ref = f"{transition['writer']}:{transition['seq']}"
    line = (
        f"{transition['workflow_id']} {transition['previous_state']} -> {transition['state']}"
        f" at {transition['ts']:%Y-%m-%d %H:%M:%S} [{ref}] labelled {args.verdict}"
        f" (by {args.actor}: {args.reason})"
    )
    data = {"transition": ref, "workflow_id": transition["workflow_id"], "label": verdict}
    emit(args, {**data, "actor": args.actor, "reason": args.reason}, lambda: print(line))
    return EXIT_OK


def _policy_in_force(args: argparse.Namespace) -> PolicyConfig:
    """Return ``--policy``, else the policy the log's last session started with."""
    if args.policy is not None:
        return load_policy(args.policy)
    with AuditAnalytics(args.data_dir) as db:
        rows = db.sql(
            "SELECT details FROM audit_events WHERE kind = 'session' AND reason = 'session.start'"
            " ORDER BY ts DESC, seq DESC LIMIT 1"
        )
    policy = details_of(rows[0]["details"]).get("policy") if rows else None
    return PolicyConfig.from_dict(policy) if policy else PolicyConfig()


def _target(args: argparse.Namespace) -> Path:
    path: Path = args.write or args.data_dir / "tune" / "candidate-policy.json"
    if args.policy is not None and path.resolve() == args.policy.resolve():
        raise Usage(
            f"--write {path} is the policy in force; tune never changes it",
            "write the candidate elsewhere, review it, then copy it in by hand",
        )
    return path


def run_tune(args: argparse.Namespace) -> int:
    """Search the space on the labelled history; print and write the recommendation."""
    from ..lab.decoded import decode
    from ..lab.labels import label_rows
    from ..lab.objective import Weights
    from ..lab.space import Space, parse_dimension
    from ..lab.tune import tune
    from ..lab.tune_report import to_dict, to_html, to_lines

    if not args.space:
        raise Usage(
            "tune needs at least one --space FIELD=A..B or FIELD=A,B,C",
            "e.g. --space breakers.workflow.failure_threshold=5..20",
        )
    if args.samples < 1 or (args.workers is not None and args.workers < 1):
        raise Usage("--samples and --workers must be at least 1")
    for name in ("release_seconds", "clean_seconds"):
        if not 0 <= getattr(args, name) <= 10 * 365.25 * 86_400:
            raise Usage(f"--{name.replace('_', '-')} must be from 0 to ten years")
    need_log(args.data_dir)
    target = _target(args)
    base = _policy_in_force(args)
    try:
        weights = Weights.parse(args.weights)
        space = Space(base, tuple(parse_dimension(s, base) for s in args.space))
        labels = label_rows(args.data_dir, args.release_seconds, args.clean_seconds)
        log = decode(args.data_dir)
        result = tune(
            log,
            labels,
            space,
            method=args.search,
            samples=args.samples,
            seed=args.seed,
            weights=weights,
            workers=args.workers,
        )
    except InvalidInputError as exc:
        raise Usage(str(exc), "fix the --space, --weights or --policy value named") from exc
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, json.dumps(result.best.policy.to_dict(), indent=2) + "\n")
        if args.out is not None:
            write_atomic(args.out, to_html(result, str(target)))
    except OSError as exc:
        raise Problem(
            f"could not write {exc.filename or target}: {exc.strerror or exc}",
            "pass --write (and --out) a path in a writable folder",
        ) from exc

    def human() -> None:
        lines = to_lines(result, str(target))
        print("\n".join(lines[:2]))
        print("Pareto front (missed, false stops, mean delay, blocked steps):")
        table(to_dict(result)["pareto"])
        print("\n".join(lines[2:]))
        if args.out is not None:
            print(f"report written to {args.out}")

    emit(args, to_dict(result, str(target)), human)
    return EXIT_OK


def run_shadow(args: argparse.Namespace) -> int:
    """Compare the shadow policy's decisions with the live ones, and with the labels."""
    from ..lab.objective import Weights
    from ..lab.shadow_report import shadow_report

    need_log(args.data_dir)
    if not (args.data_dir / "shadow").is_dir():
        raise Problem(
            f"no shadow log in {args.data_dir}",
            "add a ShadowSink(policy, data_dir) to the manager (see README: Shadow policies)",
        )
    try:
        weights = Weights.parse(args.weights)
    except InvalidInputError as exc:
        raise Usage(str(exc)) from exc
    data = shadow_report(args.data_dir, weights)

    def human() -> None:
        print(f"{data['gates_judged']:,} gates judged by the shadow")
        table(data["differences"] or [{"difference": "none"}])
        for name in ("live", "shadow"):
            figures = ", ".join(f"{k} {v}" for k, v in data[name].items())
            print(f"{name}: {figures}")
        if data["labelled_stops"]:
            print("per labelled stop (when each stopped the workflow; empty: it did not):")
            table(data["labelled_stops"])

    emit(args, data, human)
    return EXIT_OK
