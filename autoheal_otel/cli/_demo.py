"""``autoheal demo``: a simulated executor with real FAISS matching, through every state.

Four workflows run on a simulated screen (a fake clock, so the whole day takes seconds):

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
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .._manager import AutoHealManager
from .._models import ExecutionState
from ..analytics import AuditAnalytics
from ..integrations import FailureCaseRecorder, MiniReportWriter, PrecisionTracker, render_report
from ..sim import SimExecutor, SimWorkflow
from ..testing import FakeClock
from ._common import Problem

__all__ = ["run_demo"]

MARKER = ".autoheal-demo"
WORKFLOWS = [
    SimWorkflow.of("invoice", "vendor", "amount", "due_date", "submit", "confirm"),
    SimWorkflow.of("onboarding", "name", "email", "team", "save", "welcome"),
    SimWorkflow.of("payroll", "employee", "hours", "rate", "approve", "export"),
    SimWorkflow.of("shipping", "address", "carrier", "label", "print", "done"),
]
_STATE_COLOR = {
    "running": "32",
    "degraded": "33",
    "quarantined": "31",
    "rollback": "35",
    "paused": "90",
}


class _Table:
    """The live table of workflow states (redrawn in place on a terminal)."""

    def __init__(self, manager: AutoHealManager, live: bool) -> None:
        self.manager = manager
        self.live = live
        self.lines = 0

    def draw(self, act: str) -> None:
        report = self.manager.get_status_report()
        rows = [
            f"  {act}",
            f"  {'workflow':<12} {'state':<12} {'failures (10 min)':<18} {'version':<9} reason",
        ]
        for wid, wf in sorted(report.workflows.items()):
            state = wf.state.value
            shown = (
                f"\x1b[{_STATE_COLOR[state]}m{state:<12}\x1b[0m" if self.live else f"{state:<12}"
            )
            reason = "" if wf.state is ExecutionState.RUNNING else wf.reason[:60]
            rows.append(
                f"  {wid:<12} {shown} {wf.window.count:>3}/{wf.window.threshold:<14} "
                f"{(wf.settings and self.manager.get_artifact_version(wid)) or '-':<9} {reason}"
            )
        g = report.global_
        rows.append(f"  global health: {g.health}" + (f" — {g.reason}" if g.paused else ""))
        if self.live and self.lines:
            sys.stdout.write(f"\x1b[{self.lines}F\x1b[J")
        sys.stdout.write("\n".join(rows) + "\n")
        sys.stdout.flush()
        self.lines = len(rows) if self.live else 0


def _otel_from_env() -> tuple[Any, Any, Any, Callable[[], None]]:
    """Set up OTLP exporters when OTEL_EXPORTER_OTLP_ENDPOINT is set; else no telemetry."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
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

    resource = Resource.create({"service.name": "autoheal-demo"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(), 5000)],
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))

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
    tracer_provider, meter_provider, logger_provider, shutdown = _otel_from_env()
    failure_cases = FailureCaseRecorder()
    reports = MiniReportWriter(scenario={"run": "autoheal demo", "workflows": len(WORKFLOWS)})
    precision = PrecisionTracker(min_samples=20)
    manager = AutoHealManager(
        data_dir=data_dir,
        clock=clock,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        integrations=[failure_cases, reports, precision],
    )
    sim = SimExecutor(manager, data_dir, WORKFLOWS, seed=7)
    table = _Table(manager, live and not as_json)
    ids = [w.workflow_id for w in WORKFLOWS]

    def act(title: str) -> None:
        if as_json:
            return
        table.draw(title)
        if not live:
            print()

    sim.run_many(ids, rounds=4)
    act("1. all four workflows healthy")

    sim.hide_target("submit")
    sim.run("invoice", rounds=3)
    act("2. invoice: the submit button is gone -> 3 x TARGET_NOT_FOUND -> DEGRADED")
    sim.show_target("submit")
    sim.run("invoice", rounds=2)
    act("2. invoice: it is back -> 5 validated successes -> RUNNING")

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
    act("4. payroll: worse prototypes learned -> success rate drops -> ROLLBACK -> DEGRADED")
    sim.run("payroll", rounds=2)
    act("4. payroll: known-good prototypes restored -> RUNNING")

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
    manager.close()
    shutdown()

    markdown, page = render_report(data_dir, title="autoheal demo: every workflow")
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
    print("\nDuckDB summary of the audit log (autoheal query summary):")
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
    print(f"done in {elapsed:.1f} s. Outputs:")
    print(f"  audit log      {outputs['audit_log']}/")
    for case in outputs["failure_cases"][:3]:
        print(f"  failure case   {case}")
    print(
        f"  HTML report    {outputs['overall_report']}  (+{len(outputs['reports'])} per-trip reports in {data_dir / 'reports'}/)"
    )
    print(
        f"  versions       {outputs['versions']}/  (autoheal versions list --data-dir {data_dir})"
    )
    print(
        f"  try: autoheal status --data-dir {data_dir}  |  autoheal query transitions --data-dir {data_dir}"
    )
    return 0
