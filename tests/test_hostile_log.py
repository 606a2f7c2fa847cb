"""Hostile audit records: reported and skipped by every reader, never stopping a manager."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, ExecutionState
from autoheal_otel.analytics import AuditAnalytics, iter_records, scan
from autoheal_otel.analytics.replay import replay
from autoheal_otel.cli import main
from autoheal_otel.sinks.jsonl import segment_paths
from autoheal_otel.testing import FakeClock

from .conftest import OK, POST


def _log_with(tmp_path: Path, clock: FakeClock, *lines: str) -> Path:
    """Write a short real log, then append ``lines`` to its segment."""
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.should_execute_step("w", "s")
        m.on_step_result("w", "s", OK)
    segment = segment_paths(tmp_path / "audit")[0]
    with segment.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
    return segment


def _record(clock: FakeClock, **fields: Any) -> str:
    base = {"schema_version": 1, "ts": clock.now().isoformat(), "seq": 1000, "kind": "gate"}
    base.update(workflow_id="w", step_id="s", state="running", allowed=True)
    base.update(fields)
    return json.dumps(base)


def _duckdb_count(data_dir: Path) -> int:
    with AuditAnalytics(data_dir) as db:
        return int(db.sql("SELECT count(*) AS n FROM audit")[0]["n"])


def test_deeply_nested_line_is_reported_and_skipped(tmp_path: Path, clock: FakeClock) -> None:
    """Regression: a line nested 200,000 deep made scan, iter_records, replay and a restart
    raise RecursionError; now it is one skipped line with its reason."""
    _log_with(tmp_path, clock, "[" * 200_000 + "]" * 200_000)
    report = scan(tmp_path)
    assert [s["reason"] for s in report.skipped] == ["JSON nested too deep to read"]
    assert len(list(iter_records(tmp_path))) == report.records == _duckdb_count(tmp_path)
    assert replay(tmp_path).skipped_lines == 1
    AutoHealManager(data_dir=tmp_path, clock=clock).close()


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "transition", "state": "bogus", "previous_state": "running", "cause": "operator"},
        {"kind": "transition", "state": "running", "previous_state": "bogus", "cause": "operator"},
        {"kind": "result", "outcome": "target_not_found", "trigger": "bogus"},
        {"kind": "result", "outcome": "bogus"},
        {"kind": "result", "outcome": None},
        {"kind": "transition", "state": None, "cause": "operator"},
        {"kind": "global", "state": "bogus", "reason": "global.paused"},
        {"kind": "gate", "step_id": ""},
        {"kind": "gate", "workflow_id": "a\x00b"},
        {"seq": 2**64},
        {"seq": -1},
        {"ts": "yesterday"},
    ],
    ids=[
        "state",
        "previous-state",
        "trigger",
        "outcome",
        "no-outcome",
        "no-state",
        "global-state",
        "empty-step",
        "nul-id",
        "seq-past-bigint",
        "negative-seq",
        "bad-ts",
    ],
)
def test_unusable_record_is_skipped_by_every_reader(
    tmp_path: Path, clock: FakeClock, fields: dict[str, Any]
) -> None:
    """Regression: an unknown state made the next manager raise ValueError and an unknown
    trigger a KeyError in the warm restart; every reader now skips and reports the record."""
    _log_with(tmp_path, clock, _record(clock, **fields))
    report = scan(tmp_path)
    assert len(report.skipped) == 1 and report.skipped[0]["line"] == 5
    assert report.records == _duckdb_count(tmp_path) == len(list(iter_records(tmp_path)))
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        assert m.get_mode("w") is ExecutionState.RUNNING
    with AutoHealManager(data_dir=tmp_path, clock=clock, read_only=True) as ro:
        assert ro.get_status_report().global_.health == "ok"
    assert replay(tmp_path).matches


def test_cli_reads_a_hostile_log_without_a_traceback(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `autoheal status` and `replay` printed tracebacks on an unknown state."""
    _log_with(tmp_path, clock, _record(clock, kind="transition", state="bogus", cause="operator"))
    assert main(["status", "--data-dir", str(tmp_path)]) == 0
    assert main(["replay", "--data-dir", str(tmp_path)]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_seq_at_bigint_max_does_not_push_the_next_writer_past_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Regression: one record with seq 2**63 - 1 made the next manager write past BIGINT, so
    DuckDB lost records and a quarantine recorded afterwards was forgotten on the next restart."""
    _log_with(tmp_path, clock, _record(clock, seq=2**63 - 1))
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for _ in range(10):
            m.on_step_result("w", "s", POST)
        assert m.get_mode("w") is ExecutionState.QUARANTINED
    assert max(r["seq"] for r in iter_records(tmp_path) if r["seq"] < 2**63 - 1) < 1000
    assert scan(tmp_path).records == _duckdb_count(tmp_path)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as again:
        assert again.get_mode("w") is ExecutionState.QUARANTINED


def test_restore_reports_what_it_left_out(tmp_path: Path, clock: FakeClock) -> None:
    """The warm restart lists (and logs) a sequence number it will not continue from."""
    from autoheal_otel import PolicyConfig
    from autoheal_otel.analytics.restore import load_restored_state

    _log_with(tmp_path, clock, _record(clock, seq=2**63 - 1))
    state = load_restored_state(tmp_path, PolicyConfig(), clock.now())
    assert state.max_seq < 1000
    assert [s["what"] for s in state.skipped] == ["seq"] and state.skipped[0]["key"] == 1


@pytest.mark.parametrize(
    "details",
    [{"n": 2**70}, {"deep": json.loads("[" * 300 + "]" * 300)}],
    ids=["integer past 64 bits", "nested past orjson's limit"],
)
def test_details_json_cannot_hold_never_cost_a_decision_its_record(
    tmp_path: Path, clock: FakeClock, details: dict[str, Any]
) -> None:
    """The decision is written (details as text), the store keeps its row, replay matches."""
    from autoheal_otel import StepResult

    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.should_execute_step("w", "s")
        m.on_step_result("w", "s", StepResult(outcome="success", validated=True, details=details))
        assert m.success_store is not None
        m.flush()
        assert m.get_status_report().sink_errors == {}
        rows = m.success_store.learning_success_rate("w")
    records = [r for r in iter_records(tmp_path) if r["kind"] in ("gate", "result")]
    assert [r["kind"] for r in records] == ["gate", "result"]
    assert "unwritable" in records[1]["details"] and "error" in records[1]["details"]
    assert sum(v["successes"] for v in rows.values()) == 1
    assert replay(tmp_path).matches
