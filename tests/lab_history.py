"""A synthetic history with known incidents and known false stops, run by the simulated
executor under the default policy (10 failures in 600 s quarantine a workflow).

- A *flaky burst*: one step fails its postcondition on 10 runs in a row (about 6 minutes);
  the default quarantines the workflow, an operator releases it 5 minutes later and it runs
  clean for over an hour: an inferred false stop.
- An *incident*: a target disappears for 40 runs; the default quarantines the workflow, an
  operator keeps it stopped for 2.5 hours, fixes the screen and releases it: a true stop.

A threshold between 11 and about 15 failures in 600 s catches every incident and stops on no
burst; the default stops on every burst.
"""

from __future__ import annotations

from pathlib import Path

from autoheal_otel import AutoHealManager, ExecutionState
from autoheal_otel.sim import SimExecutor, SimWorkflow
from autoheal_otel.testing import FakeClock

WORKFLOW = SimWorkflow.of("invoice", "a", "b", "c", "d")
#: The history: what happens, in order ("clean" rounds, "burst", "incident").
PLAN = ("clean", "burst", "clean", "incident", "clean", "burst", "clean", "incident", "clean")


def _rounds(sim: SimExecutor, clock: FakeClock, count: int) -> None:
    for _ in range(count):
        sim.run("invoice")
        clock.advance(30.0)


def _release(manager: AutoHealManager, reason: str) -> None:
    if manager.get_mode("invoice") is not ExecutionState.RUNNING:
        manager.force_transition("invoice", ExecutionState.RUNNING, reason=reason, actor="ops")


def write_history(data_dir: Path, plan: tuple[str, ...] = PLAN) -> dict[str, int]:
    """Write the history into ``data_dir``; return how many bursts and incidents it holds."""
    clock = FakeClock()
    counts = {"burst": 0, "incident": 0}
    with AutoHealManager(data_dir=data_dir, clock=clock) as manager:
        sim = SimExecutor(manager, data_dir, [WORKFLOW], seed=7)
        for phase in plan:
            if phase == "clean":
                _rounds(sim, clock, 120)  # about 75 minutes
            elif phase == "burst":
                counts["burst"] += 1
                sim.fail_postconditions("click_b", 10)
                _rounds(sim, clock, 10)
                clock.advance(300.0)
                _release(manager, "flaky page, nothing broken")
            else:
                counts["incident"] += 1
                sim.hide_target("c")
                _rounds(sim, clock, 40)
                clock.advance(9000.0)
                sim.show_target("c")
                _release(manager, "selector fixed")
    return counts
