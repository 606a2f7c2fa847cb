"""What the Robot Framework listener costs: suite wall time with and without it, per keyword.

Run: ``.venv/bin/python bench/robot_listener.py [--tasks 20] [--steps 50] [--rounds 7]
[--browser]``. A suite of ``tasks × steps`` trivial Python keywords runs in-process (RF's
``robot.run``, no output files) alternately without and with the listener (a fresh data
directory each time: the audit log is really written). Figures are medians of interleaved
rounds in this one process, with the ratio to the run without the listener, so a noisy shared
machine moves both alike. ``--browser`` also times the example suite on headless Chromium
(the ``robot`` command, a few rounds each way).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import robot

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = """class BenchLib:
    ROBOT_LIBRARY_SCOPE = "GLOBAL"

    def step(self, n):
        return n
"""


def _suite(folder: Path, tasks: int, steps: int) -> Path:
    (folder / "BenchLib.py").write_text(LIBRARY, encoding="utf-8")
    lines = ["*** Settings ***", f"Library    {folder / 'BenchLib.py'}", "", "*** Tasks ***"]
    for t in range(tasks):
        lines.append(f"Task {t}")
        lines.extend(f"    Step    {s}" for s in range(steps))
    path = folder / "bench.robot"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(suite: Path, listener: str | None) -> float:
    options = {"listener": listener} if listener else {}
    started = time.perf_counter()
    rc = robot.run(
        str(suite),
        output="NONE",
        log="NONE",
        report="NONE",
        rpa=True,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        **options,
    )
    elapsed = time.perf_counter() - started
    if rc != 0:
        raise SystemExit(f"the bench suite failed (rc {rc})")
    return elapsed


def bench_in_process(tasks: int, steps: int, rounds: int) -> None:
    """Time the trivial suite without and with the listener; print medians and overhead."""
    with tempfile.TemporaryDirectory(prefix="autoheal-robot-bench-") as tmp:
        folder = Path(tmp)
        suite = _suite(folder, tasks, steps)
        _run(suite, None)  # warm RF's imports
        without: list[float] = []
        with_listener: list[float] = []
        for r in range(rounds):
            data = folder / f"data-{r}"
            listener = f"autoheal_otel.robot.AutoHealListener;data_dir={data}"
            without.append(_run(suite, None))
            with_listener.append(_run(suite, listener))
            shutil.rmtree(data, ignore_errors=True)
    keywords = tasks * steps
    a, b = statistics.median(without), statistics.median(with_listener)
    print(f"suite of {tasks} tasks x {steps} keywords ({keywords} steps), {rounds} rounds")
    print(f"  without the listener: {a * 1000:8.1f} ms  ({a / keywords * 1e6:6.1f} us/keyword)")
    print(f"  with the listener:    {b * 1000:8.1f} ms  ({b / keywords * 1e6:6.1f} us/keyword)")
    print(
        f"  ratio: {b / a:.2f}x; listener overhead per keyword: {(b - a) / keywords * 1e6:.1f} us"
    )


def bench_browser(rounds: int) -> None:
    """Time the example suite on headless Chromium with and without the listener."""
    sys.path.insert(0, str(ROOT / "examples" / "robot"))
    from app import serve  # the example's application

    robot_cmd = str(Path(sys.executable).with_name("robot"))
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="autoheal-robot-bench-") as tmp:
        # The example's policy slows DEGRADED by 100 ms a command; time the listener alone.
        policy = json.loads((ROOT / "examples/robot/policy.json").read_text(encoding="utf-8"))
        policy["degraded"]["step_delay_ms"] = 0
        policy.pop("$schema")
        Path(tmp, "policy.json").write_text(json.dumps(policy), encoding="utf-8")
        for r in range(rounds):
            for gated in (False, True):
                app, url = serve()
                command = [
                    robot_cmd, "--rpa", "--outputdir", tmp, "--output", "NONE",
                    "--log", "NONE", "--report", "NONE",
                    "--console", "none", "--variable", f"URL:{url}",
                    "--variable", f"PROFILE:{tmp}/profile-{r}-{gated}",
                ]  # fmt: skip
                if gated:
                    command += [
                        "--listener",
                        f"autoheal_otel.robot.AutoHealListener;data_dir={tmp}/data-{r};"
                        f"policy={tmp}/policy.json;workflow=tag",
                    ]
                started = time.perf_counter()
                subprocess.run([*command, str(ROOT / "examples/robot/tasks.robot")], check=False)
                times[gated].append(time.perf_counter() - started)
                app.shutdown()
                app.server_close()
    a, b = statistics.median(times[False]), statistics.median(times[True])
    print(f"example suite on headless Chromium (10 tasks, robot command), {rounds} rounds")
    print(f"  without the listener: {a:6.2f} s   with: {b:6.2f} s   ratio {b / a:.2f}x")
    print("  (DEGRADED's step delay set to 0; the quarantined last task is skipped when gated)")


def main() -> None:
    """Parse the options and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--browser", action="store_true", help="also time the example suite")
    args = parser.parse_args()
    bench_in_process(args.tasks, args.steps, args.rounds)
    if args.browser:
        bench_browser(max(3, args.rounds // 2))


if __name__ == "__main__":
    main()
