"""``autoheal demo``: a simulated executor with real FAISS matching, through every state.

Four workflows run on a simulated screen, on a fake clock: about ten minutes of robot time
(the failure windows are 10 minutes long) pass in about a second of real time.

1. everything is healthy;
2. ``invoice`` loses its submit button: 3 x TARGET_NOT_FOUND -> DEGRADED, it comes back, 5
   validated successes -> RUNNING;
3. ``onboarding``'s postconditions keep failing: 10 failures in 10 minutes -> QUARANTINED,
   with a failure case and a report;
4. ``payroll`` learns worse prototypes: FAISS confidences drop, the success rate drops ->
   ROLLBACK to the known-good set -> DEGRADED -> RUNNING;
5. the application goes down for everyone: quarantines pile up -> the global breaker PAUSES
   every workflow; an operator checks and resumes.

It leaves the audit log, a DuckDB summary, the failure case, the HTML reports and the
versioned artifacts in the data directory, and says where they are.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..analytics import AuditAnalytics
from ..base._models import ExecutionState
from ..integrations import FailureCaseRecorder, MiniReportWriter, PrecisionTracker, render_report
from ..policy._config import PolicyConfig
from ..runtime._manager import AutoHealManager
from ..sim import SimExecutor, SimWorkflow
from ..testing import FakeClock
from ._common import Problem, command_name
from ._demo_screen import DemoScreen

__all__ = ["run_demo"]

MARKER = ".autoheal-demo"
WORKFLOWS = [
    SimWorkflow.of("invoice", "vendor", "amount", "due_date", "submit", "confirm"),
    SimWorkflow.of("onboarding", "name", "email", "team", "save", "welcome"),
    SimWorkflow.of("payroll", "employee", "hours", "rate", "approve", "export"),
    SimWorkflow.of("shipping", "address", "carrier", "label", "print", "done"),
]


def _reachable(endpoint: str) -> bool:
    """Tell whether anything accepts connections at the collector's address (1 s at most)."""
    parts = urlsplit(endpoint if "//" in endpoint else f"http://{endpoint}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 4318)
        with socket.create_connection((parts.hostname or "localhost", port), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def _otel_from_env() -> tuple[Any, Any, Any, Callable[[], None]]:
    """Set up OTLP exporters when OTEL_EXPORTER_OTLP_ENDPOINT is set; else no telemetry.

    An endpoint that refuses connections gets one warning line and no exporters (each
    exporter would otherwise retry with back-off for its whole timeout, batch after batch);
    the exporters' timeouts are short (2 s unless OTEL_EXPORTER_OTLP_TIMEOUT says otherwise)
    so a collector that goes away mid-run cannot stall the demo for long either.
    """
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return None, None, None, lambda: None
    if not _reachable(endpoint):
        print(
            f"autoheal: warning: no OTLP collector answers at {endpoint}; "
            "running the demo without exporting telemetry",
            file=sys.stderr,
        )
        return None, None, None, lambda: None
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    timeout = None if os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT") else 2.0
    resource = Resource.create({"service.name": "autoheal-demo"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=timeout)))
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(timeout=timeout), 5000)],
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(timeout=timeout))
    )

    def shutdown() -> None:
        for provider in (tracer_provider, meter_provider, logger_provider):
            provider.shutdown()

    return tracer_provider, meter_provider, logger_provider, shutdown


