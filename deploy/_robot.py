"""One robot host of `make prod-check`: the simulated executor (real FAISS) in its own process.

Usage: ``python deploy/_robot.py DATA_DIR POLICY_FILE CONTROL_DIR`` with ``AUTOHEAL_HOST_ID``
set. It runs the demo's four workflows step after step on the real clock through an
:class:`AutoHealManager` whose policy (the path: hot-reloaded) joins the fleet. It reads
``CONTROL_DIR/control.json`` between rounds (``{"outage": bool, "hold": bool}``: hide every
target / stop stepping) and writes ``CONTROL_DIR/status.json`` (atomically) with what it did:
steps, failures reported, blocked gates, its global pause, its fleet link, its policy version
and each workflow's mode. SIGTERM closes the manager cleanly (the last status says
``closed``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from autoheal_otel import AutoHealManager, Outcome
from autoheal_otel.cli._demo import WORKFLOWS
from autoheal_otel.sim import SimExecutor

PACE_S = 0.02


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def main() -> int:
    """Run until SIGTERM."""
    data_dir, policy, control = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    manager = AutoHealManager(policy=policy, data_dir=data_dir)
    sim = SimExecutor(
        manager, data_dir, WORKFLOWS, seed=sum(map(ord, os.environ["AUTOHEAL_HOST_ID"]))
    )
    targets = sorted({s.target_id for w in WORKFLOWS for s in w.steps})
    counts = {"steps": 0, "failures": 0, "blocked": 0}
    outage = False
    last_status = 0.0

    def status(**extra: Any) -> dict[str, Any]:
        report = manager.get_status_report()
        link = manager.fleet
        data = {
            "pid": os.getpid(),
            "ready_s": round(ready_s, 3),
            **counts,
            "outage": outage,
            "paused": report.global_.paused,
            "connected": bool(link is not None and link.connected),
            "link_reason": link.last_error if link is not None else None,
            "propagation_p50_ms": link.status()["propagation_p50_ms"] if link else None,
            "policy_version": manager.policy.version,
            "modes": {w.workflow_id: manager.get_mode(w.workflow_id).value for w in WORKFLOWS},
            **extra,
        }
        _write(control / "status.json", data)
        return data

    ready_s = time.monotonic() - started
    status()
    while not stop.is_set():
        try:
            wanted = json.loads((control / "control.json").read_text())
        except (OSError, ValueError):
            wanted = {}
        if wanted.get("outage", False) != outage:
            outage = bool(wanted.get("outage"))
            for target in targets:
                (sim.hide_target if outage else sim.show_target)(target)
        holding = bool(wanted.get("hold", False))
        if not holding:
            for workflow in WORKFLOWS:
                for step in workflow.steps:
                    record = sim.run_step(workflow.workflow_id, step)
                    if not record.allowed:
                        counts["blocked"] += 1
                    else:
                        counts["steps"] += 1
                        if record.outcome is not None and record.outcome is not Outcome.SUCCESS:
                            counts["failures"] += 1
                    if stop.wait(PACE_S):  # allowed: a robot's pace between steps
                        break
        if time.monotonic() - last_status > 0.2 or holding:
            last_status = time.monotonic()
            status(holding=holding)
        if holding:
            stop.wait(0.1)  # allowed: an idle robot polls its control file
    last = status()
    manager.close()
    _write(control / "status.json", {**last, "closed": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
