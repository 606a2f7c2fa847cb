"""Integrations: optional and contained — every subset, working or raising, decides the same."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, DecisionEvent, Outcome, StepResult
from autoheal_otel.integrations import FailureCaseRecorder, MiniReportWriter, PrecisionTracker
from autoheal_otel.sim import SimExecutor, SimWorkflow
from autoheal_otel.testing import FakeClock, InMemorySink

WORKFLOW = SimWorkflow.of("invoice", "vendor", "amount", "submit")
FACTORIES = {
    "cases": FailureCaseRecorder,
    "reports": MiniReportWriter,
    "precision": PrecisionTracker,
}


class Raising:
    """Wrap an integration so that every call raises after binding."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def bind(self, manager: AutoHealManager) -> None:
        self.inner.bind(manager)
        raise RuntimeError("integration broke while binding")

    def emit(self, event: DecisionEvent) -> None:
        raise RuntimeError("integration broke")

    def flush(self) -> None:
        raise RuntimeError("integration broke")

    def close(self) -> None:
        raise RuntimeError("integration broke")


def scenario(data_dir: Path, integrations: list[Any]) -> list[tuple[Any, ...]]:
    """Drive a short scenario; return every decision's (kind, workflow, state, allowed, reason).

    Calibration records are left out: they are the precision tracker's own recorded decisions
    (the scenario's executor does not apply per-method thresholds).
    """
    sink = InMemorySink()
    manager = AutoHealManager(data_dir=data_dir, clock=FakeClock(), sinks=[sink])
    for integration in integrations:
        try:
            manager.add_integration(integration)
        except RuntimeError:
            manager.add_sink(integration)  # a bind that raises still leaves a (broken) sink
    sim = SimExecutor(manager, data_dir, [WORKFLOW], seed=5)
    sim.run("invoice", 2)
    sim.hide_target("submit")
    sim.run("invoice", 4)
    sim.show_target("submit")
    sim.fail_postconditions("click_vendor", 12)
    sim.run("invoice", 12)
    manager.close()
    return [
        (e.kind, e.workflow_id, e.state, e.allowed, e.reason)
        for e in sink.events
        if e.kind not in ("session", "calibration")
    ]


def test_every_subset_working_or_raising_decides_the_same(tmp_path: Path) -> None:
    """With any subset of integrations present, working or raising, decisions are identical."""
    baseline = scenario(tmp_path / "none", [])
    assert any(d[2] == "quarantined" for d in baseline)
    names = list(FACTORIES)
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(names, size):
            for broken in (False, True):
                tag = "-".join(subset) + ("-broken" if broken else "")
                made = [FACTORIES[n]() for n in subset]
                integrations = [Raising(i) for i in made] if broken else made
                assert scenario(tmp_path / tag, integrations) == baseline, tag


def test_failure_case_on_quarantine_with_context_and_attachment(tmp_path: Path) -> None:
    """A quarantine writes one case with history, windows, last errors, versions and trace."""
    recorder = FailureCaseRecorder()
    scenario(tmp_path, [recorder])
    (case,) = recorder.cases
    data = json.loads(case.read_text())
    assert data["workflow_id"] == "invoice" and data["rule"]["rule"] == "workflow.failure_window"
    assert [h["to"] for h in data["state_history"]][-1] == "quarantined"
    assert data["window"]["count"] == 10 and len(data["last_errors"]) == 10
    assert data["artifact_version"] == "s000001" and data["policy_version"]
    shot = recorder.attach(case, "screenshot.png", b"\x89PNG fake")
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert json.loads(case.read_text())["attachments"][0]["name"] == "screenshot.png"


def test_report_per_breaker_trip(tmp_path: Path) -> None:
    """Every breaker trip writes a Markdown and a self-contained HTML report."""
    writer = MiniReportWriter(scenario={"name": "test"})
    scenario(tmp_path, [writer])
    assert len(writer.reports) == 2  # DEGRADED (step breaker), then QUARANTINED
    page = writer.reports[-1].read_text()
    assert (
        "<svg" in page
        and "workflow_breaker" in page
        and "http" not in page.replace("http://www.w3.org/2000/svg", "").replace("http-equiv", "")
    )
    assert writer.reports[-1].with_suffix(".md").read_text().startswith("# invoice")


def test_precision_calibrates_per_method_thresholds() -> None:
    """Wrong matches below 0.8 raise that method's threshold to 0.8; settings apply the larger."""
    tracker = PrecisionTracker(target_precision=0.99, min_samples=20)
    manager = AutoHealManager(clock=FakeClock(), integrations=[tracker])
    for i in range(40):
        confidence = 0.76 + i * 0.005
        outcome = Outcome.SUCCESS if confidence >= 0.8 else Outcome.POSTCONDITION_FAILED
        manager.on_step_result(
            f"w{i % 4}",
            "s",
            StepResult(
                outcome=outcome,
                confidence=confidence,
                validated=outcome is Outcome.SUCCESS,
                details={"method": "template"},
            ),
        )
        manager.on_step_result(
            f"w{i % 4}",
            "t",
            StepResult(
                outcome=Outcome.SUCCESS, confidence=0.9, validated=True, details={"method": "faiss"}
            ),
        )
    thresholds = tracker.thresholds()
    assert thresholds["template"] == pytest.approx(
        0.8
    )  # the first confidence with no wrong match above
    assert thresholds["faiss"] == 0.9
    settings = manager.get_effective_settings("w0")
    assert settings.min_confidence_for("template") == pytest.approx(0.8)
    assert settings.min_confidence_for("unknown") == 0.75
    assert tracker.summary()["template"]["samples"] == 40
