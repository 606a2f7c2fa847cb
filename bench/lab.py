"""Multi-policy replay: many candidate policies over one large log, against one what-if.

Writes the log of ``bench/replay.py`` (about ``2 x --steps`` records: gates and results of 40
workflows on a fake clock, a rare failure now and then), then, as separate processes, each
``--runs`` times: one ``autoheal what-if`` of the default policy (the same-run anchor) and
one multi-policy replay of ``--candidates`` policies (a grid of workflow failure thresholds
and windows) on ``--workers`` processes. Prints each run's wall time and peak RSS (the
multi-policy figure is the sum of the parent's peak and its worker's), then the median and
range of each, the ratio of the multi-policy time to ``--candidates`` what-ifs, and the CPU
time per candidate (after the one decode) against one what-if's CPU time (the machine is
shared: CPU time is the steadier figure), and what the run would take on ``--workers``
cores of its own, from those CPU times.

Run: ``.venv/bin/python bench/lab.py [--steps 500000] [--candidates 100] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replay import write_log

#: One multi-policy replay in a fresh process: prints its figures as JSON.
MULTI = """
import json, resource, sys, time
from autoheal_otel import PolicyConfig
from autoheal_otel.lab import decode, multi_replay
n, workers = int(sys.argv[2]), int(sys.argv[3])
grid = [(t, w) for w in (300, 600, 900, 1200, 1800) for t in range(5, 200)][:n]
policies = [PolicyConfig.from_dict(
    {"breakers": {"workflow": {"failure_threshold": t, "window_seconds": w}}}) for t, w in grid]
def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
started, cpu0 = time.perf_counter(), cpu()
log = decode(sys.argv[1])
decoded, cpu1 = time.perf_counter() - started, cpu()
out = multi_replay(log, policies, workers=workers)
wall = time.perf_counter() - started
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"wall": wall, "decode": decoded, "rss": own + child, "candidates": len(out),
                  "records": log.records, "decode_cpu": cpu1 - cpu0,
                  "cpu_per_candidate": (cpu() - cpu1) / len(out)}))
"""


def _what_if(data: Path, policy: Path) -> tuple[float, float, float]:
    """Return one what-if's wall time, its CPU time, and the children's peak RSS so far."""
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent)) or "autoheal"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [exe, "what-if", "--data-dir", str(data), "--policy", str(policy)],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024


def _multi(data: Path, candidates: int, workers: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", MULTI, str(data), str(candidates), str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} (range {min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, help="reuse a log written before (not removed)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="autoheal-bench-lab-"))
    try:
        data = args.data or tmp / "data"
        if args.data is None:
            write_log(data, args.steps)
        policy = tmp / "policy.json"
        policy.write_text("{}")
        anchors, anchor_cpus, multis, decodes, rss, per = [], [], [], [], [], []
        decode_cpus: list[float] = []
        for run in range(args.runs):
            anchor, anchor_cpu, anchor_rss = _what_if(data, policy)
            figures = _multi(data, args.candidates, args.workers)
            anchors.append(anchor)
            anchor_cpus.append(anchor_cpu)
            multis.append(figures["wall"])
            decodes.append(figures["decode"])
            rss.append(figures["rss"])
            per.append(figures["cpu_per_candidate"])
            decode_cpus.append(figures["decode_cpu"])
            print(
                f"run {run + 1}: what-if {anchor:.1f} s ({anchor_cpu:.1f} s CPU,"
                f" {anchor_rss:.0f} MB peak so far); {args.candidates} candidates over"
                f" {int(figures['records']):,} records on {args.workers} processes"
                f" {figures['wall']:.1f} s (decode {figures['decode']:.1f} s,"
                f" {figures['decode_cpu']:.1f} s CPU; then {figures['cpu_per_candidate']:.2f} s"
                f" CPU per candidate), {figures['rss']:.0f} MB",
                flush=True,
            )
        ratios = [m / (a * args.candidates) for m, a in zip(multis, anchors, strict=True)]
        cpu_ratios = [p / a for p, a in zip(per, anchor_cpus, strict=True)]
        print(f"what-if (anchor) s: {_spread(anchors)}; CPU s: {_spread(anchor_cpus)}")
        print(f"multi-policy s: {_spread(multis)}; decode s: {_spread(decodes)}")
        print(f"CPU s per candidate (after decoding): {_spread(per)}")
        print(f"multi-policy peak MB (parent + worker): {_spread(rss)}")
        print(f"multi / ({args.candidates} x what-if): {_spread([r * 100 for r in ratios])} %")
        print(f"CPU per candidate / what-if CPU: {_spread([r * 100 for r in cpu_ratios])} %")
        # What the same work takes when the cores are the benchmark's alone: the decode on
        # one core, the candidates (prepass included) on --workers.
        alone = [
            d + p * args.candidates / args.workers for d, p in zip(decode_cpus, per, strict=True)
        ]
        print(f"on {args.workers} cores of its own (from the CPU times) s: {_spread(alone)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
