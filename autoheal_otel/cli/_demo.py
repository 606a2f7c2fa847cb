"""A scripted scenario: one workflow through DEGRADED, recovery and QUARANTINED.

It drives the real manager with a fake clock and prints every decision as it happens, so the
whole run takes well under a second and is the same every time.
"""

from __future__ import annotations

import json

from .._events import DecisionEvent
from .._manager import AutoHealManager
from .._models import Outcome, StepResult
from .._semconv import EventKind
from ..testing import FakeClock

__all__ = ["run_demo"]


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.count = 0

    def emit(self, event: DecisionEvent) -> None:
        self.count += 1
        if self.as_json:
            print(json.dumps(event.to_record(), default=str))
            return
        ts = event.ts.strftime("%H:%M:%S") if event.ts else "--:--:--"
        if event.kind is EventKind.TRANSITION:
            print(
                f"{ts}  ** {event.workflow_id}: {event.previous_state} -> {event.state}"
                f"  ({event.message})"
            )
        elif event.kind is EventKind.GATE:
            verdict = "allow" if event.allowed else "BLOCK"
            print(f"{ts}  gate   {event.workflow_id}/{event.step_id}: {verdict}  {event.message}")
        elif event.kind is EventKind.RESULT:
            conf = f" confidence={event.confidence:.2f}" if event.confidence is not None else ""
            print(f"{ts}  result {event.workflow_id}/{event.step_id}: {event.outcome}{conf}")
        else:
            print(f"{ts}  {event.kind}: {event.message}")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _run_step(manager: AutoHealManager, clock: FakeClock, step: str, result: StepResult) -> None:
    allowed, _ = manager.should_execute_step("invoice", step)
    if allowed:
        manager.on_step_result("invoice", step, result)
    clock.advance(15)


def run_demo(*, as_json: bool = False) -> int:
    """Run the scenario and print each decision; return 0."""
    clock = FakeClock()
    printer = _Printer(as_json)
    ok = StepResult(outcome=Outcome.SUCCESS, confidence=0.93, second_best=0.41, validated=True)
    missing = StepResult(outcome=Outcome.TARGET_NOT_FOUND, confidence=0.41)
    broken = StepResult(outcome=Outcome.POSTCONDITION_FAILED, confidence=0.88, second_best=0.3)
    with AutoHealManager(clock=clock, sinks=[printer]) as manager:
        if not as_json:
            print("== 1. a healthy step")
        _run_step(manager, clock, "open_form", ok)
        if not as_json:
            print("== 2. the submit button disappears: 3 x TARGET_NOT_FOUND -> DEGRADED")
        for _ in range(3):
            _run_step(manager, clock, "click_submit", missing)
        if not as_json:
            print("== 3. it is back: 5 validated successes -> RUNNING")
        for _ in range(5):
            _run_step(manager, clock, "click_submit", ok)
        if not as_json:
            print(
                "== 4. postconditions keep failing: 10 failures within 10 minutes "
                "(the 3 misses count) -> QUARANTINED"
            )
        for _ in range(7):
            _run_step(manager, clock, "save", broken)
        _run_step(manager, clock, "save", ok)
        if not as_json:
            print("== 5. an operator releases it")
        manager.force_transition("invoice", "running", reason="selector fixed", actor="demo")
        _run_step(manager, clock, "save", ok)
        if not as_json:
            report = manager.get_status_report()
            wf = report.workflows["invoice"]
            print(
                f"== done: {printer.count} decisions; invoice is {wf.state.value}, "
                f"global health {report.global_.health}"
            )
    return 0
