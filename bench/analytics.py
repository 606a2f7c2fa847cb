"""Analytics at scale, each figure next to its baseline from the same run.

Run: ``.venv/bin/python bench/analytics.py --events 5000000``. For each size it writes a
synthetic audit log shaped like a real one (compact lines, mostly gates and results over many
workflows, with transitions), then measures, interleaving each operation with its baseline
(medians of ``--repeat`` rounds):

- parsing the raw JSONL (what opening the views does) against a plain ``read_json`` of the
  same lines;
- a warm restart over the raw JSONL, in a fresh process: wall time and peak RSS;
- after compaction: a warm restart against a plain DuckDB rebuild of the same windows from one
  Parquet file of the whole log; the 10-minute window query against the same query over that
  one file; the regression query against a query over an hourly roll-up of that file.

Everything is written under one temporary directory, removed at the end (``--reuse DIR``
keeps a generated log there between runs instead).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from autoheal_otel import AutoHealManager, PolicyConfig
from autoheal_otel.analytics import AuditAnalytics, load_query, ts_param
from autoheal_otel.analytics._view import RESET_VIEWS
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.base._events import ALWAYS
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


def interleaved(ops: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Return each operation's median wall time in ms, the operations run in turn each round."""
    for func in ops.values():
        func()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeat):
        for name, func in ops.items():
            t0 = time.perf_counter()
            func()
            samples[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join(f"'{p}'" for p in paths) + "]"


def parse_figures(data_dir: Path, repeat: int) -> dict[str, float]:
    """Opening the views over raw JSONL (one parse) against a plain ``read_json`` of the lines."""
    import duckdb

    segments = sorted((data_dir / "audit").glob("*.jsonl"))

    def plain() -> None:
        con = duckdb.connect(":memory:")
        con.execute(
            "CREATE TABLE t AS SELECT * FROM"
            f" read_json({_files(segments)}, format='newline_delimited')"
        )
        con.close()

    return interleaved(
        {"parse (open the views)": lambda: AuditAnalytics(data_dir).close(), "read_json": plain},
        repeat,
    )


CHILD = """
import json, sys, time
t0 = time.perf_counter()
from datetime import datetime
from autoheal_otel import AutoHealManager
from autoheal_otel.testing import FakeClock
t1 = time.perf_counter()
clock = FakeClock(start=datetime.fromisoformat(sys.argv[2]))
AutoHealManager(data_dir=sys.argv[1], clock=clock, read_only=True).close()
print(json.dumps({"imports": t1 - t0, "restart": time.perf_counter() - t1}))
"""


FLOOR = """
import sys, duckdb
files = sys.argv[1:]
duckdb.sql(
    "SELECT max(seq), count(*) FILTER (WHERE kind = 'result'), max(ts)"
    f" FROM read_json({files}, format='newline_delimited')"
).fetchall()
print("{}")
"""


def _child(args: list[str]) -> tuple[float, float, dict[str, float]]:
    """Run a Python child; return its wall time (s), peak RSS (MiB) and its last output line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the child process failed ({status})")
    return wall, usage.ru_maxrss / 1024, json.loads(out.splitlines()[-1])  # KiB on Linux


def fresh_restart(data_dir: Path, as_of: datetime, repeat: int) -> dict[str, float]:
    """A warm restart in a new process, in turn with the floor (a new process that reads the
    log once for three figures, nothing kept): medians of wall times and peak RSS."""
    segments = [str(p) for p in sorted((data_dir / "audit").glob("*.jsonl"))]
    figures: dict[str, list[float]] = {k: [] for k in ("process", "restart", "rss", "floor")}
    for _ in range(repeat):
        wall, rss, out = _child([CHILD, str(data_dir), as_of.isoformat()])
        figures["process"].append(wall)
        figures["restart"].append(out["restart"])
        figures["rss"].append(rss)
        figures["floor"].append(_child([FLOOR, *segments])[0])
    return {k: statistics.median(v) for k, v in figures.items()}


def one_file_baselines(data_dir: Path, root: Path) -> tuple[Path, Path]:
    """Write the whole log as one Parquet file, and its hourly roll-up (the baselines' inputs)."""
    import duckdb

    one, hourly = root / "one.parquet", root / "hourly.parquet"
    with AuditAnalytics(data_dir) as db:
        db.sql(f"COPY (SELECT * FROM audit ORDER BY ts, seq) TO '{one}' (FORMAT parquet)")
    con = duckdb.connect(":memory:")
    con.execute(
        "COPY (SELECT date_trunc('hour', ts) AS hour, workflow_id, count(*) AS executions,"
        " count(*) FILTER (WHERE outcome = 'success') AS successes"
        f" FROM read_parquet('{one}') WHERE kind = 'result' GROUP BY ALL ORDER BY hour)"
        f" TO '{hourly}' (FORMAT parquet)"
    )
    con.close()
    return one, hourly


def compacted_figures(
    data_dir: Path, one: Path, hourly: Path, as_of: datetime, repeat: int
) -> dict[str, float]:
    """Restart, window and regression query over the compacted log, each with its baseline."""
    import duckdb

    policy = PolicyConfig()
    wp = policy.breakers.workflow
    window = {
        "as_of": as_of,
        "window_seconds": wp.window_seconds,
        "triggers": [t.value for t in wp.counted_triggers],
    }
    hi = ts_param(as_of)
    mid, lo = ts_param(as_of - timedelta(hours=1)), ts_param(as_of - timedelta(hours=7))
    regression = {"as_of": as_of, "recent_seconds": 3600, "baseline_seconds": 6 * 3600}
    regression.update(min_executions=10, drop_points=20)
    rollup_sql = (
        "SELECT workflow_id, sum(executions) FILTER (WHERE hour < $mid) AS baseline_executions,"
        " sum(successes) FILTER (WHERE hour < $mid) AS baseline_successes,"
        " sum(executions) FILTER (WHERE hour >= $mid) AS recent_executions,"
        " sum(successes) FILTER (WHERE hour >= $mid) AS recent_successes"
        f" FROM read_parquet('{hourly}') WHERE hour >= $lo AND hour < $hi"
        " GROUP BY workflow_id ORDER BY workflow_id"
    )
    bound = {"lo": lo, "mid": mid, "hi": hi}
    one_con = duckdb.connect(":memory:")
    one_con.execute("SET TimeZone = 'UTC'")
    one_con.execute(f"CREATE VIEW audit AS SELECT * FROM read_parquet('{one}')")
    one_con.execute("CREATE VIEW audit_events AS SELECT * FROM audit")
    for name, sql in RESET_VIEWS.items():
        one_con.execute(f"CREATE VIEW {name} AS {sql}")
    window_sql = load_query("workflow_window")
    window_params = {**window, "as_of": hi}

    def plain_rebuild() -> None:
        con = duckdb.connect(":memory:")
        src = f"read_parquet('{one}')"
        con.execute(
            f"SELECT workflow_id, step_id, epoch_us(ts), trigger FROM {src}"
            " WHERE kind = 'result' AND trigger IS NOT NULL AND ts <= $hi::TIMESTAMP"
            " AND ts > $hi::TIMESTAMP - INTERVAL 600 SECOND",
            {"hi": hi},
        ).fetchall()
        con.execute(
            "SELECT workflow_id, arg_max(state, {'ts': ts, 'seq': seq})"
            f" FROM {src} WHERE kind = 'transition' GROUP BY ALL"
        ).fetchall()
        con.close()

    def restart() -> None:
        AutoHealManager(data_dir=data_dir, clock=FakeClock(start=as_of), read_only=True).close()

    with AuditAnalytics(data_dir) as db:
        figures = interleaved(
            {
                "warm restart": restart,
                "plain rebuild, one file": plain_rebuild,
                "window query": lambda: db.query("workflow_window", **window),
                "same query, one file": lambda: one_con.execute(
                    window_sql, window_params
                ).fetchall(),
                "regression query": lambda: db.query("success_rate_drop", **regression),
                "hourly roll-up query": lambda: one_con.execute(rollup_sql, bound).fetchall(),
            },
            repeat,
        )
    one_con.close()
    return figures


def _ratio(figures: dict[str, float], name: str, baseline: str) -> str:
    a, b = figures[name], figures[baseline]
    return f"  {name:<24} {a:9.1f} ms   {baseline:<26} {b:9.1f} ms   {a / b:5.2f}x"


def run_size(root: Path, events: int, repeat: int, reuse: bool) -> None:
    """Generate (or reuse) one log, measure it raw, compact it, measure again, print."""
    raw = root / f"raw-{events}"
    t0 = time.perf_counter()
    if not (reuse and raw.exists()):
        shutil.rmtree(raw, ignore_errors=True)
        generate(raw, events)
    gen_s = time.perf_counter() - t0
    segments = sorted((raw / "audit").glob("*.jsonl"))
    last_line = segments[-1].read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    as_of = datetime.fromisoformat(orjson.loads(last_line)["ts"])
    size = sum(p.stat().st_size for p in segments)
    print(f"\n{events:,} decisions: JSONL {size / 2**20:,.0f} MiB, {size / events:.0f} B a line")
    print(f"  (log ready in {gen_s:.1f} s)")
    # First, while this process is small: a child's peak RSS counts what it shares at fork.
    fresh = fresh_restart(raw, as_of, max(3, repeat // 2))
    print(
        f"  warm restart, raw JSONL, fresh process: {fresh['process']:.2f} s"
        f" ({fresh['restart']:.2f} s in the manager), {fresh['rss']:,.0f} MiB peak RSS;"
        f" a fresh process parsing the log once: {fresh['floor']:.2f} s"
        f" ({fresh['process'] / fresh['floor']:.2f}x)"
    )
    parse = parse_figures(raw, repeat)
    print(_ratio(parse, "parse (open the views)", "read_json"))
    data = root / f"compacted-{events}"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(raw, data)
    t0 = time.perf_counter()
    report = compact(data)
    print(f"  compacted to {report.bytes_out / 2**20:,.0f} MiB in {time.perf_counter() - t0:.1f} s")
    # A manager compacts again and again: measure after a second run, which must keep what
    # the first one wrote (its rollups included).
    compact(data)
    one, hourly = one_file_baselines(data, root)
    figures = compacted_figures(data, one, hourly, as_of, repeat)
    print(_ratio(figures, "warm restart", "plain rebuild, one file"))
    print(_ratio(figures, "window query", "same query, one file"))
    print(_ratio(figures, "regression query", "hourly roll-up query"))
    for path in (one, hourly):
        path.unlink()
    shutil.rmtree(data)
    if not reuse:
        shutil.rmtree(raw)


def main() -> None:
    """Measure every analytics figure against its baseline, for each size asked."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[5_000_000])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--reuse", type=Path, help="keep the generated log here between runs")
    args = parser.parse_args()
    root = Path(args.reuse or tempfile.mkdtemp(prefix="autoheal-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        for events in args.events:
            run_size(root, events, args.repeat, reuse=args.reuse is not None)
    finally:
        if not args.reuse:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
