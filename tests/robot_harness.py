"""Run Robot Framework suites under the auto-heal listener and read what they left."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import robot
from robot.api import ExecutionResult

from autoheal_otel.analytics import AuditAnalytics

STEP_LIB = Path(__file__).with_name("robot") / "StepLib.py"
SETTINGS = f"""*** Settings ***
Library    {STEP_LIB}    ${{SIDE}}
Library    autoheal_otel.robot.AutoHealLibrary

"""


@dataclass
class Run:
    """What one robot run left: RF's result, its console, the side effects, the data dir."""

    rc: int
    result: Any
    stdout: str
    stderr: str
    side: list[str]
    data_dir: Path

    def tests(self) -> dict[str, Any]:
        """Return the run's tests (tasks) by name."""
        return {t.name: t for t in self.result.suite.all_tests}

    def audit(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL over the audit log (the ``audit`` view) with DuckDB."""
        with AuditAnalytics(self.data_dir) as db:
            return db.sql(sql)


def listener(data_dir: Path, **args: str) -> str:
    """Return the --listener value (``;`` separated, so paths may hold colons)."""
    parts = [f"data_dir={data_dir}", *(f"{k}={v}" for k, v in args.items())]
    return ";".join(["autoheal_otel.robot.AutoHealListener", *parts])


def run_suite(
    tmp: Path, body: str, *, listener_value: str | None = None, name: str = "suite", **options: Any
) -> Run:
    """Write ``body`` (after the shared settings) as a suite and run it in-process under RF.

    ``listener_value`` is the --listener value (default: the listener on ``tmp/data``);
    an empty string runs without the listener.
    """
    suite = tmp / f"{name}.robot"
    suite.write_text(SETTINGS + body, encoding="utf-8")
    side = tmp / "side.txt"
    data = tmp / "data"
    out, err = io.StringIO(), io.StringIO()
    rc = robot.run(
        str(suite),
        listener=[] if listener_value == "" else listener_value or listener(data),
        variable=[f"SIDE:{side}"],
        outputdir=str(tmp / "out"),
        log="NONE",
        report="NONE",
        rpa=True,
        stdout=out,
        stderr=err,
        **options,
    )
    result = ExecutionResult(str(tmp / "out" / "output.xml"))
    lines = side.read_text(encoding="utf-8").splitlines() if side.exists() else []
    return Run(rc, result, out.getvalue(), err.getvalue(), lines, data)


def body_keywords(test: Any) -> Iterator[Any]:
    """Yield the keywords called from a test's body, through its control structures."""

    def walk(items: Any) -> Iterator[Any]:
        for item in items:
            if item.type == "KEYWORD":
                yield item
            elif hasattr(item, "body"):
                yield from walk(item.body)

    yield from walk(test.body)
