"""Every acknowledged decision survives kill -9 under the default policy.

A robot process prints, after each hook returns, how many gates and validated successes it has
been told about; it is killed at a random instant. Every gate that returned must be in the
audit log, and after a restart every validated success of the log must be in SQLite.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, PolicyConfig
from autoheal_otel.runtime._tail import SegmentTail
from autoheal_otel.sinks.sqlite import SuccessStore

ROBOT = """
import sys
from autoheal_otel import AutoHealManager, StepResult
ok = StepResult(outcome="success", confidence=0.9, validated=True)
with AutoHealManager(data_dir=sys.argv[1]) as m:
    print("writer", m.writer, flush=True)
    gates = results = 0
    while True:
        m.should_execute_step("invoice", "click")
        gates += 1
        print("g", gates, flush=True)
        m.on_step_result("invoice", "click", ok)
        results += 1
        print("r", results, flush=True)
"""


def test_the_default_policy_writes_every_decision_before_the_hook_returns() -> None:
    """The durable default: no allowed gate is held back for its step's result."""
    assert PolicyConfig().audit.allowed_gates_with_result is False


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_loses_no_returned_gate_and_no_validated_success(tmp_path: Path, seed: int) -> None:
    """kill -9 at a random instant: returned gates are logged, and successes rebuilt in SQLite."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ROBOT, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    writer = proc.stdout.readline().split()[1]
    # Let it run until it has returned a random number of steps, then kill it mid-flight.
    target = random.Random(seed).randint(200, 1500)
    seen = {"g": 0, "r": 0}

    def note(line: str) -> None:
        parts = line.split()
        if len(parts) == 2 and parts[0] in seen and parts[1].isdigit():  # a kill may cut one
            seen[parts[0]] = max(seen[parts[0]], int(parts[1]))

    try:
        for line in proc.stdout:
            note(line)
            if seen["r"] >= target:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=30)
        for line in proc.stdout:  # what it printed before the signal landed counts too
            note(line)
    finally:
        proc.stdout.close()
    recs = [r for w, r in SegmentTail(tmp_path / "audit").read() if w == writer]
    gates = [r for r in recs if r["kind"] == "gate"]
    results = [r for r in recs if r["kind"] == "result" and r.get("validated") is True]
    assert len(gates) >= seen["g"]
    assert len(results) >= seen["r"]
    db = tmp_path / SuccessStore.FILENAME
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM successes WHERE writer = ?", (writer,))
        stored_before = before.fetchone()[0]
    conn.close()
    with AutoHealManager(data_dir=tmp_path) as m:  # the restart rebuilds what the store lost
        rebuilt = m.get_status_report()
        assert rebuilt is not None
    with sqlite3.connect(db) as conn:
        seqs = {s for (s,) in conn.execute("SELECT seq FROM successes WHERE writer = ?", (writer,))}
    conn.close()
    assert seqs == {r["seq"] for r in results}
    assert stored_before <= len(seqs)


def test_the_repair_ignores_a_torn_line_and_a_live_writer(tmp_path: Path) -> None:
    """A torn last line is no success; a live writer's segment is left to that writer."""
    live = AutoHealManager(data_dir=tmp_path)
    from .conftest import OK

    live.on_step_result("w", "s", OK)
    dead = tmp_path / "audit" / "audit-20260101-dead.1.aa-0001.jsonl"
    line = (
        b'{"ts":"2026-01-01T00:00:00Z","seq":5,"kind":"result","writer":"dead.1.aa",'
        b'"workflow_id":"w","step_id":"s","state":"running","outcome":"success",'
        b'"validated":true,"learning":true}\n'
    )
    dead.write_bytes(line + line.replace(b'"seq":5', b'"seq":6')[:-20])
    with AutoHealManager(data_dir=tmp_path):
        pass
    with sqlite3.connect(tmp_path / SuccessStore.FILENAME) as conn:
        rows = conn.execute("SELECT writer, seq FROM successes ORDER BY writer").fetchall()
    conn.close()
    # The dead writer's whole line is rebuilt; the live writer's row is not (it holds it).
    assert ("dead.1.aa", 5) in rows and ("dead.1.aa", 6) not in rows
    assert all(w != live.writer for w, _ in rows)
    live.close()


def test_compaction_rebuilds_lost_successes_before_it_takes_a_segment(tmp_path: Path) -> None:
    """A dead writer's segment is compacted away only after its successes are in the store."""
    from autoheal_otel.analytics.compaction import compact

    with AutoHealManager(data_dir=tmp_path):
        pass  # creates the store; its own rows are complete
    dead = tmp_path / "audit" / "audit-20260101-dead.2.bb-0001.jsonl"
    dead.write_bytes(
        b'{"ts":"2026-01-01T00:00:00Z","seq":9,"kind":"result","writer":"dead.2.bb",'
        b'"workflow_id":"w","step_id":"s","state":"running","outcome":"success",'
        b'"validated":true,"learning":true,"confidence":0.9}\n'
    )
    report = compact(tmp_path)
    assert dead.name in report.compacted and not dead.exists()
    with sqlite3.connect(tmp_path / SuccessStore.FILENAME) as conn:
        rows = conn.execute("SELECT writer, seq, confidence FROM successes").fetchall()
    conn.close()
    assert rows == [("dead.2.bb", 9, 0.9)]
