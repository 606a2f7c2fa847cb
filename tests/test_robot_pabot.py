"""Two pabot processes on one data directory share a workflow's failure window."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from robot.api import ExecutionResult

from autoheal_otel.analytics import AuditAnalytics
from tests.robot_harness import STEP_LIB, listener

PABOT = Path(sys.executable).with_name("pabot")
SETTINGS = f"""*** Settings ***
Library    OperatingSystem
Library    {STEP_LIB}    ${{SIDE}}

"""
# Each process fails the shared workflow less often than the threshold (3); only together do
# they reach it. The files order the two processes: A fails twice, then B fails once and
# quarantines the workflow (it must count A's failures), then A must skip its last task
# (it must see B's quarantine).
SUITE_A = """*** Tasks ***
A1
    [Tags]    wf-shared
    Crash    a1
A2
    [Tags]    wf-shared
    Crash    a2
A3
    [Tags]    wf-sync
    Create File    ${FLAGS}/a_done
    Wait Until Created    ${FLAGS}/b_done    timeout=60 s
A4
    [Tags]    wf-shared
    Act    a4
"""
SUITE_B = """*** Tasks ***
B0
    [Tags]    wf-sync
    Wait Until Created    ${FLAGS}/a_done    timeout=60 s
B1
    [Tags]    wf-shared
    Crash    b1
B2
    [Tags]    wf-sync
    Create File    ${FLAGS}/b_done
"""


@pytest.mark.skipif(not PABOT.exists(), reason="pabot is not installed (pip install '.[test]')")
def test_two_pabot_processes_share_the_workflow_window(tmp_path: Path) -> None:
    """Failures of two concurrent pabot processes add up to one quarantine, seen by both."""
    suites = tmp_path / "Shared"
    suites.mkdir()
    (suites / "a.robot").write_text(SETTINGS + SUITE_A, encoding="utf-8")
    (suites / "b.robot").write_text(SETTINGS + SUITE_B, encoding="utf-8")
    (tmp_path / "flags").mkdir()
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"breakers": {"workflow": {"failure_threshold": 3}}}))
    data = tmp_path / "data"
    command = [
        str(PABOT), "--processes", "2", "--no-pabotlib",
        "--outputdir", str(tmp_path / "out"), "--rpa",
        "--listener", listener(data, policy=str(policy), workflow="tag"),
        "--variable", f"SIDE:{tmp_path / 'side.txt'}",
        "--variable", f"FLAGS:{tmp_path / 'flags'}",
        str(suites),
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{PABOT.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env
    )
    result = ExecutionResult(str(tmp_path / "out" / "output.xml"))
    tests = {t.name: t for t in result.suite.all_tests}
    assert tests["B1"].status == "FAIL", done.stdout
    assert tests["A4"].status == "SKIP", done.stdout
    assert tests["A4"].message.startswith("autoheal blocked: quarantined since")
    with AuditAnalytics(data) as db:
        writers = db.sql("SELECT count(DISTINCT split_part(writer, '.', 2)) AS n FROM audit")
        moves = db.sql(
            "SELECT state, count FROM (SELECT state, rule.count AS count, seq FROM audit"
            " WHERE kind='transition' AND workflow_id='shared') ORDER BY seq"
        )
    assert writers == [{"n": 2}]  # two processes (pids) wrote the one log
    assert moves == [{"state": "quarantined", "count": 3}]
    side = (
        (tmp_path / "side.txt").read_text().splitlines() if (tmp_path / "side.txt").exists() else []
    )
    assert "a4" not in side
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


QUEUE = """*** Tasks ***
Queue {name}
    [Tags]    wf-invoice
    FOR    ${{i}}    IN RANGE    3
        TRY
            Crash    {name}${{i}}
        EXCEPT    *    type=glob
            Act    caught {name}${{i}}
        END
    END
"""


@pytest.mark.skipif(not PABOT.exists(), reason="pabot is not installed (pip install '.[test]')")
def test_concurrent_processes_never_pass_the_threshold_and_replay_matches(tmp_path: Path) -> None:
    """Two queue loops at once, 3 failures each, threshold 5: one quarantine at the 5th
    failure, no step admitted after it, a third robot refused, and replay matches."""
    from autoheal_otel.analytics.replay import replay

    suites = tmp_path / "Queues"
    suites.mkdir()
    for name in ("a", "b"):
        (suites / f"{name}.robot").write_text(SETTINGS + QUEUE.format(name=name), encoding="utf-8")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"breakers": {"workflow": {"failure_threshold": 5}}}))
    data = tmp_path / "data"
    command = [
        str(PABOT), "--processes", "2", "--no-pabotlib",
        "--outputdir", str(tmp_path / "out"), "--rpa",
        "--listener", listener(data, policy=str(policy), workflow="tag"),
        "--variable", f"SIDE:{tmp_path / 'side.txt'}",
        str(suites),
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{PABOT.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env
    )
    with AuditAnalytics(data) as db:
        moves = db.sql(
            "SELECT writer, ts, rule.count AS count FROM audit"
            " WHERE kind='transition' AND workflow_id='invoice' ORDER BY ts, seq"
        )
        assert len(moves) == 1, done.stdout  # one quarantine, by one process
        assert moves[0]["count"] == 5
        failures = db.sql(
            "SELECT count(*) AS n FROM audit WHERE kind='result' AND outcome <> 'success'"
        )[0]["n"]
        late = db.sql(
            "SELECT count(*) AS n FROM audit WHERE kind='gate' AND allowed AND ts > $at",
            {"at": moves[0]["ts"]},
        )[0]["n"]
    # A step admitted before the quarantine may still fail after it (it was running): at
    # most one per other process; none is admitted after it.
    assert 5 <= failures <= 6
    assert late == 0
    assert replay(data).matches
    # A third robot, started afterwards on the same directory, is refused at once.
    third = tmp_path / "third.robot"
    third.write_text(SETTINGS + QUEUE.format(name="c"), encoding="utf-8")
    solo = subprocess.run(
        [str(PABOT.with_name("robot")), "--rpa", "--outputdir", str(tmp_path / "out3"),
         "--listener", listener(data, policy=str(policy), workflow="tag"),
         "--variable", f"SIDE:{tmp_path / 'side.txt'}", str(third)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    task = next(iter(ExecutionResult(str(tmp_path / "out3" / "output.xml")).suite.all_tests))
    assert task.status == "SKIP", solo.stdout
    assert task.message.startswith("autoheal blocked: quarantined since")
