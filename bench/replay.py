"""Replay and what-if of a large raw log: wall time, peak memory, and when progress first shows.

Writes a log of about ``2 x --steps`` records (gates and results of 40 workflows on a fake
clock, a rare failure now and then), then runs ``autoheal replay`` and ``autoheal what-if`` on
it as separate processes and prints each one's wall time and peak RSS (the operating system's
figure for the child; the peak is the largest so far, so what-if's covers both), and how long
a replay takes to report its first progress. The anchor, in the same run and also a separate
process: a plain DuckDB read of the same segments, sorted by (ts, seq, writer) and streamed
into Python dicts (what any replay must at least do); each figure is printed as a ratio to it.
Everything is written under one temporary directory, removed at the end.

``--compacted`` compacts the log first (replay then reads Parquet, the anchor too), ``--runs N``
repeats each command N times (rounds interleaved) and prints every run's outcome (a failure is
a run, not an abort), wall time and peak RSS, then medians and ranges; ``--reuse DIR`` keeps
the log there between invocations.

Run: ``.venv/bin/python bench/replay.py [--steps 500000]`` (1,000,000 records);
``.venv/bin/python bench/replay.py --compacted --runs 6``.
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
from pathlib import Path

from autoheal_otel import AutoHealManager, StepResult
from autoheal_otel.testing import FakeClock


def write_log(data_dir: Path, steps: int) -> None:
    rng = random.Random(1)
    clock = FakeClock()
    outcomes = ["success"] * 400 + ["target_not_found", "postcondition_failed"]
    with AutoHealManager(data_dir=data_dir, clock=clock) as m:
        for i in range(steps):
            clock.advance(1.0)
            wf, step = f"wf-{i % 40}", f"s{i % 7}"
            if m.should_execute_step(wf, step)[0]:
                result = StepResult(outcome=rng.choice(outcomes), confidence=0.9, validated=True)
                m.on_step_result(wf, step, result)


#: The anchor: read the log with DuckDB, sort it as replay does, stream every row as a dict.
ANCHOR = """
import json, sys, duckdb
jsonl, parquet = json.loads(sys.argv[1]), json.loads(sys.argv[2])
con = duckdb.connect()  # DuckDB's own memory limit: the anchor is what plain DuckDB does
parts = []
if jsonl:
    parts.append(
        "SELECT ts::TIMESTAMP AS ts, seq::BIGINT AS seq, writer::VARCHAR AS writer, *"
        " EXCLUDE (ts, seq, writer) FROM read_json(?, format = 'newline_delimited',"
        " ignore_errors = true) WHERE seq IS NOT NULL"
    )
if parquet:
    parts.append("SELECT * FROM read_parquet(?, union_by_name = true)")
union = " UNION ALL BY NAME ".join(parts)
cur = con.execute(
    f"SELECT * FROM ({union}) ORDER BY ts, seq, writer", [f for f in (jsonl, parquet) if f]
)
names = [d[0] for d in cur.description]
count = 0
while rows := cur.fetchmany(10_000):
    for row in rows:
        dict(zip(names, row))
        count += 1
print(count)
"""


def run(command: list[str]) -> tuple[float, float, str]:
    """Run one command; return (wall seconds, its own peak RSS in MB, outcome)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    outcome = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {lines[-1:]}"
    return wall, usage.ru_maxrss / 1024, outcome


def commands(data: Path) -> dict[str, list[str]]:
    """The measured commands: replay, what-if and the anchor, each a separate process."""
    from autoheal_otel.analytics._view import sources

    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent)) or "autoheal"
    policy = Path(__file__).resolve().parents[1] / "config" / "auto_heal_policy.json"
    src = sources(data)
    files = [json.dumps([str(p) for p in f]) for f in (src.jsonl, src.results + src.events)]
    return {
        "anchor": [sys.executable, "-c", ANCHOR, *files],
        "replay": [exe, "replay", "--data-dir", str(data)],
        "what-if": [exe, "what-if", "--data-dir", str(data), "--policy", str(policy)],
    }


def span(values: list[float]) -> str:
    return f"median {statistics.median(values):7.2f} (range {min(values):.2f}-{max(values):.2f})"


def first_progress(data: Path) -> float:
    """Return the seconds from the start of a replay to its first progress report."""
    from autoheal_otel.analytics.replay import replay

    started = time.perf_counter()
    seen: list[float] = []
    replay(data, progress=lambda _d, _t: seen.append(time.perf_counter() - started))
    return seen[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--compacted", action="store_true", help="compact the log first")
    parser.add_argument("--reuse", type=Path, help="keep the generated log in this directory")
    parser.add_argument("--commands", default="anchor,replay,what-if", help="which to measure")
    args = parser.parse_args()
    wanted = args.commands.split(",")
    with tempfile.TemporaryDirectory(prefix="autoheal-bench-") as tmp:
        data = args.reuse or Path(tmp) / "data"
        if not (data / "audit").is_dir():
            write_log(data, args.steps)
        if args.compacted:
            from autoheal_otel.analytics.compaction import compact

            compact(data)
        figures: dict[str, list[tuple[float, float, str]]] = {}
        for round_ in range(args.runs):
            for name, command in commands(data).items():
                if name not in wanted:
                    continue
                figures.setdefault(name, []).append(run(command))
                wall, rss, outcome = figures[name][-1]
                print(
                    f"run {round_ + 1} {name:8} {wall:6.2f} s  peak {rss:5.0f} MB  {outcome}",
                    flush=True,
                )
        kind = "compacted" if args.compacted else "raw"
        print(f"\n{2 * args.steps} records ({kind}), {args.runs} runs of each:")
        anchors = [w for w, _, o in figures.get("anchor", []) if o == "ok"]
        for name, runs in figures.items():
            ok = [(w, r) for w, r, o in runs if o == "ok"]
            line = f"{name:8} {len(ok)}/{len(runs)} ok"
            if ok:
                line += f"  wall s {span([w for w, _ in ok])}  peak MB {span([r for _, r in ok])}"
                if anchors and name != "anchor":
                    pairs = [
                        w / a for (w, _, o), a in zip(runs, anchors, strict=False) if o == "ok"
                    ]
                    line += f"  x anchor {span(pairs)}"
            print(line)
        print(f"first progress report after {first_progress(data):.3f} s")


if __name__ == "__main__":
    main()
