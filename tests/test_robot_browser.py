"""The Robot Framework example on a real headless Chromium (Debian's chromium + chromium-driver).

Both runs serve the example application on 127.0.0.1 and run ``examples/robot/tasks.robot``
through SeleniumLibrary: once as the ``robot`` command, once in-process. Each costs a few
seconds, so the rest of the listener is tested without a browser.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import robot
from robot.api import ExecutionResult

from autoheal_otel.analytics import AuditAnalytics
from tests.robot_harness import body_keywords, listener

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "robot"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromium-driver are not installed: `make test` installs them as root "
    "(or: sudo apt-get install chromium chromium-driver)",
)

EXPECTED_STATUS = ["PASS", "PASS", "FAIL", "FAIL", "FAIL", "PASS", "PASS", "FAIL", "FAIL", "SKIP"]
EXPECTED_STATE = ["running"] * 4 + ["degraded"] * 2 + ["running"] * 2 + ["quarantined"] * 2


def _load_app() -> Any:
    spec = importlib.util.spec_from_file_location("invoice_app", EXAMPLE / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app() -> Iterator[tuple[Any, str]]:
    """Serve the example application on 127.0.0.1 for one run."""
    server, url = _load_app().serve()
    yield server, url
    server.shutdown()
    server.server_close()


def _options(tmp_path: Path, url: str) -> list[str]:
    return [
        "--rpa", "--outputdir", str(tmp_path / "out"),
        "--listener", listener(
            tmp_path / "data", policy=str(EXAMPLE / "policy.json"), workflow="tag"
        ),
        "--variable", f"URL:{url}",
        "--variable", f"PROFILE:{tmp_path / 'profile'}",
        "--variable", f"CHROMIUM:{CHROMIUM}",
        "--variable", f"CHROMEDRIVER:{CHROMEDRIVER}",
        "--pythonpath", str(EXAMPLE),
    ]  # fmt: skip


def _check_the_walk(tmp_path: Path, pages: int) -> None:
    result = ExecutionResult(str(tmp_path / "out" / "output.xml"))
    tests = list(result.suite.all_tests)
    assert [t.status for t in tests] == EXPECTED_STATUS
    states = [next(tag for tag in t.tags if tag.startswith("autoheal:")) for t in tests]
    assert states == [f"autoheal:{s}" for s in EXPECTED_STATE[:-1]] + ["autoheal:blocked"]
    assert tests[-1].message.startswith("autoheal blocked: quarantined since")
    assert pages == 9  # the skipped task never loaded the page
    with AuditAnalytics(tmp_path / "data") as db:
        moves = db.sql("SELECT state FROM audit WHERE kind='transition' ORDER BY seq")
        counts = db.sql(
            "SELECT count(*) FILTER (kind='result') AS steps,"
            " count(*) FILTER (kind='result' AND outcome='target_not_found') AS not_found,"
            " count(*) FILTER (kind='result' AND outcome='postcondition_failed') AS postcondition,"
            " count(*) FILTER (kind='gate' AND NOT allowed) AS refused FROM audit"
        )[0]
    assert [m["state"] for m in moves] == ["degraded", "running", "quarantined"]
    ran = [k for t in tests for k in body_keywords(t) if k.status in ("PASS", "FAIL")]
    assert counts["steps"] == len(ran) == 33
    assert counts["not_found"] == 3 and counts["postcondition"] == 2
    assert counts["refused"] == sum(t.status == "SKIP" for t in tests) == 1


def test_example_walks_every_state_with_the_robot_command(
    tmp_path: Path, app: tuple[Any, str]
) -> None:
    """`robot` with the one listener option walks RUNNING → DEGRADED → RUNNING → QUARANTINED."""
    server, url = app
    command = [str(Path(sys.executable).with_name("robot")), *_options(tmp_path, url)]
    done = subprocess.run(
        [*command, str(EXAMPLE / "tasks.robot")],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 5, done.stdout + done.stderr  # five failed tasks
    _check_the_walk(tmp_path, server.pages)
    log = (tmp_path / "out" / "log.html").read_text(encoding="utf-8")
    for move in ("running → degraded", "degraded → running", "running → quarantined"):
        assert move in log or move.replace("→", "\\u2192") in log


def test_example_walks_every_state_in_process(tmp_path: Path, app: tuple[Any, str]) -> None:
    """The same suite run in-process (robot.run_cli) tells the same story."""
    server, url = app
    rc = robot.run_cli(
        [
            *_options(tmp_path, url),
            "--log",
            "NONE",
            "--report",
            "NONE",
            str(EXAMPLE / "tasks.robot"),
        ],
        exit=False,
    )
    assert rc == 5
    _check_the_walk(tmp_path, server.pages)


def test_robot_demo_exits_non_zero_when_the_story_does_not_hold() -> None:
    """``make robot-demo`` fails when RF's result or the transitions differ from the story
    (5 failed tasks are part of it), and passes RF's own error codes through."""
    spec = importlib.util.spec_from_file_location("run_demo", EXAMPLE / "run_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    story = list(module.STORY)
    assert module.verdict(module.FAILED_TASKS, story) == 0
    assert module.verdict(module.FAILED_TASKS, story[:2]) == 1  # never quarantined
    assert module.verdict(6, story) == 1  # one failure more than told
    assert module.verdict(0, []) == 1  # nothing happened (a run without the listener)
    assert module.verdict(252, story) == 252  # RF's own error: as it is
