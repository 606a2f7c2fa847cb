"""Which Robot Framework the listener can gate, and how a refusal ends a task.

The listener gates a step from keyword-level listener hooks (``start_library_keyword``,
RF 7.0) whose status steers execution (RF 7.1). On an older RF it would load and gate
nothing, silently: instead every task fails with the reason before any of it runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MIN_ROBOT", "enforce_refusal", "fail_whole", "unsupported_version"]

#: The oldest Robot Framework the listener can gate: keyword-level listener hooks (7.0) whose
#: status steers execution (7.1).
MIN_ROBOT = (7, 1)


def unsupported_version(version: str | None = None) -> str | None:
    """Return why this Robot Framework cannot be gated (None: it can)."""
    if version is None:
        from robot.version import VERSION  # type: ignore[import-untyped]

        version = VERSION
    numbers = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if numbers >= MIN_ROBOT:
        return None
    return (
        f"autoheal listener: Robot Framework {version} cannot be gated (supported: 7.1 or"
        " newer); every task fails so that none runs ungated"
    )


def fail_whole(data: Any, reason: str) -> None:
    """Make a task fail with ``reason`` before anything of it runs, on any RF from 4.0.

    (``data.error`` is 7.x; replacing the body and dropping the setup works everywhere.)
    """
    data.setup = None
    data.body.clear()
    data.body.create_keyword(name="BuiltIn.Fail", args=[reason])


def enforce_refusal(on_block: str, blocked: str, result: Any) -> None:
    """End a task with a refused step FAIL (or SKIP), whatever the suite caught.

    The queue-loop style (``FOR … TRY  Step  EXCEPT  CONTINUE``) catches the refusal like any
    failure; RF would then report the task PASS. Since RF 7.1 a status set in ``end_test`` is
    the task's. ``on_block=NOT RUN`` is the explicit opt-out: the task may pass.
    """
    if on_block == "FAIL" and result.status != "FAIL":
        result.status, result.message = "FAIL", blocked
    elif on_block == "SKIP" and result.status == "PASS":
        result.status, result.message = "SKIP", blocked
    elif not result.message:
        result.message = blocked
