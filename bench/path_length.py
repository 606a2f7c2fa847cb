"""How many of the package's modules a decision crosses: a measure of the layout, not of time.

Two paths, each measured by running the code under a profiler that notes every package module
a call enters (no reading of imports, so no guess):

1. the workflow id of ``should_execute_step`` until its audit line is written (one gate of a
   manager with a data directory, after a first gate warmed its caches);
2. a policy threshold (``breakers.workflow.failure_threshold``) from the policy file to the
   comparison that trips the workflow breaker: the modules entered while the file is loaded,
   then the call stack at the moment the breaker's firing is built.

Run: ``python bench/path_length.py`` (prints both counts and the modules, in order).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import autoheal_otel
from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, RuleFiring, StepResult
from autoheal_otel.testing import FakeClock

PACKAGE = Path(autoheal_otel.__file__).parent


def module_of(filename: str) -> str | None:
    """Return a file's path inside the package, or None outside it."""
    try:
        return str(Path(filename).relative_to(PACKAGE))
    except ValueError:
        return None


def entered(action: Callable[[], Any]) -> list[str]:
    """Return the package modules ``action`` enters, in the order first entered."""
    seen: list[str] = []

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and (name := module_of(frame.f_code.co_filename)) and name not in seen:
            seen.append(name)

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return seen


def gate_path() -> list[str]:
    """Modules from ``should_execute_step`` to the audit line."""
    with (
        tempfile.TemporaryDirectory() as data,
        AutoHealManager(clock=FakeClock(), data_dir=data) as manager,
    ):
        manager.should_execute_step("w", "s")  # the first gate builds the caches
        manager.flush()
        return entered(lambda: (manager.should_execute_step("w", "s"), manager.flush()))


def threshold_path() -> list[str]:
    """Modules from the policy file to the comparison that trips the workflow breaker."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.json"
        path.write_text(json.dumps({"breakers": {"workflow": {"failure_threshold": 3}}}))
        loading = entered(lambda: PolicyConfig.load(path))
        policy = PolicyConfig.load(path)
    stacks: list[list[str]] = []
    original = RuleFiring.__init__

    def spy(self: RuleFiring, *args: Any, **kwargs: Any) -> None:
        frame: FrameType | None = sys._getframe(1)
        chain: list[str] = []
        while frame is not None:
            name = module_of(frame.f_code.co_filename)
            if name and name not in chain:
                chain.append(name)
            frame = frame.f_back
        stacks.append(chain)
        original(self, *args, **kwargs)

    with AutoHealManager(policy, clock=FakeClock()) as manager:
        RuleFiring.__init__ = spy  # type: ignore[method-assign]
        try:
            for i in range(3):
                manager.should_execute_step("w", f"s{i}")
                manager.on_step_result("w", f"s{i}", StepResult(Outcome.POSTCONDITION_FAILED))
        finally:
            RuleFiring.__init__ = original  # type: ignore[method-assign]
        assert manager.get_mode("w") == "quarantined", manager.get_mode("w")
    return list(dict.fromkeys(loading + list(reversed(stacks[-1]))))


if __name__ == "__main__":
    for title, path in (("gate -> audit line", gate_path()),
                        ("threshold: file -> comparison", threshold_path())):  # fmt: skip
        print(f"{title}: {len(path)} modules: {' -> '.join(path)}")