def _prepare(data_dir: Path) -> None:
    if data_dir.exists() and not data_dir.is_dir():
        raise Problem(f"--data-dir {data_dir} is a file", "choose a folder for the demo's outputs")
    if data_dir.exists():
        if not (data_dir / MARKER).exists() and any(data_dir.iterdir()):
            raise Problem(
                f"{data_dir} exists and is not a demo directory (the demo replaces its folder)",
                "choose another --data-dir",
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("created by `autoheal demo`; removed by the next run\n")


def run_demo(
    data_dir: str | Path = "demo-data", *, as_json: bool = False, live: bool | None = None
) -> int:
    """Run the demo; print progress, then where its outputs are. Return 0."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    _prepare(data_dir)
    live = sys.stdout.isatty() if live is None else live
    # The simulated day ends before now, so what an operator does afterwards (with the real
    # clock) comes after it in the log.
    clock = FakeClock(start=datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    t0 = clock.now()
    tracer_provider, meter_provider, logger_provider, shutdown = _otel_from_env()
    failure_cases = FailureCaseRecorder()
    reports = MiniReportWriter(scenario={"run": "autoheal demo", "workflows": len(WORKFLOWS)})
    precision = PrecisionTracker(min_samples=20)
    manager = AutoHealManager(
        # Demo data is shared on purpose: the observability stack's collector runs as another
        # user and ships this log (a real robot keeps the default, 0600).
        policy=PolicyConfig.from_dict({"audit": {"file_mode": "0644"}}),
        data_dir=data_dir,
        clock=clock,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        integrations=[failure_cases, reports, precision],
    )
    sim = SimExecutor(manager, data_dir, WORKFLOWS, seed=7)
    screen = DemoScreen(manager, live and not as_json)
    if not as_json:
        manager.add_sink(screen)
    ids = [w.workflow_id for w in WORKFLOWS]

    def act(title: str) -> None:
        if not as_json:
            screen.phase(title)

    sim.run_many(ids, rounds=4)
    act("1. all four workflows healthy")

    sim.hide_target("submit")
    sim.run("invoice", rounds=3)
    act("2a. invoice: the submit button is gone -> 3 x TARGET_NOT_FOUND -> DEGRADED")
    sim.show_target("submit")
    sim.run("invoice", rounds=2)
    act("2b. invoice: it is back -> 5 validated successes -> RUNNING")

    sim.fail_postconditions("click_save", 10)
    sim.run("onboarding", rounds=10)
    act("3. onboarding: the save button stopped saving -> 10 failures -> QUARANTINED")

    sim.run("payroll", rounds=2)
    sim.degrade_prototypes(
        "payroll", fraction=0.4, noise=1.5, reason="learned from blurry screenshots"
    )
    for step in [s for _ in range(4) for s in WORKFLOWS[2].steps]:
        sim.run_step("payroll", step)
        if manager.get_mode("payroll") is ExecutionState.DEGRADED:
            break
    act("4a. payroll: worse prototypes learned -> success rate drops -> ROLLBACK -> DEGRADED")
    sim.run("payroll", rounds=2)
    act("4b. payroll: known-good prototypes restored -> RUNNING")

    for target in ("vendor", "address", "employee"):
        sim.hide_target(target)
    sim.run_many(["invoice", "shipping", "payroll"], rounds=12)
    act("5. the application is down: quarantines pile up -> global PAUSE")
    for target in ("vendor", "address", "employee"):
        sim.show_target(target)
    released = manager.resume_all(reason="application back up", actor="demo-operator")
    for wid in ids:
        if manager.get_mode(wid) is ExecutionState.QUARANTINED:
            manager.force_transition(
                wid, ExecutionState.RUNNING, reason="checked", actor="demo-operator"
            )
    sim.run_many(ids, rounds=2)
    act("6. an operator checked, resumed every workflow and released the quarantines")
    simulated = (clock.now() - t0).total_seconds()
    manager.close()
    shutdown()

    markdown, page = render_report(
        data_dir, title="autoheal demo: every workflow", link_from=data_dir
    )
    (data_dir / "report.md").write_text(markdown, encoding="utf-8")
    (data_dir / "report.html").write_text(page, encoding="utf-8")
    with AuditAnalytics(data_dir) as db:
        summary = db.query("summary")
        transitions = db.query("transitions", workflow_id="")
    elapsed = time.perf_counter() - started
    outputs = {
        "audit_log": str(data_dir / "audit"),
        "failure_cases": [str(p) for p in failure_cases.cases],
        "reports": [str(p) for p in reports.reports],
        "overall_report": str(data_dir / "report.html"),
        "versions": str(data_dir / "versions"),
        "target_memory": str(data_dir / "target_memory.sqlite"),
    }
    if as_json:
        print(
            json.dumps(
                {
                    "seconds": round(elapsed, 2),
                    "simulated_seconds": round(simulated, 1),
                    "released": released,
                    "summary": summary,
                    "transitions": len(transitions),
                    "precision": precision.summary(),
                    "outputs": outputs,
                },
                default=str,
            )
        )
        return 0
    print("\nDuckDB summary of the audit log (query `summary`):")
    print(
        f"  {'workflow':<12} {'decisions':>9} {'results':>8} {'failures':>8} {'blocked':>8} {'transitions':>11}"
    )
    for r in summary:
        print(
            f"  {r['workflow_id']:<12} {r['decisions']:>9} {r['results']:>8} {r['failures']:>8} "
            f"{r['blocked_gates']:>8} {r['transitions']:>11}"
        )
    states = sorted({t["state"] for t in transitions})
    print(f"\n{len(transitions)} transitions through: {', '.join(states)}")
    print(f"done: {simulated / 60:.0f} minutes of robot time (on a fake clock) in {elapsed:.1f} s.")
    print("  (the fake clock started a day ago: what you do next comes after it in the log)")
    print(f"  audit log      {outputs['audit_log']}/")
    print(f"  failure cases  {len(failure_cases.cases)} in {data_dir / 'failure_cases'}/")
    print(f"  HTML report    {outputs['overall_report']} (a timeline; links to the")
    print(
        f"                 {len(outputs['reports'])} per-trip reports in {data_dir / 'reports'}/)"
    )
    print(f"  versions       {outputs['versions']}/")
    cmd = command_name()
    print("next:")
    for hint in ("status", "query transitions", "versions list", "report --out report.md"):
        print(f"  {cmd} {hint} --data-dir {data_dir}")
    if cmd != "autoheal":
        activate = f"{Path(cmd).parent}/activate"
        line = f"  (or `source {activate}` once, then plain `autoheal`)"
        # Within 80 columns whatever the clone's path: the path goes on a line of its own.
        print(
            line
            if len(line) <= 80
            else f"  (or, once, then plain `autoheal`:\n   source {activate})"
        )
    return 0
