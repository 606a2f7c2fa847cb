"""Shadow policies decide on the live inputs off the hook's thread and never change a gate."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, ExecutionState, PolicyConfig
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.lab.shadow import Judge, ShadowSink
from autoheal_otel.testing import FakeClock

from .cli_support import run
from .conftest import OK, POST, TNF

#: A shadow that quarantines a workflow at its first failure and degrades at the first miss.
STOP_EVERYTHING = PolicyConfig.from_dict(
    {
        "breakers": {
            "workflow": {"failure_threshold": 1},
            "step": {"consecutive_target_not_found": 1, "consecutive_low_confidence": 1},
        }
    }
)


def _drive(data_dir: Path, shadow: ShadowSink | None) -> list[tuple[str, str, bool]]:
    """Run the same scripted steps; return every gate answer the executor got."""
    rng = random.Random(3)
    clock = FakeClock()
    answers = []
    with AutoHealManager(data_dir=data_dir, clock=clock) as m:
        if shadow is not None:
            m.add_sink(shadow)
        for i in range(600):
            clock.advance(rng.choice([1.0, 10.0, 60.0]))
            wid, step = rng.choice(["a", "b"]), rng.choice(["s1", "s2", "s3"])
            allowed = m.should_execute_step(wid, step)[0]
            answers.append((wid, step, allowed))
            if allowed:
                m.on_step_result(wid, step, rng.choice([OK, OK, OK, OK, TNF, POST]))
            if i == 300:
                for w in ("a", "b"):
                    if m.get_mode(w) is not ExecutionState.RUNNING:
                        m.force_transition(w, ExecutionState.RUNNING, reason="check", actor="ops")
        if shadow is not None:
            m.flush()
            assert shadow.sync()
    return answers


def test_a_shadow_that_would_quarantine_everything_never_changes_a_gate(tmp_path: Path) -> None:
    """The live gates and the audit log's gate answers are the same with and without a shadow
    that blocks at the first failure; the shadow's own log shows it would have blocked."""
    without = _drive(tmp_path / "plain", None)
    sink = ShadowSink(STOP_EVERYTHING, tmp_path / "shadowed")
    with_shadow = _drive(tmp_path / "shadowed", sink)
    sink.close()
    assert with_shadow == without
    assert any(not allowed for _w, _s, allowed in without)  # the live policy did stop
    gate_sql = "SELECT workflow_id, step_id, allowed FROM audit WHERE kind = 'gate' ORDER BY seq"
    with AuditAnalytics(tmp_path / "plain") as a, AuditAnalytics(tmp_path / "shadowed") as b:
        assert a.sql(gate_sql) == b.sql(gate_sql)
        assert b.sql("SELECT count(*) AS n FROM audit WHERE kind = 'shadow'")[0]["n"] == 0
    lines = [
        json.loads(line)
        for path in (tmp_path / "shadowed" / "shadow").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    gates = [r for r in lines if r["what"] == "gate"]
    assert len(gates) == sum(1 for _ in without) and sink.judged == len(gates)
    blocked_live = sum(1 for _w, _s, allowed in without if not allowed)
    blocked_shadow = sum(1 for r in gates if not r["shadow_allowed"])
    assert blocked_shadow > blocked_live
    assert any(r["live_allowed"] and not r["shadow_allowed"] for r in gates)
    assert any(r["what"] == "transition" and r["state"] == "quarantined" for r in lines)
    assert sink.skipped == 0


def test_the_shadow_judges_in_its_own_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of the shadow's machine runs in the hooks' process: a judge that would fail
    here changes nothing, and the shadow log is still written by the shadow process."""

    def fail(*_args: object) -> None:
        raise AssertionError("the shadow judged in the hooks' process")

    monkeypatch.setattr(Judge, "feed", fail)
    sink = ShadowSink(STOP_EVERYTHING, tmp_path)
    assert sink.pid != os.getpid()
    _drive(tmp_path, sink)
    sink.close()
    assert sink.judged == 600
    assert list((tmp_path / "shadow").glob("shadow-*.jsonl"))


def test_manager_close_stops_the_shadow_process(tmp_path: Path) -> None:
    """manager.close() lets the shadow judge everything written, then stops its process."""
    sink = ShadowSink(STOP_EVERYTHING, tmp_path)
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.add_sink(sink)
        for _ in range(20):
            clock.advance(1.0)
            if m.should_execute_step("a", "s1")[0]:
                m.on_step_result("a", "s1", TNF)
    # No sync: close alone judges every gate the log holds.
    assert sink.status()["alive"] is False and sink.exit_code == 0
    assert sink.judged == 20
    lines = (tmp_path / "shadow").glob("*.jsonl")
    assert sum(len(p.read_text().splitlines()) for p in lines) >= 20


def test_a_crashed_shadow_never_blocks_or_fails_a_hook(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A shadow process killed mid-run: the hooks go on with the same answers, close()
    returns, and the end is logged and shown by status()."""
    without = _drive(tmp_path / "plain", None)
    sink = ShadowSink(STOP_EVERYTHING, tmp_path / "shadowed")
    rng = random.Random(3)
    clock = FakeClock()
    answers = []
    with caplog.at_level(logging.WARNING, logger="autoheal_otel"):
        with AutoHealManager(data_dir=tmp_path / "shadowed", clock=clock) as m:
            m.add_sink(sink)
            for i in range(600):
                if i == 100:
                    os.kill(sink.pid, signal.SIGKILL)
                clock.advance(rng.choice([1.0, 10.0, 60.0]))
                wid, step = rng.choice(["a", "b"]), rng.choice(["s1", "s2", "s3"])
                allowed = m.should_execute_step(wid, step)[0]
                answers.append((wid, step, allowed))
                if allowed:
                    m.on_step_result(wid, step, rng.choice([OK, OK, OK, OK, TNF, POST]))
                if i == 300:
                    for w in ("a", "b"):
                        if m.get_mode(w) is not ExecutionState.RUNNING:
                            m.force_transition(
                                w, ExecutionState.RUNNING, reason="check", actor="ops"
                            )
            assert sink.sync(timeout=5.0) is False
        sink.close()
    assert answers == without
    status = sink.status()
    assert status["alive"] is False and status["exit_code"] == -signal.SIGKILL
    assert any("shadow 'shadow' stopped" in r.getMessage() for r in caplog.records)


def test_shadow_report_compares_live_and_shadow(tmp_path: Path) -> None:
    """`autoheal shadow report` counts the gates where they differed and scores both."""
    sink = ShadowSink(STOP_EVERYTHING, tmp_path)
    _drive(tmp_path, sink)
    sink.close()
    (tmp_path / "shadow" / "junk.jsonl").write_text("not json\n")
    proc = run(["shadow", "report", "--data-dir", str(tmp_path), "--json"])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["gates_judged"] == 600 and data["skipped_lines"] == 1
    assert {d["difference"] for d in data["differences"]} >= {"shadow blocks"}
    assert data["shadow"]["blocked"] > data["live"]["blocked"]
    assert run(["shadow", "report", "--data-dir", str(tmp_path)]).returncode == 0
    empty = tmp_path / "other"
    with AutoHealManager(data_dir=empty, clock=FakeClock()) as m:
        m.should_execute_step("a", "s")
    proc = run(["shadow", "report", "--data-dir", str(empty)])
    assert proc.returncode == 1 and "no shadow log" in proc.stderr
