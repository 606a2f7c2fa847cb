"""The fleet on loopback Redis: hook latency on vs off, propagation, Redis cost, 10x load.

Run: ``make bench`` (or ``.venv/bin/python bench/fleet.py``; ``--hosts 2 --seconds 1`` for a
smoke run). Host processes (own data directories) drive paced gate + result steps over many
workflows; the same run measures them with the fleet off and on in ``--repeat`` interleaved
pairs (the order alternates: off/on, on/off, ...), then in ``--repeat`` mixed phases (half
the hosts on, half off, at the same time, the halves swapping), then at 10x the rate. Figures are medians
over the hosts; each on/off ratio is taken within one pair and the figure is the median of
the pairs' ratios, so drift and neighbours on a shared machine hit both sides alike. Everything written lives in one temporary directory,
removed at the end (the redis-server included, stopped by its pid).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, StepResult

OK = StepResult(outcome=Outcome.SUCCESS, confidence=0.95, validated=True)
FAIL = StepResult(outcome=Outcome.POSTCONDITION_FAILED, confidence=0.9)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def worker(
    data_dir: str, policy: str, seconds: float, rate: float, workflows: int, fail: float
) -> None:
    """One host: paced steps for ``seconds``; prints its figures as one JSON line."""
    manager = AutoHealManager(policy, data_dir=data_dir)
    link = manager.fleet
    pace = threading.Event()
    if link is not None:
        for _ in range(2000):  # bounded: wait for the link (a few ms)
            if link.connected:
                break
            pace.wait(0.005)  # allowed: polling the link thread
    gates: list[float] = []
    results: list[float] = []
    every = max(1, round(1 / fail)) if fail > 0 else 0
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        wid = f"wf{i % workflows}"
        t0 = time.perf_counter()
        manager.should_execute_step(wid, "step")
        t1 = time.perf_counter()
        manager.on_step_result(wid, "step", FAIL if every and i % every == 0 else OK)
        t2 = time.perf_counter()
        gates.append(t1 - t0)
        results.append(t2 - t1)
        i += 1
        ahead = start + i / rate - time.perf_counter()
        if ahead > 0:
            pace.wait(ahead)  # allowed: a robot's pace between steps
    status = link.status() if link is not None else {}
    lags = list(link.lags) if link is not None else []
    manager.close()
    print(
        json.dumps(
            {
                "steps": i,
                "gate_p50": _quantile(gates, 0.5),
                "gate_p99": _quantile(gates, 0.99),
                "result_p50": _quantile(results, 0.5),
                "hook_max": max(max(gates, default=0), max(results, default=0)),
                "lags": lags,
                "dropped": status.get("dropped", 0),
                "shipped": status.get("shipped", 0),
            }
        ),
        flush=True,
    )


class Redis:
    """A redis-server in ``directory`` on a free loopback port (no persistence)."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench/fleet.py needs redis-server (make redis)")
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(directory),
             "--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log")],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        self.client = redis.Redis(port=self.port, decode_responses=True)
        for _ in range(2000):  # bounded: ~12 ms in practice
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                threading.Event().wait(0.005)  # allowed: polling a starting server
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def cpu_seconds(self) -> float:
        """Return the server's user + system CPU time so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the server by its pid."""
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def phase(tmp: Path, name: str, policy: PolicyConfig | list[PolicyConfig], args: argparse.Namespace, rate: float, fail: float) -> list[dict[str, Any]]:  # fmt: skip
    """Run every host for one phase (one policy each, or the same) and return their figures."""
    policies = policy if isinstance(policy, list) else [policy] * args.hosts
    procs = []
    for i in range(args.hosts):
        path = tmp / f"{name}-h{i}.json"
        policies[i].dump(path)
        command = [sys.executable, __file__, "--worker", str(tmp / name / f"h{i}"), str(path)]
        command += [str(args.seconds), str(rate), str(args.workflows), str(fail)]
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=args.seconds * 10 + 120)
        if proc.returncode != 0:
            raise SystemExit(f"a host of phase {name} failed")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def mover(redis: Redis, stop: threading.Event, every: float) -> None:
    """Publish a fleet operator move (pause / resume one workflow) every ``every`` seconds."""
    from autoheal_otel.base._models import ExecutionState
    from autoheal_otel.fleet import FleetStore
    from autoheal_otel.policy._fleet import FleetPolicy

    store = FleetStore(FleetPolicy(url=redis.url, namespace="bench", timeout_seconds=1.0))
    states = (ExecutionState.PAUSED, ExecutionState.RUNNING)
    n = 0
    while not stop.wait(every):  # allowed: the operator's pace
        store.operator("moved", states[n % 2], "bench", "propagation probe")
        n += 1
    store.close()


