"""DuckDB analytics: packaged queries, the window invariant, compaction, regression."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoheal_otel import (
    AutoHealManager,
    ExecutionState,
    InvalidInputError,
    Outcome,
    StepResult,
    Trigger,
)
from autoheal_otel.analytics import AuditAnalytics, load_query, query_names
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.testing import FakeClock

from .conftest import OK, POST, TNF, policy_with


def test_queries_ship_in_the_package() -> None:
    """Every query is a packaged .sql file loaded by name; an unknown name is a clear error."""
    names = query_names()
    for expected in (
        "workflow_window",
        "global_window",
        "success_rate_drop",
        "success_rate",
        "time_in_state",
        "transitions",
        "top_failing_steps",
        "step_streaks",
    ):
        assert expected in names
        assert "SELECT" in load_query(expected)
    with pytest.raises(InvalidInputError, match="summary"):
        load_query("nope")


def test_missing_parameter_is_named(tmp_path: Path) -> None:
    """Running a query without one of its parameters names the missing one."""
    with AuditAnalytics(tmp_path) as db, pytest.raises(InvalidInputError, match="as_of"):
        db.query("workflow_states")


def test_empty_data_dir_gives_empty_results(tmp_path: Path) -> None:
    """With no log at all, queries return no rows (not an error)."""
    with AuditAnalytics(tmp_path) as db:
        assert db.query("summary") == []
        assert db.query("max_seq", since="1970-01-01") == [{"max_seq": 0, "ignored": 0}]


events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(["s1", "s2"]),
        st.sampled_from(
            [
                OK,
                TNF,
                POST,
                StepResult(outcome=Outcome.WATCHDOG_TIMEOUT),
                StepResult(outcome=Outcome.SUCCESS, confidence=0.5, validated=True),
            ]
        ),
        st.integers(0, 90_000),  # milliseconds: the log keeps microseconds
        st.sampled_from([None, None, None, None, "release"]),
    ),
    max_size=40,
)


@given(events)
def test_in_memory_windows_equal_the_duckdb_queries(
    tmp_path_factory: pytest.TempPathFactory, batch: list[Any]
) -> None:
    """For random streams, in-memory window counts equal the window queries over the same log."""
    data_dir = tmp_path_factory.mktemp("log")
    clock = FakeClock()
    policy = policy_with(
        breakers={
            "workflow": {"failure_threshold": 6, "window_seconds": 120},
            "global": {"failure_threshold": 9, "window_seconds": 180},
        }
    )
    m = AutoHealManager(policy=policy, data_dir=data_dir, clock=clock)
    for wid, step, result, advance_ms, action in batch:
        clock.advance(advance_ms / 1000)
        if action == "release" and m.get_mode(wid) is not ExecutionState.RUNNING:
            m.force_transition(wid, ExecutionState.RUNNING, reason="test")
        m.on_step_result(wid, step, result)
    report = m.get_status_report()
    m.flush()
    with AuditAnalytics(data_dir) as db:
        wp, gp = policy.breakers.workflow, policy.breakers.global_
        rows = db.query(
            "workflow_window",
            as_of=clock.now(),
            window_seconds=wp.window_seconds,
            triggers=[t.value for t in wp.counted_triggers],
        )
        sql_counts: dict[str, dict[str, int]] = {}
        for row in rows:
            sql_counts.setdefault(row["workflow_id"], {})[row["trigger"]] = row["failures"]
        for wid, status in report.workflows.items():
            memory = {t.value: n for t, n in status.window.counts_by_trigger.items()}
            assert memory == sql_counts.get(wid, {}), wid
        grows = db.query(
            "global_window",
            as_of=clock.now(),
            window_seconds=gp.window_seconds,
            triggers=[t.value for t in gp.counted_triggers],
        )
        assert {r["trigger"]: r["failures"] for r in grows} == {
            t.value: n for t, n in report.global_.window.counts_by_trigger.items()
        }
        streaks = {
            (r["workflow_id"], r["step_id"]): r
            for r in db.query("step_streaks", as_of=clock.now(), since="1970-01-01")
        }
        for wid, status in report.workflows.items():
            for sid, step in status.steps.items():
                row = streaks.get((wid, sid))
                assert (
                    row["consecutive_target_not_found"] if row else 0
                ) == step.consecutive_target_not_found
                assert (
                    row["consecutive_low_confidence"] if row else 0
                ) == step.consecutive_low_confidence
    m.close()


def _fill(data_dir: Path, clock: FakeClock) -> None:
    with AutoHealManager(data_dir=data_dir, clock=clock) as m:
        for i in range(30):
            m.should_execute_step("w", f"s{i % 3}")
            m.on_step_result("w", f"s{i % 3}", POST if i % 4 == 0 else OK)
            clock.advance(5)


def test_compaction_gives_the_same_answers(tmp_path: Path, clock: FakeClock) -> None:
    """Closed segments compact to zstd Parquet; every query answers the same before and after."""
    _fill(tmp_path, clock)
    live = AutoHealManager(data_dir=tmp_path, clock=clock)  # a live segment is left alone
    live.on_step_result("w", "s0", OK)
    queries = [
        ("summary", {}),
        ("top_failing_steps", {"limit": 5}),
        ("time_in_state", {"as_of": clock.now()}),
        ("transitions", {"workflow_id": ""}),
    ]
    with AuditAnalytics(tmp_path) as db:
        before = [db.query(n, **p) for n, p in queries]
    report = compact(tmp_path)
    assert len(report.compacted) == 1 and len(report.skipped_live) == 1
    assert report.bytes_out < report.bytes_in
    compacted = sorted((tmp_path / "audit" / "compacted").glob("*.parquet"))
    assert sorted(p.name.split(".", 1)[1] for p in compacted) == [
        "events.parquet",
        "hourly.parquet",
        "parquet",
        "rollup.parquet",
    ]  # bulk, small records, hourly rollup, version rollup
    with AuditAnalytics(tmp_path) as db:
        assert [db.query(n, **p) for n, p in queries] == before
        meta = db.sql(f"SELECT compression FROM parquet_metadata('{compacted[0]}') LIMIT 1")
        assert meta[0]["compression"].upper() == "ZSTD"
    live.close()


def test_crash_between_rename_and_delete_counts_once(tmp_path: Path, clock: FakeClock) -> None:
    """If compaction died after writing Parquet but before deleting JSONL, nothing doubles."""
    _fill(tmp_path, clock)
    segment = next((tmp_path / "audit").glob("*.jsonl"))
    backup = tmp_path / "backup.jsonl"
    shutil.copy(segment, backup)
    compact(tmp_path)
    shutil.copy(backup, segment)  # the JSONL segment "survived" the crash
    with AuditAnalytics(tmp_path) as db:
        assert db.query("summary")[0]["results"] == 30
    compact(tmp_path)
    assert not segment.exists()


def test_crash_before_the_manifest_line_leaves_only_orphans(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Output files without their manifest line are ignored, and the next run replaces them."""
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        for _ in range(3):
            m.on_step_result("w", "s", TNF)
    segment = next((tmp_path / "audit").glob("*.jsonl"))
    backup = tmp_path / "backup.jsonl"
    shutil.copy(segment, backup)
    with AuditAnalytics(tmp_path) as db:
        before = (db.query("transitions", workflow_id=""), db.query("summary"))
    compact(tmp_path)
    manifest = tmp_path / "audit" / "compacted" / "manifest.jsonl"
    manifest.write_text("")  # the process died before writing the manifest line...
    shutil.copy(backup, segment)  # ... so the segment was never deleted either
    with AuditAnalytics(tmp_path) as db:
        assert (db.query("transitions", workflow_id=""), db.query("summary")) == before
    assert before[0]  # there was a transition that could have doubled
    report = compact(tmp_path)
    assert len(report.cleaned) == 4  # the four orphan files
    with AuditAnalytics(tmp_path) as db:
        assert (db.query("transitions", workflow_id=""), db.query("summary")) == before


