"""One fleet host as a process, driven line by line over stdin (the multi-host tests run several).

Usage: ``python -m tests.fleet_host <data_dir> <policy.json> [store]`` (``store``: with a
versioned store of one file component, ``model``). Each stdin line is a JSON list
``[command, *args]``; each answer is one JSON line on stdout. Commands: ``result wid step
outcome``, ``results wid step outcome n``, ``gate wid step``, ``gates wid step seconds`` (how many were admitted), ``mode wid``, ``wait_mode wid
state seconds``, ``sync seconds`` (until the queue is shipped), ``status``, ``snapshot text known_good``
(write ``text`` as the model, snapshot it; returns the set's label), ``model`` (the working
model's text and the store's current label), ``close``.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from autoheal_otel import AutoHealManager, Outcome, StepResult
from autoheal_otel.versioning import FileComponent, VersionedStore


def _wait(predicate: Any, seconds: float) -> bool:
    done = threading.Event()
    for _ in range(int(seconds * 200) + 1):  # bounded: 5 ms steps
        if predicate():
            return True
        done.wait(0.005)  # allowed: polling another thread's progress with a bound
    return bool(predicate())


def _result(outcome: str) -> StepResult:
    if outcome == "success":
        return StepResult(outcome=Outcome.SUCCESS, confidence=0.99, validated=True)
    return StepResult(outcome=Outcome(outcome), confidence=0.9)


def _gates(manager: AutoHealManager, wid: str, step: str, seconds: float) -> int:
    admitted = 0
    pause = threading.Event()
    for _ in range(int(seconds * 200)):
        admitted += manager.should_execute_step(wid, step)[0]
        pause.wait(0.005)  # allowed: a robot's pace between gates
    return admitted


def _snapshot(manager: AutoHealManager, model: FileComponent, text: str, good: bool) -> str:
    model.write_file("model.txt", text.encode())  # a new file: versions are hard links
    return str(manager.snapshot_artifacts("any", text, known_good=good).label)


def _model(manager: AutoHealManager, model: FileComponent) -> list[str | None]:
    current = manager.store.current() if manager.store is not None else None
    return [(model.working / "model.txt").read_text(), current.label if current else None]


def main() -> int:
    """Run one host until ``close`` or the end of stdin."""
    model = FileComponent("model")
    store = VersionedStore(sys.argv[1], [model]) if sys.argv[3:] == ["store"] else None
    manager = AutoHealManager(sys.argv[2], data_dir=sys.argv[1], store=store)
    link = manager.fleet
    out = sys.stdout
    print(json.dumps({"ready": manager.writer}), file=out, flush=True)
    for line in sys.stdin:
        cmd, *args = json.loads(line)
        answer: Any = None
        if cmd == "result":
            wid, step, outcome = args
            manager.on_step_result(wid, step, _result(outcome))
        elif cmd == "results":
            wid, step, outcome, n = args
            for _ in range(n):
                manager.on_step_result(wid, step, _result(outcome))
        elif cmd == "gates":
            answer = _gates(manager, *args)
        elif cmd == "gate":
            answer = manager.should_execute_step(*args)[0]
        elif cmd == "mode":
            answer = manager.get_mode(args[0]).value
        elif cmd == "wait_mode":
            wid, state, seconds = args
            answer = _wait(lambda w=wid, s=state: manager.get_mode(w).value == s, seconds)
        elif cmd == "sync":
            answer = _wait(lambda: link.connected and not link.status()["queued"], args[0])
        elif cmd == "status":
            answer = link.status()
        elif cmd == "snapshot":
            answer = _snapshot(manager, model, *args)
        elif cmd == "model":
            answer = _model(manager, model)
        elif cmd == "close":
            break
        print(json.dumps({"ok": answer}), file=out, flush=True)
    manager.close()
    print(json.dumps({"closed": True}), file=out, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
