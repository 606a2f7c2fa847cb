"""The chaos run's fleet rounds: writer hosts on one real Redis that is killed again and again.

In a round, ``hosts`` writer processes (each with its own data directory and the fleet on)
run the hooks at a robot's pace while this process SIGKILLs ``redis-server`` at random
instants and starts it again empty (no persistence), at once or after a while down. Each
writer times every hook and counts any that raised; at its deadline it waits (bounded) for
its link to reconnect and ship, closes its manager and writes its figures. Then every host's
data directory gets the chaos run's checks (acknowledged decisions exactly once, replay).
Imported by ``bench/chaos.py``; not a benchmark of its own.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoheal_otel import AutoHealManager, ExecutionState, PolicyConfig, StepResult

__all__ = ["fleet_rounds", "fleet_summary"]

OUTCOMES = ["success"] * 8 + ["target_not_found", "postcondition_failed", "watchdog_timeout"]
#: Seconds between two steps of a writer (a robot's pace, so hooks are timed, not queued).
PACE_S = 0.002


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05) as s:
            s.settimeout(0.05)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class _Redis:
    """One redis-server without persistence on a fixed loopback port, killed by its pid."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make redis)")
        self.binary = binary
        self.folder = folder
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.folder), "--save", "", "--appendonly", "no",
                "--logfile", str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(4000):  # bounded: a few ms in practice
            if _answers(self.port):
                return
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _policy(url: str, host: str) -> PolicyConfig:
    return PolicyConfig.from_dict(
        {
            "breakers": {
                "global": {"failure_threshold": 100_000, "quarantined_workflows_threshold": 100}
            },
            "fleet": {
                "enabled": True,
                "url": url,
                "namespace": "chaos",
                "host_id": host,
                "ship_interval_seconds": 0.02,
                "reconnect_seconds": 0.1,
                "block_seconds": 0.5,
            },
        }
    )


def _timed(durations: list[float], errors: list[str], call: Callable[..., Any], *args: Any) -> Any:
    started = time.perf_counter()
    try:
        return call(*args)
    except Exception as exc:  # counted: a hook must never raise
        errors.append(f"{type(exc).__name__}: {exc}"[:200])
        return None
    finally:
        durations.append(time.perf_counter() - started)


