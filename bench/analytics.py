"""Analytics at scale: window query, regression query and warm restart, JSONL vs compacted.

Run: ``.venv/bin/python bench/analytics.py --events 1000000 5000000``. For each size it writes a
synthetic audit log shaped like a real one (mostly gates and results over many workflows, with
transitions), times each operation over the raw JSONL, compacts it, and times them again over
the compacted layout. Figures are medians of several runs in this process; the JSONL/compacted
ratio is the comparison that matters on a shared machine.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from autoheal_otel import AutoHealManager, PolicyConfig
from autoheal_otel._events import ALWAYS
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.analytics.restore import load_restored_state
from autoheal_otel.testing import FakeClock

START = datetime(2026, 1, 1, tzinfo=UTC)
TRIGGERS = [
    "target_not_found",
    "postcondition_failed",
    "watchdog_timeout",
    None,
    None,
    None,
    None,
    None,
]


def generate(
    data_dir: Path, events: int, workflows: int = 200, per_segment: int = 500_000
) -> datetime:
    """Write ``events`` audit records; return the timestamp of the last one."""
    audit = data_dir / "audit"
    audit.mkdir(parents=True)
    rng = random.Random(42)
    step = timedelta(milliseconds=50)
    ts = START
    segment = 0
    handle = None
    base = {
        "schema_version": 1,
        "writer": "bench",
        "policy_version": "p",
        "previous_state": None,
        "allowed": None,
        "outcome": None,
        "trigger": None,
        "signals": [],
        "confidence": None,
        "second_best": None,
        "validated": None,
        "duration_s": None,
        "rule": None,
        "cause": None,
        "actor": None,
        "artifact_version": "v1",
        "learning": True,
        "trace_id": None,
        "span_id": None,
        "counts": {},
        "details": {},
    }
    for seq in range(1, events + 1):
        if (seq - 1) % per_segment == 0:
            if handle:
                handle.close()
            segment += 1
            handle = (audit / f"audit-20260101-bench-{segment:04d}.jsonl").open("wb")
        ts += step
        wid = f"wf{rng.randrange(workflows):03d}"
        rec = dict(
            base,
            ts=ts.isoformat().replace("+00:00", "Z"),
            seq=seq,
            workflow_id=wid,
            step_id=f"s{rng.randrange(8)}",
            state="running",
            message="",
            reason="ok",
        )
        roll = rng.random()
        if roll < 0.45:
            rec.update(kind="gate", allowed=True)
        elif roll < 0.999:
            trigger = rng.choice(TRIGGERS)
            rec.update(
                kind="result",
                outcome=trigger or "success",
                trigger=trigger,
                signals=[trigger] if trigger else [],
                confidence=rng.random(),
                validated=trigger is None,
                reason=trigger or "ok",
            )
        else:
            state = rng.choice(["degraded", "running", "quarantined"])
            rec.update(
                kind="transition",
                state=state,
                previous_state="running",
                cause="operator" if state == "running" else "step_breaker",
                reason="step.consecutive_target_not_found",
                step_id=None,
                message="bench transition",
            )
        assert handle is not None
        handle.write(orjson.dumps(_compact(rec), option=orjson.OPT_APPEND_NEWLINE))
    assert handle is not None
    handle.close()
    return ts


def _compact(record: dict[str, object]) -> dict[str, object]:
    """Leave out the fields with no value, as the audit log writes its lines."""
    return {k: v for k, v in record.items() if k in ALWAYS or v not in (None, "", [], {})}


def median_ms(func: Callable[[], object], repeat: int) -> float:
    """Return the median wall time of ``func`` in milliseconds (one warm-up run first)."""
    func()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def measure(data_dir: Path, as_of: datetime, repeat: int) -> dict[str, float]:
    """Time the three operations against whatever layout ``data_dir`` has now."""
    policy = PolicyConfig()
    wp = policy.breakers.workflow
    out: dict[str, float] = {}
    # Opening parses the live JSONL once (into a table); queries then run on what it read.
    out["open (parse live JSONL)"] = median_ms(lambda: AuditAnalytics(data_dir).close(), repeat)
    with AuditAnalytics(data_dir) as db:
        out["window query"] = median_ms(
            lambda: db.query(
                "workflow_window",
                as_of=as_of,
                window_seconds=wp.window_seconds,
                triggers=[t.value for t in wp.counted_triggers],
            ),
            repeat,
        )
        out["regression query"] = median_ms(
            lambda: db.query(
                "success_rate_drop",
                as_of=as_of,
                recent_seconds=3600,
                baseline_seconds=6 * 3600,
                min_executions=10,
                drop_points=20,
            ),
            repeat,
        )
    out["restore queries"] = median_ms(lambda: load_restored_state(data_dir, policy, as_of), repeat)

    def warm_restart() -> None:
        AutoHealManager(data_dir=data_dir, clock=FakeClock(start=as_of)).close()

    # Each restart adds a tiny segment of its own; that is part of what a real restart costs.
    out["warm restart (manager)"] = median_ms(warm_restart, repeat)
    return out


def run_size(data_dir: Path, events: int, repeat: int) -> None:
    """Generate one log, measure it raw, compact it, measure again, print the table."""
    t0 = time.perf_counter()
    last = generate(data_dir, events)
    gen_s = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (data_dir / "audit").glob("*.jsonl"))
    raw = measure(data_dir, last, max(1, repeat // 2))
    t0 = time.perf_counter()
    report = compact(data_dir)
    compact_s = time.perf_counter() - t0
    compacted = measure(data_dir, last, repeat)
    print(
        f"\n{events:,} events: JSONL {size / 2**20:,.0f} MiB (generated in {gen_s:.1f} s); "
        f"compacted to {report.bytes_out / 2**20:,.0f} MiB in {compact_s:.1f} s"
    )
    print(f"  {'operation':<24} {'raw JSONL':>11} {'compacted':>11} {'ratio':>8}")
    for name, raw_ms in raw.items():
        c = compacted[name]
        print(f"  {name:<24} {raw_ms:9.1f} ms {c:9.1f} ms {raw_ms / c:7.1f}x")


def main() -> None:
    """Generate, measure raw JSONL, compact, measure again; print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="write the data here and keep it")
    args = parser.parse_args()
    for events in args.events:
        root = Path(args.keep or tempfile.mkdtemp(prefix="autoheal-bench-"))
        try:
            run_size(root / f"events-{events}", events, args.repeat)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
