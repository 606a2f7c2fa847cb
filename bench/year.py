"""A simulated year of one robot host: disk stays flat, restart and replay do not grow with age.

Run: ``.venv/bin/python bench/year.py`` (fast: 2,000 steps a day) or
``.venv/bin/python bench/year.py --per-day 200000`` (the full rate, hours). One real manager
on a fake clock drives 1,000 workflows × 20 steps (a gate and a result per step, ~1 % failed
steps) through ``--days`` days, with incidents sprinkled in: a step degraded every third day
(consecutive targets not found, then recovery), a workflow quarantined every seventh (failures
in its window, then released by an operator), an operator pause and resume every tenth. The
structure is the real one at any rate: a checkpoint every simulated hour (the policy's default
interval; recorded by ``manager.checkpoint()`` on the hour, as the checkpoint thread would),
the day's segment rotated at midnight and compacted, then one retention run (the retention
thread's ``run_once``: failure cases, reports, the audit log by keep_days and the budget, the
success store) with ``retention.keep_days`` 30 and ``--max-bytes``.

Reported:

- disk use of the data directory (every part) at the end of every day: its maximum against the
  budget, and the mean of days 31-60 against the mean of the last 30 days (flat: ~1.0);
- at days 30, 180 and 365 (``--samples``), in a fresh process each (``--repeat`` times, median
  and range): the warm restart (a read-only manager's construction on the directory, as of
  that instant) time and the process's peak RSS, against an empty directory's (same run);
- at the same days: replay of what is kept — its time, the records it read, whether every
  automatic transition and gate came out as recorded (``matches``) from its first kept
  checkpoint, and how many records came before that checkpoint (not reproducible, older than
  keep_days).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.testing import FakeClock

START = datetime(2026, 1, 1, tzinfo=UTC)
WORKFLOWS, STEPS_PER = 1000, 20
DAY = 86_400.0
OK = StepResult(outcome=Outcome.SUCCESS, confidence=0.93, validated=True, duration_s=0.4)
TNF = StepResult(outcome=Outcome.TARGET_NOT_FOUND, confidence=0.41, duration_s=1.2)
POST = StepResult(outcome=Outcome.POSTCONDITION_FAILED, confidence=0.8, duration_s=0.9)

PROBE = textwrap.dedent(
    """
    import json, resource, sys, time
    from datetime import datetime
    from autoheal_otel import AutoHealManager, PolicyConfig
    from autoheal_otel.testing import FakeClock
    policy = PolicyConfig.from_dict(json.loads(sys.argv[2]))
    clock = FakeClock(datetime.fromisoformat(sys.argv[3]))
    start = time.perf_counter()
    if sys.argv[4] == "restart":
        with AutoHealManager(policy, sys.argv[1], clock=clock, read_only=True) as m:
            seconds = time.perf_counter() - start
            out = {"restored": m._parts.restored}
    else:
        from autoheal_otel.analytics.replay import replay
        report = replay(sys.argv[1])
        seconds = time.perf_counter() - start
        out = {"matches": report.matches, "records": report.records,
               "from_checkpoint": report.from_checkpoint,
               "before_checkpoint": report.before_checkpoint,
               "mismatches": report.mismatches[:3]}
    out["seconds"] = seconds
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out, default=str))
    """
)


def policy_dict(max_bytes: int) -> dict[str, Any]:
    return {
        "audit": {"compact_interval_seconds": 0, "checkpoint_interval_seconds": 30 * DAY},
        "retention": {"keep_days": 30, "max_bytes": max_bytes, "keep_free_bytes": 0},
    }


def probe(data: Path, policy: dict[str, Any], at: datetime, what: str) -> dict[str, Any]:
    """Run a restart or a replay in a fresh process; return its figures."""
    args = [sys.executable, "-c", PROBE, str(data), json.dumps(policy), at.isoformat(), what]
    out = subprocess.run(args, capture_output=True, text=True, check=False, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"the {what} probe failed: {out.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


class Host:
    """The robot host: a manager on a fake clock, its day of steps and incidents."""

    def __init__(self, data: Path, policy: dict[str, Any], per_day: int, seed: int) -> None:
        self.data = data
        self.policy = policy
        self.per_day = per_day
        self.rng = random.Random(seed)
        self.clock = FakeClock(start=START)
        self.index = 0
        self.manager = self._open()

    def _open(self) -> AutoHealManager:
        return AutoHealManager(PolicyConfig.from_dict(self.policy), self.data, clock=self.clock)

    def step(self, wf: str, step: str, result: StepResult) -> None:
        if self.manager.should_execute_step(wf, step)[0]:
            self.manager.on_step_result(wf, step, result)

    def day(self, number: int) -> None:
        """One day: steps spread over 24 hours, a checkpoint on the hour, the incidents."""
        per_hour = max(1, self.per_day // 24)
        incident_hour = self.rng.randrange(2, 20)
        day_start = START + timedelta(days=number - 1)
        for hour in range(24):
            self.manager.checkpoint()
            spent = self._incident(number) if hour == incident_hour else 0.0
            gap = max(0.01, (3600.0 - spent) / per_hour)  # the incident's minutes come out
            for _ in range(per_hour):
                i = self.index
                self.index += 1
                wf = f"wf{i % WORKFLOWS:04d}"
                step = f"step{(i // WORKFLOWS) % STEPS_PER:02d}"
                self.step(wf, step, TNF if self.rng.random() < 0.01 else OK)
                self.clock.advance(gap)
            # Every hour ends on the hour, every day at midnight: each sample is taken at the
            # same time of day whatever the age of the host.
            end = day_start + timedelta(hours=hour + 1)
            self.clock.advance(max(0.0, (end - self.clock.now()).total_seconds()))

    def _incident(self, number: int) -> float:
        """The day's incident (if any); return the seconds it took on the clock."""
        wf = f"wf{self.rng.randrange(WORKFLOWS):04d}"
        m, spent = self.manager, 0.0
        if number % 3 == 0:  # a step degrades (targets not found), then recovers
            for result in [TNF] * 3 + [OK] * 6:
                self.step(wf, "step00", result)
                self.clock.advance(5)
                spent += 5
        if number % 7 == 0:  # a workflow is quarantined, then released by an operator
            for _ in range(10):
                self.step(wf, "step01", POST)
                self.clock.advance(5)
                spent += 5
            if m.get_mode(wf) is ExecutionState.QUARANTINED:
                m.force_transition(wf, ExecutionState.RUNNING, reason="fixed the selector")
        if number % 10 == 0:  # an operator pauses a workflow, then resumes it
            m.force_transition(wf, ExecutionState.PAUSED, reason="maintenance window")
            self.clock.advance(600)
            spent += 600
            m.force_transition(wf, ExecutionState.RUNNING, reason="maintenance over")
        return spent

    def upkeep(self) -> None:
        """After midnight: compact the day that rotated away, then one retention run."""
        compact(self.data)
        retention = self.manager._parts.retention
        assert retention is not None
        retention.run_once()

    def used(self) -> tuple[int, dict[str, int]]:
        retention = self.manager._parts.retention
        assert retention is not None
        usage = retention.disk.measure_now()
        return usage.total, dict(usage.parts)

    def pause(self) -> None:
        self.manager.close()

    def resume(self) -> None:
        self.manager = self._open()


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=2000, help="steps a day (full: 200000)")
    parser.add_argument("--max-bytes", type=int, default=256 * 1024 * 1024)
    parser.add_argument("--samples", default="30,180,365")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--progress", action="store_true", help="print every day's disk use")
    args = parser.parse_args()
    samples = sorted(int(s) for s in args.samples.split(",") if int(s) <= args.days)
    root = Path(tempfile.mkdtemp(prefix="autoheal-year-"))
    policy = policy_dict(args.max_bytes)
    figures: dict[str, Any] = {"args": vars(args) | {"json": str(args.json)}, "days": []}
    try:
        empty = root / "empty"
        empty.mkdir()
        base = [probe(empty, policy, START, "restart") for _ in range(args.repeat)]
        figures["empty_restart"] = base
        host = Host(root / "data", policy, args.per_day, args.seed)
        began = time.perf_counter()
        for number in range(1, args.days + 1):
            host.day(number)
            host.upkeep()
            total, parts = host.used()
            figures["days"].append({"day": number, "bytes": total, "parts": parts})
            if args.progress:
                print(f"day {number}: {total / 2**20:.1f} MiB {parts}", flush=True)
            if number in samples:
                host.pause()  # the probes see the directory as a stopped robot left it
                at = host.clock.now()
                restarts = [probe(host.data, policy, at, "restart") for _ in range(args.repeat)]
                replay = probe(host.data, policy, at, "replay")
                figures[f"day{number}"] = {"restart": restarts, "replay": replay}
                host.resume()
                print(
                    f"day {number}: disk {total / 2**20:.1f} MiB,"
                    f" restart {_median([r['seconds'] for r in restarts])} s"
                    f" (RSS {_median([r['rss_mb'] for r in restarts])} MB,"
                    f" from {restarts[0]['restored'].get('from_checkpoint')},"
                    f" {restarts[0]['restored'].get('tail_records')} records after it),"
                    f" replay {replay['seconds']:.2f} s of {replay['records']} records"
                    f" matches={replay['matches']} from {replay['from_checkpoint']}"
                    f" ({replay['before_checkpoint']} before it)",
                    flush=True,
                )
        host.pause()
        figures["simulate_seconds"] = time.perf_counter() - began
        _summary(figures, args, base)
        if args.json is not None:
            args.json.write_text(json.dumps(figures, indent=1, default=str))
        replays = [figures[k]["replay"] for k in figures if k.startswith("day") and k != "days"]
        over = max(d["bytes"] for d in figures["days"]) > args.max_bytes
        if over or not all(r["matches"] for r in replays):
            print("FAILED: disk over the budget, or a replay did not match", file=sys.stderr)
            sys.exit(1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _summary(figures: dict[str, Any], args: argparse.Namespace, base: list[dict[str, Any]]) -> None:
    days = figures["days"]
    peak = max(d["bytes"] for d in days)
    print(f"\n{args.days} days at {args.per_day} steps/day, keep_days 30, budget"
          f" {args.max_bytes / 2**20:.0f} MiB: simulated in {figures['simulate_seconds']:.0f} s")  # fmt: skip
    print(f"disk max {peak / 2**20:.1f} MiB ({100 * peak / args.max_bytes:.1f} % of the budget)")
    if len(days) >= 90:
        early = statistics.mean(d["bytes"] for d in days[30:60])
        late = statistics.mean(d["bytes"] for d in days[-30:])
        figures["flat_ratio"] = late / early
        print(f"disk mean of days 31-60 {early / 2**20:.1f} MiB, of the last 30 days"
              f" {late / 2**20:.1f} MiB: ratio {late / early:.2f}")  # fmt: skip
    last = days[-1]["parts"]
    print(
        "parts at the end: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in last.items() if v)
    )
    print(f"empty directory restart {_median([b['seconds'] for b in base])} s,"
          f" RSS {_median([b['rss_mb'] for b in base])} MB")  # fmt: skip
    for key in [k for k in figures if k.startswith("day") and k != "days"]:
        restarts, replay = figures[key]["restart"], figures[key]["replay"]
        print(f"{key}: restart {_median([r['seconds'] for r in restarts])} s,"
              f" RSS {_median([r['rss_mb'] for r in restarts])} MB; replay"
              f" {replay['seconds']:.2f} s, {replay['records']} records, matches"
              f" {replay['matches']}, {replay['before_checkpoint']} before its checkpoint")  # fmt: skip


if __name__ == "__main__":
    main()