def mixed_ratios(
    tmp: Path, redis: Redis, policies: tuple[PolicyConfig, PolicyConfig], args: argparse.Namespace
) -> list[float]:
    """Half the hosts with the fleet on, half off, at the same time: gate p50 ratio per phase.

    Both halves share the same instants, neighbours and caches, so what differs is only what
    the fleet adds inside a host process; the halves swap from one phase to the next.
    """
    off, on = policies
    ratios: list[float] = []
    for r in range(args.repeat if args.hosts >= 2 else 0):
        sides = [(i + r) % 2 == 0 for i in range(args.hosts)]
        stop = threading.Event()
        thread = threading.Thread(target=mover, args=(redis, stop, 0.2), daemon=True)
        thread.start()
        hosts = phase(tmp, f"mixed{r}", [on if s else off for s in sides], args, args.rate, args.fail)  # fmt: skip
        stop.set()
        thread.join(timeout=10)
        p50 = {s: statistics.median(h["gate_p50"] for h, x in zip(hosts, sides, strict=True) if x is s) for s in (True, False)}  # fmt: skip
        ratios.append(p50[True] / p50[False])
    return ratios


def tight_loop(
    tmp: Path, base: dict[str, Any], fleet: dict[str, Any], number: int
) -> dict[str, float]:
    """Gate cost with the fleet off and on in one process, warm, interleaved (µs per gate)."""
    import timeit

    managers = {
        "off": AutoHealManager(PolicyConfig.from_dict(base), data_dir=tmp / "tight-off"),
        "on": AutoHealManager(PolicyConfig.from_dict({**base, "fleet": fleet}), data_dir=tmp / "tight-on"),
    }  # fmt: skip
    link = managers["on"].fleet
    pause = threading.Event()
    for _ in range(2000):  # bounded: wait for the link (a few ms)
        if link is not None and link.connected:
            break
        pause.wait(0.005)  # allowed: polling the link thread
    best: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(5):
        for name, manager in managers.items():
            gate = manager.should_execute_step
            runs = timeit.repeat(lambda g=gate: g("wf1", "step"), number=number, repeat=3)
            best[name].append(min(runs) / number * 1e6)
    for manager in managers.values():
        manager.close()
    return {name: statistics.median(values) for name, values in best.items()}


