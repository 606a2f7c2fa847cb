"""``autoheal serve``: the health/status/metrics endpoint, optionally with a simulated workload.

Without ``--simulate`` it follows the data directory's audit log (a :class:`LiveView` rebuilt
every ``REFRESH_SECONDS``, writing nothing): decisions of every process sharing the directory
and operator moves show up within one interval, and ``/health``, ``/status`` and the
``autoheal.view.lag`` gauge say how fresh the view is.

With ``--simulate`` the simulated executor of the demo runs in the same process on the real
clock, cycling through healthy work, missing targets, failing postconditions, hangs, a worse
learned version and an application outage, so every dashboard panel has data to show. The
loop paces itself (``--pace`` seconds between steps) and stops on SIGINT/SIGTERM or after
``--duration`` seconds.
"""

from __future__ import annotations

import itertools
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..base._models import ExecutionState
from ..integrations import FailureCaseRecorder, PrecisionTracker
from ..policy._config import PolicyConfig
from ..runtime._manager import AutoHealManager
from ..server import AutoHealServer, LiveView, StatusSource, prometheus_meter_provider
from ..server._web_config import WebConfig
from ._common import Problem

__all__ = ["REFRESH_SECONDS", "run_serve"]

#: Seconds between two rebuilds of the followed log's view.
REFRESH_SECONDS = 2.0


def _simulate(manager: AutoHealManager, data_dir: Path, stop: threading.Event, pace: float) -> None:  # noqa: C901 — a scripted scenario, read top to bottom
    from ..sim import SimExecutor
    from ._demo import WORKFLOWS

    sim = SimExecutor(manager, data_dir, WORKFLOWS, seed=11)
    ids = [w.workflow_id for w in WORKFLOWS]
    steps = {w.workflow_id: w.steps for w in WORKFLOWS}

    def run(workflow_ids: list[str], rounds: int) -> None:
        for _ in range(rounds):
            for wid in workflow_ids:
                for step in steps[wid]:
                    if stop.wait(pace):  # allowed: pacing a simulated workload for scraping
                        return
                    sim.run_step(wid, step)

    phases = itertools.cycle(["healthy", "missing", "postcondition", "hang", "learning", "outage"])
    while not stop.is_set():
        phase = next(phases)
        if phase == "missing":
            sim.hide_target("submit")
            run(["invoice"], 4)
            sim.show_target("submit")
        elif phase == "postcondition":
            sim.fail_postconditions("click_save", 10)
            run(["onboarding"], 11)
        elif phase == "hang":
            sim.hang("click_print", 120.0, count=3)
            run(["shipping"], 4)
        elif phase == "learning":
            if manager.get_effective_settings("payroll").learning_enabled:
                sim.degrade_prototypes("payroll", 0.4, 1.5, reason="simulated learning")
            run(["payroll"], 4)
        elif phase == "outage":
            for target in ("vendor", "address", "employee"):
                sim.hide_target(target)
            run(["invoice", "shipping", "payroll"], 12)
            for target in ("vendor", "address", "employee"):
                sim.show_target(target)
        run(ids, 3)
        # The operator of this simulation releases everything between phases.
        manager.resume_all(reason="simulated operator", actor="autoheal-serve")
        for wid in ids:
            if manager.get_mode(wid) in (ExecutionState.QUARANTINED, ExecutionState.PAUSED):
                manager.force_transition(
                    wid, ExecutionState.RUNNING, reason="simulated operator", actor="autoheal-serve"
                )


def run_serve(
    host: str,
    port: int,
    data_dir: Path,
    policy: Path | None,
    simulate: bool,
    pace: float,
    duration: float | None,
    refresh_seconds: float = REFRESH_SECONDS,
    web: WebConfig | None = None,
) -> int:
    """Serve until interrupted (or ``duration`` seconds); return 0."""
    meter_provider, registry = prometheus_meter_provider()
    manager: AutoHealManager | None = None
    view: LiveView | None = None
    source: StatusSource
    if simulate:
        manager = source = AutoHealManager(
            policy=policy or PolicyConfig(),
            data_dir=data_dir,
            meter_provider=meter_provider,
            integrations=[FailureCaseRecorder(), PrecisionTracker()],
        )
    else:
        if not data_dir.is_dir():
            raise Problem(
                f"--data-dir {data_dir} is not a directory"
                + (" (it is a file)" if data_dir.exists() else " (it does not exist)"),
                "pass the data directory your robots write to (its audit/ folder holds the log)",
            )
        loaded = PolicyConfig.load(policy) if policy is not None else None
        view = source = LiveView(data_dir, loaded, refresh_seconds, meter_provider=meter_provider)
        view.start()
    try:
        server = AutoHealServer(source, host, port, registry=registry, web=web)
    except OSError:
        if view is not None:
            view.stop()
        if manager is not None:
            manager.close()
        raise
    server.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bound_host, bound_port = server.address
    print(
        f"autoheal serving {server.web.scheme}://{bound_host}:{bound_port}/health /status"
        " /metrics"
        + (f" (basic auth: {len(server.web.users)} users)" if server.web.auth else "")
        + (
            " (simulated workload running)"
            if simulate
            else f" (following {data_dir}, refreshed every {refresh_seconds:g} s)"
        ),
        flush=True,
    )
    worker = None
    if manager is not None:
        worker = threading.Thread(
            target=_simulate, args=(manager, data_dir, stop, pace), daemon=True
        )
        worker.start()
    stop.wait(duration)  # allowed: the server's main thread waits for a signal
    stop.set()
    if worker is not None:
        worker.join(timeout=30)
    server.stop()
    if manager is not None:
        manager.close()
    if view is not None:
        view.stop()
    meter_provider.shutdown()
    print("autoheal serve stopped", file=sys.stderr)
    return 0
