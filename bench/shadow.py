"""What a shadow policy costs the hooks: gate + result pairs with and without a ShadowSink.

Each run drives ``--steps`` gate + result pairs (40 workflows, a rare failure) through a
manager with a durable audit log on a fake clock, once without and once with a
:class:`~autoheal_otel.lab.shadow.ShadowSink` (its shadow process follows the audit log),
alternating which goes first; the figure is the wall time of the hooks alone (how long the
shadow process still needed after the last hook to judge everything is printed apart, as
is how many gates it judged; the shadow is started and answering before the clock starts).
Prints the median and range over ``--runs`` of the per-pair time and the ratio
with/without, in the same run, and the ratio of the CPU time of the hooks' thread (what
the hooks themselves spent, whatever else the machine ran meanwhile).

Run: ``.venv/bin/python bench/shadow.py [--steps 20000] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from autoheal_otel import AutoHealManager, PolicyConfig, StepResult
from autoheal_otel.lab.shadow import ShadowSink
from autoheal_otel.testing import FakeClock

SHADOW = PolicyConfig.from_dict({"breakers": {"workflow": {"failure_threshold": 3}}})


def drive(data_dir: Path, steps: int, shadow: bool) -> tuple[float, float, int, float]:
    """Return (seconds in the hooks, seconds the shadow needed after them, gates judged, CPU
    seconds of the hooks' thread)."""
    rng = random.Random(1)
    clock = FakeClock()
    outcomes = ["success"] * 400 + ["target_not_found", "postcondition_failed"]
    results = {o: StepResult(outcome=o, confidence=0.9, validated=True) for o in outcomes}
    sink = ShadowSink(SHADOW, data_dir) if shadow else None
    with AutoHealManager(data_dir=data_dir, clock=clock) as m:
        if sink is not None:
            m.add_sink(sink)
            sink.sync()  # started and answering: its start-up is not a hook's cost
        started, cpu = time.perf_counter(), time.thread_time()
        for i in range(steps):
            clock.advance(1.0)
            wf, step = f"wf-{i % 40}", f"s{i % 7}"
            if m.should_execute_step(wf, step)[0]:
                m.on_step_result(wf, step, results[rng.choice(outcomes)])
        hooks, hooks_cpu = time.perf_counter() - started, time.thread_time() - cpu
        started = time.perf_counter()
        if sink is not None:
            m.flush()
            sink.sync()
        catch_up = time.perf_counter() - started
    return hooks, catch_up, sink.judged if sink is not None else 0, hooks_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    plain, shadowed, ratios, catch_ups, cpu_ratios = [], [], [], [], []
    for run in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="autoheal-bench-shadow-"))
        try:
            order = [False, True] if run % 2 == 0 else [True, False]
            got = {s: drive(tmp / str(s), args.steps, s) for s in order}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        a, b = got[False][0] / args.steps * 1e6, got[True][0] / args.steps * 1e6
        plain.append(a)
        shadowed.append(b)
        ratios.append(b / a)
        catch_ups.append(got[True][1])
        cpu_ratios.append(got[True][3] / got[False][3])
        print(f"run {run + 1}: without {a:.1f} us/pair, with shadow {b:.1f} us/pair"
              f" ({b / a:.2f}x), shadow catch-up after the hooks {got[True][1]:.2f} s,"
              f" {got[True][2]} gates judged; hooks' CPU with/without"
              f" {cpu_ratios[-1]:.2f}x")  # fmt: skip

    def spread(v: list[float], unit: str) -> str:
        return f"median {statistics.median(v):.2f}{unit} (range {min(v):.2f}-{max(v):.2f})"

    print(f"without: {spread(plain, ' us')}; with shadow: {spread(shadowed, ' us')}")
    print(f"with / without: {spread(ratios, 'x')}; catch-up: {spread(catch_ups, ' s')}")
    print(f"hooks' thread CPU time with / without: {spread(cpu_ratios, 'x')}")


if __name__ == "__main__":
    main()
