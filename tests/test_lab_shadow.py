"""Shadow policies decide on the live inputs off the hook's thread and never change a gate."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

from autoheal_otel import AutoHealManager, ExecutionState, PolicyConfig
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.lab.shadow import ShadowSink
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
            shadow.flush()
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
    assert sink.dropped == 0


def test_the_shadow_judges_on_its_own_thread(tmp_path: Path) -> None:
    """emit_many only queues: the machine runs on the sink's worker thread."""
    seen: set[int] = set()
    sink = ShadowSink(STOP_EVERYTHING, tmp_path)
    judge = sink._judge

    def spy(*args: object) -> None:
        seen.add(threading.get_ident())
        judge(*args)  # type: ignore[arg-type]

    sink._judge = spy  # type: ignore[method-assign,assignment]
    _drive(tmp_path, sink)
    sink.close()
    assert seen and threading.get_ident() not in seen


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
