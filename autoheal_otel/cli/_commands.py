"""The read-mostly commands: ``status``, ``replay``, ``what-if``, ``compact`` and ``policy``."""

from __future__ import annotations

import argparse
import json

from ..disk._usage import disk_line
from ..policy._config import PolicyConfig
from ._common import (
    EXIT_OK,
    EXIT_PROBLEM,
    emit,
    load_policy,
    need_log,
    need_writable,
    plural,
    progress,
    table,
)

__all__ = ["run_compact", "run_policy", "run_replay", "run_status", "run_what_if"]


def run_status(args: argparse.Namespace) -> int:
    """Print every workflow's state and the global health (reads the log, writes nothing)."""
    from ..runtime._manager import AutoHealManager

    need_log(args.data_dir)
    manager = AutoHealManager(
        policy=load_policy(args.policy), data_dir=args.data_dir, read_only=True
    )
    report = manager.get_status_report()

    def human() -> None:
        rows = [
            {
                "workflow": wid,
                "state": w.state.value,
                "since": w.since,
                "failures": f"{w.window.count}/{w.window.threshold}",
                "reason": w.reason,
            }
            for wid, w in sorted(report.workflows.items())
        ]
        table(rows)
        g = report.global_
        print(
            f"\nglobal health: {g.health}  (failures {g.window.count}/{g.window.threshold} in "
            f"{g.window.window_seconds:g} s, quarantined {g.quarantined_workflows}/"
            f"{g.quarantined_workflows_threshold}){'  PAUSED: ' + g.reason if g.paused else ''}"
        )
        if report.disk is not None:
            print(disk_line(report.disk))

    emit(args, json.loads(report.to_json()), human)
    return EXIT_OK


def run_replay(args: argparse.Namespace) -> int:
    """Replay the log; exit 1 unless every decision is reproduced."""
    from ..analytics.replay import replay

    need_log(args.data_dir)
    report = replay(args.data_dir, progress=progress("replay"))
    emit(
        args,
        report.to_dict(),
        lambda: print(
            f"{plural(report.records, 'record')} replayed:"
            f" {'every decision reproduced' if report.matches else 'MISMATCH'}"
            f" ({plural(report.gates, 'gate')}; transitions "
            + (", ".join(f"{n} to {s}" for s, n in sorted(report.replayed.items())) or "none")
            + f"; {plural(report.skipped_lines, 'bad line')} skipped)"
        ),
    )
    for m in report.mismatches[:10] if not args.json else []:
        print(f"  {m}")
    if report.unshared_writers and not args.json:
        names = ", ".join(" and ".join(pair) for pair in report.unshared_writers[:3])
        print(
            f"  note: {names} decided at the same time without shared decisions: each counted"
            " only its own records, and replay feeds them as one machine; set"
            " audit.shared_decisions (the Robot Framework listener does) for an exact replay"
        )
    return EXIT_OK if report.matches else EXIT_PROBLEM


def run_what_if(args: argparse.Namespace) -> int:
    """Replay the log with another policy and compare what it would have decided."""
    from ..analytics.replay import replay

    need_log(args.data_dir)
    policy = PolicyConfig.load(args.policy)
    report = replay(args.data_dir, policy=policy, progress=progress("what-if"))

    def human() -> None:
        states = sorted(set(report.recorded) | set(report.replayed))
        table(
            [
                {
                    "entered": s,
                    "recorded": report.recorded.get(s, 0),
                    "with this policy": report.replayed.get(s, 0),
                }
                for s in states
            ]
        )
        print(
            f"blocked steps: recorded {report.recorded_blocked_gates}, with this policy "
            f"{report.replayed_blocked_gates}"
        )
        if report.recorded_calibrations or report.replayed_calibrations:
            thresholds = ", ".join(f"{m} {t:g}" for m, t in report.method_thresholds.items())
            print(
                f"calibration changes: recorded {len(report.recorded_calibrations)}, with this"
                f" policy {len(report.replayed_calibrations)} (thresholds at the end:"
                f" {thresholds or 'none'})"
            )

    emit(args, report.to_dict(), human)
    return EXIT_OK


def run_compact(args: argparse.Namespace) -> int:
    """Compact closed audit segments to Parquet."""
    from ..analytics.compaction import compact

    need_log(args.data_dir)
    need_writable(args.data_dir, "compact", "rewrites closed audit segments as Parquet")
    report = compact(args.data_dir, progress=progress("compact"))
    data = {
        "compacted": report.compacted,
        "skipped_live": report.skipped_live,
        "merged": report.merged,
        "rows": report.rows,
        "bad_lines": report.bad_lines,
        "bytes_in": report.bytes_in,
        "bytes_out": report.bytes_out,
    }
    emit(
        args,
        data,
        lambda: print(
            f"{plural(len(report.compacted), 'segment')} compacted ({plural(report.rows, 'row')}, "
            f"{report.bytes_in / 2**20:.1f} MiB -> {report.bytes_out / 2**20:.2f} MiB), "
            f"{plural(len(report.skipped_live), 'live segment')} left, "
            f"{plural(report.bad_lines, 'bad line')} dropped"
        ),
    )
    return EXIT_OK


def run_policy(args: argparse.Namespace) -> int:
    """Validate a policy file, or print the JSON Schema or the defaults."""
    if args.policy_command == "schema":
        print(json.dumps(PolicyConfig.json_schema(), indent=2))
        return EXIT_OK
    if args.policy_command == "default":
        print(PolicyConfig().dump_json(), end="")
        return EXIT_OK
    policy = PolicyConfig.load(args.path)
    if args.json:
        print(json.dumps({"valid": True, "path": str(args.path), "version": policy.version}))
    else:
        print(f"{args.path}: valid (policy version {policy.version})")
    return EXIT_OK