def main() -> None:
    """Run the three phases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--workflows", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--rate", type=float, default=125.0, help="steps/s per host")
    parser.add_argument("--fail", type=float, default=0.1, help="share of failing results")
    parser.add_argument("--repeat", type=int, default=5, help="off/on phase pairs")
    parser.add_argument("--number", type=int, default=20_000, help="gates per tight-loop run")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        d, p, seconds, rate, workflows, fail = args.worker
        worker(d, p, float(seconds), float(rate), int(workflows), float(fail))
        return
    high = {"failure_threshold": 10**9}
    base: dict[str, Any] = {
        "breakers": {
            "workflow": high,
            "global": high,
            "step": {"consecutive_low_confidence": 10**9},
        },
        "audit": {"record_allowed_gates": False},
    }
    with tempfile.TemporaryDirectory(prefix="autoheal-bench-fleet-") as temp:
        tmp = Path(temp)
        redis = Redis(tmp)
        try:
            fleet = {"enabled": True, "url": redis.url, "namespace": "bench", "min_hosts": 2}
            off: list[dict[str, Any]] = []
            on: list[dict[str, Any]] = []
            pairs: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
            cpu = 0.0
            off_policy = PolicyConfig.from_dict(base)
            on_policy = PolicyConfig.from_dict({**base, "fleet": fleet})
            for r in range(args.repeat):  # interleaved, so drift and neighbours hit both alike
                got: dict[str, list[dict[str, Any]]] = {}
                for side in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    if side == "off":
                        got[side] = phase(tmp, f"off{r}", off_policy, args, args.rate, args.fail)
                        continue
                    cpu0 = redis.cpu_seconds()
                    stop = threading.Event()
                    thread = threading.Thread(target=mover, args=(redis, stop, 0.2), daemon=True)
                    thread.start()
                    got[side] = phase(tmp, f"on{r}", on_policy, args, args.rate, args.fail)
                    stop.set()
                    thread.join(timeout=10)
                    cpu += redis.cpu_seconds() - cpu0
                off += got["off"]
                on += got["on"]
                pairs.append((got["off"], got["on"]))
            mixed = mixed_ratios(tmp, redis, (off_policy, on_policy), args)
            memory = redis.client.info("memory")
            tight = tight_loop(tmp, base, fleet, args.number)
            ten = {**fleet, "queue_size": 1000}
            over = phase(tmp, "10x", PolicyConfig.from_dict({**base, "fleet": ten}), args, args.rate * 10, args.fail)  # fmt: skip
        finally:
            redis.stop()
    med = statistics.median

    def pair_ratios(key: str) -> list[float]:
        return [med(h[key] for h in b) / med(h[key] for h in a) for a, b in pairs]

    gate_ratios, result_ratios = pair_ratios("gate_p50"), pair_ratios("result_p50")
    results_per_s = sum(h["steps"] for h in on) / args.seconds / args.repeat
    lags = [lag for h in on for lag in h["lags"]]
    figures = {
        "hosts": args.hosts,
        "workflows": args.workflows,
        "gate_p50_us": {"off": med(h["gate_p50"] for h in off) * 1e6, "on": med(h["gate_p50"] for h in on) * 1e6},
        "gate_p99_us": {"off": med(h["gate_p99"] for h in off) * 1e6, "on": med(h["gate_p99"] for h in on) * 1e6},
        "gate_tight_loop_us": tight,
        "gate_tight_loop_ratio_on_off": tight["on"] / tight["off"],
        "gate_p50_ratio_on_off": med(gate_ratios),
        "gate_p50_ratio_pairs": [round(x, 3) for x in gate_ratios],
        "gate_p50_ratio_mixed": med(mixed) if mixed else None,
        "gate_p50_ratio_mixed_phases": [round(x, 3) for x in mixed],
        "result_p50_ratio_on_off": med(result_ratios),
        "result_p50_ratio_pairs": [round(x, 3) for x in result_ratios],
        "propagation_ms": {"p50": _quantile(lags, 0.5) * 1e3, "p99": _quantile(lags, 0.99) * 1e3, "samples": len(lags)},
        "results_per_s": results_per_s,
        "redis_cpu_percent_per_1000_results_s": 100 * cpu / (args.seconds * args.repeat) / (results_per_s / 1000),
        "redis_used_memory_mb": memory["used_memory"] / 1e6,
        "x10": {
            "results_per_s": sum(h["steps"] for h in over) / args.seconds,
            "dropped": sum(h["dropped"] for h in over),
            "shipped": sum(h["shipped"] for h in over),
            "gate_p50_us": med(h["gate_p50"] for h in over) * 1e6,
            "gate_p99_us": med(h["gate_p99"] for h in over) * 1e6,
            "hook_max_ms": max(h["hook_max"] for h in over) * 1e3,
        },
    }  # fmt: skip
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
