"""Compaction of a raw backlog: peak memory and wall time, bounded against unbounded.

Writes a raw log of ``--events`` records (the synthetic log of ``analytics.py``, in segments
of 200,000 lines, about 64 MB each, like the audit log's default rotation), then compacts a
fresh copy of it (hard links: compaction deletes only its links) in a separate process per
run, rounds interleaved:

- ``bounded``: :func:`~autoheal_otel.analytics.compaction.compact` as shipped (DuckDB memory
  limit, spill files in the data directory, batches of segments, one thread);
- ``unbounded``: the same code with the bounds lifted (no memory limit, every segment in one
  batch, every core): how compaction ran before it was bounded;
- ``anchor``: a plain DuckDB ``COPY`` of the same segments to one zstd Parquet file, with
  DuckDB's defaults: what any compaction must at least do (read, sort, write).

Each child reports its own peak RSS (``getrusage``) and the compaction's wall time; each run
also checks the records: the bounded and unbounded outputs hold the same (count, checksum).
Prints every run, then medians and ranges. ``--reuse DIR`` keeps the generated log there.

Run: ``.venv/bin/python bench/compaction.py --events 1000000 --runs 5``; ``make bench`` runs it
with the defaults (1M records, 3 runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from analytics import generate

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import duckdb
from autoheal_otel.analytics import compaction

data, mode = Path(sys.argv[1]), sys.argv[2]
segments = sorted((data / "audit").glob("*.jsonl"))
started = time.perf_counter()
if mode == "anchor":
    files = "[" + ", ".join(f"'{p}'" for p in segments) + "]"
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # stdout carries the figures
    con.execute(
        f"COPY (SELECT * FROM read_json({files}, format = 'newline_delimited') ORDER BY ts, seq)"
        f" TO '{data}/anchor.parquet' (FORMAT parquet, COMPRESSION zstd)"
    )
    glob = f"{data}/anchor.parquet"
else:
    if mode == "unbounded":
        import os
        compaction.MEMORY_LIMIT = f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') * 8 // 10 // 2**20}MB"
        compaction.BATCH_LINES = 2**62
        compaction.THREADS = os.cpu_count() or 1
    report = compaction.compact(data)
    assert len(report.compacted) == len(segments), report
    glob = f"{data}/audit/compacted/c-*[0-9a-f].parquet"
wall = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
check = duckdb.connect().execute(
    "SELECT count(*), sum(hash(ts, seq, writer, kind, workflow_id, outcome)) FROM"
    f" read_parquet('{glob}') WHERE kind IN ('gate', 'result')"
).fetchone()
print(json.dumps({"wall": wall, "rss": rss, "check": [int(check[0]), str(check[1])]}))
"""

MODES = ("bounded", "unbounded", "anchor")


def run_once(raw: Path, work: Path, mode: str) -> dict[str, object]:
    """Compact a fresh hard-linked copy of ``raw`` in a child process; return its figures."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(raw, work, copy_function=lambda src, dst: Path(dst).hardlink_to(src))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(work), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(work, ignore_errors=True)
    last = out.stdout.rstrip().rsplit("\n", 1)[-1]
    figures: dict[str, object] = json.loads(last[last.index("{") :])
    return figures


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):8.1f} (range {min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--reuse", type=Path, help="keep the generated log in this directory")
    args = parser.parse_args()
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="autoheal-bench-") as tmp:
        raw = args.reuse or Path(tmp) / "raw"
        if not (raw / "audit").is_dir():
            generate(raw, args.events, per_segment=200_000)
        size = sum(p.stat().st_size for p in (raw / "audit").glob("*.jsonl")) / 2**20
        print(
            f"{args.events} records in {len(list((raw / 'audit').glob('*.jsonl')))}"
            f" segments, {size:.0f} MiB",
            flush=True,
        )
        results: dict[str, list[dict[str, object]]] = {m: [] for m in modes}
        for round_ in range(args.runs):
            order = modes[round_ % len(modes) :] + modes[: round_ % len(modes)]
            for mode in order:
                fig = run_once(raw, Path(tmp) / "work", mode)
                results[mode].append(fig)
                print(
                    f"run {round_ + 1} {mode:9} {fig['wall']:7.1f} s  peak {fig['rss']:7.0f} MB"
                    f"  records {fig['check']}",
                    flush=True,
                )
        checks = {json.dumps(f["check"]) for m in modes if m != "anchor" for f in results[m]}
        assert len(checks) <= 1, f"the outputs differ: {checks}"
        print(f"\n{args.events} records, {args.runs} runs of each (medians and ranges):")
        for mode in modes:
            walls = [float(str(f["wall"])) for f in results[mode]]
            peaks = [float(str(f["rss"])) for f in results[mode]]
            print(f"{mode:9} wall s  {summary(walls)}   peak RSS MB  {summary(peaks)}")
        if "bounded" in modes and "anchor" in modes:
            ratios = [
                float(str(b["wall"])) / float(str(a["wall"]))
                for b, a in zip(results["bounded"], results["anchor"], strict=True)
            ]
            print(f"bounded / anchor wall time, per round: {summary(ratios)}")


if __name__ == "__main__":
    main()