def _writer(host_dir: Path, url: str, host: str, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    manager = AutoHealManager(policy=_policy(url, host), data_dir=host_dir / "data")
    acks = os.open(host_dir / f"acks-{manager.writer}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    durations: list[float] = []
    errors: list[str] = []
    pause = threading.Event()
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        wid, step = f"wf{rng.randrange(5)}", f"s{rng.randrange(4)}"
        answer = _timed(durations, errors, manager.should_execute_step, wid, step)
        if not answer or not answer[0]:
            if rng.random() < 0.05:
                manager.force_transition(wid, ExecutionState.RUNNING, reason="chaos operator")
            pause.wait(PACE_S)  # allowed: a robot's pace
            continue
        n += 1
        result = StepResult(
            outcome=rng.choice(OUTCOMES),
            confidence=rng.uniform(0.6, 1.0),
            validated=True,
            details={"ack": n},
        )
        raised = len(errors)
        _timed(durations, errors, manager.on_step_result, wid, step, result)
        if len(errors) == raised:
            os.write(acks, f"{n}\n".encode())  # acknowledged: the hook returned
        pause.wait(PACE_S)  # allowed: a robot's pace
    link = manager.fleet
    assert link is not None
    converged = False
    for _ in range(1000):  # bounded: up to 10 s for the link to come back and ship
        if link.connected and not link.status()["queued"]:
            converged = True
            break
        pause.wait(0.01)  # allowed: waiting on the link's threads, with a bound
    status = link.status()
    manager.close()
    durations.sort()
    figures = {
        "hooks": len(durations),
        "raised": len(errors),
        "first_error": errors[0] if errors else None,
        "p50_us": round(durations[len(durations) // 2] * 1e6, 1) if durations else None,
        "p99_us": round(durations[int(len(durations) * 0.99)] * 1e6, 1) if durations else None,
        "max_ms": round(durations[-1] * 1e3, 2) if durations else None,
        "converged": converged,
        "dropped": status["dropped"],
        "applied": status["applied"],
    }
    (host_dir / "hooks.json").write_text(json.dumps({**figures, "durations": durations[-50:]}))


def _fork(target: Callable[..., None], *args: Any) -> int:
    pid = os.fork()
    if pid == 0:  # the child: run, and never return into the parent's code
        code = 0
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)  # the link's warnings about a dead Redis are expected here
            target(*args)
        except BaseException:
            code = 3
        os._exit(code)
    return pid


def _wait(seconds: float) -> None:
    select.select([], [], [], seconds)  # allowed: the chaos schedule


def _round(folder: Path, hosts: int, seconds: float, rng: random.Random) -> dict[str, Any]:
    redis = _Redis(folder)
    redis.start()
    url = f"redis://127.0.0.1:{redis.port}/0"
    pids = []
    for i in range(hosts):
        (folder / f"h{i}" / "data").mkdir(parents=True)
        pids.append(_fork(_writer, folder / f"h{i}", url, f"h{i}", seconds, rng.randrange(2**31)))
    kills = restarts_late = 0
    deadline = time.monotonic() + seconds
    try:
        while True:
            _wait(rng.uniform(0.1, 0.6))
            if time.monotonic() >= deadline - 0.5:
                break
            redis.kill()
            kills += 1
            if rng.random() < 0.5:  # down for a while, then back empty
                restarts_late += 1
                _wait(rng.uniform(0.05, 0.5))
            redis.start()
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    finally:
        redis.kill()
    return {"redis_kills": kills, "down_a_while": restarts_late, "writer_exits": codes}


def fleet_rounds(
    root: Path, rounds: int, hosts: int, seconds: float, seed: int, check: Callable[..., Any]
) -> list[dict[str, Any]]:
    """Run the fleet rounds; return one entry per host and round (its checks and hook figures)."""
    rng = random.Random(seed)
    out = []
    for r in range(rounds):
        folder = root / f"fleet-round{r:02d}"
        folder.mkdir(parents=True)
        facts = _round(folder, hosts, seconds, rng)
        print(json.dumps({"round": folder.name, **facts}), flush=True)
        for i in range(hosts):
            host_dir = folder / f"h{i}"
            hooks_file = host_dir / "hooks.json"
            hooks = json.loads(hooks_file.read_text()) if hooks_file.exists() else {"error": 1}
            hooks.pop("durations", None)
            entry = {"round": f"{folder.name}/h{i}", **facts, "hooks": hooks, **check(host_dir)}
            out.append(entry)
            print(json.dumps(entry), flush=True)
    return out


def fleet_summary(entries: list[dict[str, Any]], budget_ms: float) -> tuple[str, bool]:
    """Return the fleet rounds' figures as text, and whether every check held."""
    seen_rounds: dict[str, int] = {}
    for e in entries:
        seen_rounds[e["round"].split("/")[0]] = e["redis_kills"]
    hooks = [e["hooks"] for e in entries]
    raised = sum(h.get("raised", 1) for h in hooks)
    slowest = max((h.get("max_ms") or 0.0 for h in hooks), default=0.0)
    p99 = max((h.get("p99_us") or 0.0 for h in hooks), default=0.0)
    over = slowest > budget_ms
    lost = sum(e[s]["missing"] for e in entries for s in ("before_compaction", "after_compaction"))
    doubled = sum(
        e[s]["doubled"] for e in entries for s in ("before_compaction", "after_compaction")
    )
    equal = sum(1 for e in entries if e["replay"]["matches"])
    converged = sum(1 for h in hooks if h.get("converged"))
    exits = [c for e in entries for c in e["writer_exits"]]
    text = (
        f"  fleet: {sum(seen_rounds.values())} kill -9 of redis-server (restarted empty) in"
        f" {len(seen_rounds)} rounds x {len(entries) // max(1, len(seen_rounds))} hosts\n"
        f"    acknowledged decisions: {sum(e['acked'] for e in entries)}, lost {lost},"
        f" doubled {doubled}; replay equal to the log: {equal}/{len(entries)} hosts\n"
        f"    hooks: {sum(h.get('hooks', 0) for h in hooks)} calls, raised {raised},"
        f" worst p99 {p99:.0f} us, slowest {slowest:.1f} ms (budget {budget_ms:g} ms);"
        f" links converged after the last restart: {converged}/{len(hooks)}"
    )
    ok = not (raised or over or lost or doubled or any(exits)) and converged == len(hooks)
    return text, ok