def test_small_outputs_are_merged(tmp_path: Path, clock: FakeClock) -> None:
    """Four small compaction outputs become one; answers stay the same; a crash is harmless."""
    for _ in range(4):
        _fill(tmp_path, clock)
        report = compact(tmp_path)
    assert report.merged and len(report.merged) == 4
    folder = tmp_path / "audit" / "compacted"
    assert len(list(folder.glob("*.parquet"))) == 4  # results, events, rollup, hourly rollup
    with AuditAnalytics(tmp_path) as db:
        after = db.query("summary")
    assert after[0]["results"] == 120
    # A crash after the merge's manifest line, before the replaced files were deleted:
    lines = (folder / "manifest.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["replaces"]
    for line in lines[:-1]:
        entry = json.loads(line)
        for name in (entry["results"], entry["events"], entry["rollup"], entry["hourly"]):
            (folder / name).write_bytes(b"")  # stand-ins: must never be read
    with AuditAnalytics(tmp_path) as db:
        assert db.query("summary") == after
    assert compact(tmp_path).cleaned


def test_version_counts_come_from_rollups_after_compaction(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Per-version counts are the same from the live log, from rollups, and from both."""

    def run(n: int) -> None:
        with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
            m.activate_artifact_version(f"v{n}", reason="test")
            for i in range(6):
                m.on_step_result("w", "s", POST if i % 3 == 0 else OK)

    def counts() -> list[tuple[str, int, int]]:
        with AuditAnalytics(tmp_path) as db:
            return [
                (r["artifact_version"], r["executions"], r["successes"])
                for r in db.query("version_outcomes", workflow_id="*")
            ]

    run(1)
    run(2)
    live = counts()
    assert live == [("v1", 6, 4), ("v2", 6, 4)]
    compact(tmp_path)
    assert counts() == live
    run(1)  # v1 activated again, in a live segment: the last activation orders it last
    assert counts() == [("v2", 6, 4), ("v1", 12, 8)]


def test_regression_verdicts(tmp_path: Path, clock: FakeClock) -> None:
    """Recent vs baseline success rate: fail on a drop, inconclusive below the minimum sample."""
    with AutoHealManager(
        data_dir=tmp_path,
        clock=clock,
        policy=policy_with(
            breakers={
                "workflow": {"failure_threshold": 1000},
                "global": {"failure_threshold": 1000},
            },
            degraded={"recovery_successes": 1},
        ),
    ) as m:
        for i in range(20):  # baseline: 90 % success, 20 samples in (as_of - 1800, as_of - 600]
            clock.advance(60)
            m.on_step_result("good", "s", POST if i % 10 == 0 else OK)
            m.on_step_result("bad", "s", POST if i % 10 == 0 else OK)
            m.on_step_result("few", "s", OK)
        for i in range(20):  # recent: "bad" drops to 50 %, 20 samples in (as_of - 600, as_of]
            clock.advance(30)
            m.on_step_result("good", "s", POST if i % 10 == 0 else OK)
            m.on_step_result("bad", "s", POST if i % 2 == 0 else OK)
            if i < 3:
                m.on_step_result("few", "s", POST)
    with AuditAnalytics(tmp_path) as db:
        rows = {
            r["workflow_id"]: r
            for r in db.query(
                "success_rate_drop",
                as_of=clock.now(),
                recent_seconds=600,
                baseline_seconds=1200,
                min_executions=10,
                drop_points=20,
            )
        }
    assert rows["good"]["verdict"] == "pass"
    assert rows["bad"]["verdict"] == "fail"
    assert rows["bad"]["baseline_rate_pct"] == 90.0 and rows["bad"]["recent_rate_pct"] == 50.0
    assert rows["few"]["verdict"] == "inconclusive"


def test_success_rate_per_artifact_version(tmp_path: Path, clock: FakeClock) -> None:
    """Each result carries the active artifact version, so rates per version are one query."""
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.set_artifact_version("w", "v1", reason="initial")
        for _ in range(4):
            m.on_step_result("w", "s", OK)
        m.set_artifact_version("w", "v2", reason="learned")
        for result in (OK, POST, POST, OK):
            m.on_step_result("w", "s", result)
    with AuditAnalytics(tmp_path) as db:
        rates = {r["artifact_version"]: r for r in db.query("version_outcomes", workflow_id="w")}
    assert (rates["v1"]["executions"], rates["v1"]["successes"]) == (4, 4)
    assert (rates["v2"]["executions"], rates["v2"]["successes"]) == (4, 2)


def test_time_in_state_and_transitions(tmp_path: Path, clock: FakeClock) -> None:
    """Time per state comes from the transition history, up to the instant asked."""
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:
        m.on_step_result("w", "s", OK)
        clock.advance(100)
        for _ in range(3):
            m.on_step_result("w", "s", TNF)
        clock.advance(50)
        m.force_transition("w", ExecutionState.RUNNING, reason="ok", actor="ann")
        clock.advance(25)
    with AuditAnalytics(tmp_path) as db:
        spent = {r["state"]: r["seconds"] for r in db.query("time_in_state", as_of=clock.now())}
        history = db.query("transitions", workflow_id="w")
    assert spent == {"running": 125.0, "degraded": 50.0}
    assert [(h["state"], h["cause"], h["actor"]) for h in history] == [
        ("degraded", "step_breaker", None),
        ("running", "operator", "ann"),
    ]
    assert Trigger.TARGET_NOT_FOUND.value == "target_not_found"


def test_a_memory_bounded_reader_spills_inside_the_data_directory(tmp_path: Path) -> None:
    """Replay and warm restart bound DuckDB's memory: what spills lands under the data
    directory's audit folder (never DuckDB's default ``.tmp`` in the working directory) and
    is gone at close."""
    from autoheal_otel import AutoHealManager

    with AutoHealManager(data_dir=tmp_path) as manager:
        manager.should_execute_step("w", "s")
    with AuditAnalytics(tmp_path, memory_limit="64MB") as db:
        spill = Path(db.sql("SELECT current_setting('temp_directory') AS t")[0]["t"])
        assert spill.parent == tmp_path / "audit"
        assert db.spill == spill
    assert not spill.exists()


def test_the_sliding_window_is_written_once_in_sql() -> None:
    """Every packaged query names the window as ``in_window``; only the generator spells it."""
    import re
    from importlib import resources

    from autoheal_otel.analytics import load_query, query_names

    folder = resources.files("autoheal_otel.analytics") / "sql"
    # the sliding window's form: as_of - window < ts <= as_of (the regression's recent and
    # baseline hours in success_rate_drop are another concept)
    spelled = re.compile(r"([\w.]+) <= \$as_of::TIMESTAMP\s+(--[^\n]*\n\s*)?AND \1 > \$as_of")
    users = 0
    for name in query_names():
        raw = (folder / f"{name}.sql").read_text(encoding="utf-8")
        assert not spelled.search(raw), f"{name}.sql spells the window out: use in_window()"
        users += raw.count("in_window(")
        assert "in_window(" not in load_query(name)  # expanded for DuckDB
    assert users > 0  # (the check above read the queries that use the window)
