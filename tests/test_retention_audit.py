"""Audit-log retention: whole compacted files, oldest first, behind a kept checkpoint; the
budget and the free-space floor; what live decisions read is never deleted; pins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics._view import CompactedOutput, read_manifest
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.analytics.replay import replay
from autoheal_otel.analytics.resume import resume_state
from autoheal_otel.disk._audit_retention import JOURNAL
from autoheal_otel.disk._pins import load_pins
from autoheal_otel.semconv import EventKind, Reason
from autoheal_otel.testing import FakeClock

START = datetime(2026, 3, 1, tzinfo=UTC)
DAY = 86_400.0
FOLDER = Path("audit") / "compacted"


def policy(**retention: Any) -> PolicyConfig:
    return PolicyConfig.from_dict(
        {
            "breakers": {"workflow": {"failure_threshold": 4, "window_seconds": 600}},
            "audit": {"checkpoint_interval_seconds": 7 * DAY, "compact_interval_seconds": 0},
            "retention": {"keep_days": 3, "max_bytes": 2**40, "keep_free_bytes": 0, **retention},
        }
    )


def build(
    data: Path, clock: FakeClock, days: int, config: PolicyConfig, restarts: bool = False
) -> None:
    """``days`` days of decisions (an incident on day 2), a checkpoint every 6 hours, each
    day's segment compacted once it closed; with ``restarts``, a new process every day (each
    compacted output then begins with a warm restart's session start)."""
    manager = AutoHealManager(config, data, clock=clock)
    try:
        for day in range(days):
            if restarts and day:
                manager.close()
                manager = AutoHealManager(config, data, clock=clock)
            for quarter in range(4):
                manager.checkpoint()
                for i in range(12):
                    wid = f"wf{i % 3}"
                    bad = day == 2 and quarter == 1 and wid == "wf1"
                    if manager.should_execute_step(wid, f"s{i % 2}")[0]:
                        outcome = Outcome.POSTCONDITION_FAILED if bad else Outcome.SUCCESS
                        manager.on_step_result(wid, f"s{i % 2}", StepResult(outcome=outcome))
                    clock.advance(60)
                if day == 2 and quarter == 2:
                    manager.force_transition("wf1", "running", reason="fixed")
                clock.advance(DAY / 4 - 12 * 60)
            compact(data)  # the day before rotated away: compacted
    finally:
        manager.close()
    compact(data)


def records(data: Path, reason: str) -> list[dict[str, Any]]:
    out = []
    for seg in sorted((data / "audit").glob("*.jsonl")):
        for line in seg.read_text().splitlines():
            rec = json.loads(line)
            if rec["kind"] == EventKind.RETENTION and rec["reason"] == reason:
                out.append(rec)
    return out


def keeper_run(data: Path, clock: FakeClock, config: PolicyConfig) -> AutoHealManager:
    """Open a manager and take one retention turn, as its thread does a minute after the start
    (failure cases and reports, then the audit log and the success store)."""
    manager = AutoHealManager(config, data, clock=clock)
    clock.advance(61)
    assert manager.run_background("retention") == 1
    return manager


def naive(text: str | None) -> datetime:
    """Return a cut a retention record names (naive UTC, as the manifest's times are)."""
    assert text is not None
    return datetime.fromisoformat(text)


def deleted_of(data: Path) -> list[dict[str, Any]]:
    """Return every compacted output the audit log's retention records say were deleted."""
    return [d for r in records(data, Reason.RETENTION_DELETED) for d in r["details"]["deleted"]]


def files_of(out: CompactedOutput) -> list[str]:
    names = [out.results, out.events, out.rollup, out.hourly]
    assert all(names), out
    return sorted(n for n in names if n)


@pytest.mark.parametrize("restarts", [False, True])
def test_keep_days_deletes_whole_files_behind_a_kept_checkpoint(
    tmp_path: Path, restarts: bool
) -> None:
    """Outputs wholly before the newest checkpoint at or before now - keep_days go; the rest
    replays from its first checkpoint (with a restart every day: the kept log's first record
    is a restart's session start, skipped with the records before that checkpoint)."""
    clock = FakeClock(START)
    build(tmp_path, clock, 8, policy(), restarts)
    before = read_manifest(tmp_path / FOLDER)
    as_of = clock.now() + timedelta(seconds=61)  # when keeper_run's turn runs
    state_before = resume_state(tmp_path, policy(), as_of)
    keeper_run(tmp_path, clock, policy()).close()
    after = read_manifest(tmp_path / FOLDER)
    gone = {o.id for o in before} - {o.id for o in after}
    # The run's record says what it cut, and why.
    (rec,) = records(tmp_path, Reason.RETENTION_DELETED)
    details = rec["details"]
    assert details["bytes_freed"] > 0 and rec["actor"] == "autoheal"
    assert details["area"] == "audit" and details["resumed"] is False
    assert details["blocked"] is None
    keep_days_cut = naive(details["keep_days_cut"])
    assert gone and sorted(d["id"] for d in details["deleted"]) == sorted(gone)
    assert {d["why"] for d in details["deleted"]} == {"keep_days"}
    # Whole outputs, every file of them, only those wholly before the kept checkpoint.
    by_id = {o.id: o for o in before}
    for item in details["deleted"]:
        out = by_id[item["id"]]
        assert out.last_ts is not None and out.last_ts < keep_days_cut
        assert naive(item["last_ts"]) == out.last_ts
        assert sorted(item["files"]) == files_of(out)
        assert not any((tmp_path / FOLDER / name).exists() for name in files_of(out))
    assert all((o.last_ts or o.max_ts) >= keep_days_cut for o in after)  # type: ignore[operator]
    limit = (as_of - timedelta(days=3)).replace(tzinfo=None)
    assert keep_days_cut <= limit
    assert not (tmp_path / JOURNAL).exists()
    # What is kept replays from its first checkpoint: every decision of the last keep_days.
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.from_checkpoint is not None
    assert datetime.fromisoformat(report.from_checkpoint).replace(tzinfo=None) <= limit
    # A restart after the deletion rebuilds the same state as before it.
    state_after = resume_state(tmp_path, policy(), as_of)
    assert state_before is not None and state_after is not None
    assert state_after.state == state_before.state


def test_the_budget_deletes_up_to_what_live_decisions_read_and_no_further(
    tmp_path: Path,
) -> None:
    """A free-space floor no deletion can meet: everything behind the newest checkpoint
    before the protected horizon goes, that checkpoint and the rest stay, /health says why,
    and it is recorded."""
    clock = FakeClock(START)
    build(tmp_path, clock, 5, policy(keep_days=30))
    tight = policy(keep_days=30, keep_free_bytes=2**49)  # more than the device holds
    before = read_manifest(tmp_path / FOLDER)
    with keeper_run(tmp_path, clock, tight) as manager:
        report = manager.get_status_report()  # measured at the end of the turn
        assert report.global_.health == "degraded"
        assert "retention cannot meet the budget" in report.global_.reason
        assert report.disk is not None and report.disk["within_budget"] is False
    # What the run cut and why: the deletion's record, then the one saying what stays.
    (deleted,) = records(tmp_path, Reason.RETENTION_DELETED)
    (blocked,) = records(tmp_path, Reason.RETENTION_BLOCKED)
    assert "more must be freed" in blocked["message"]
    cut = blocked["details"]
    assert cut["blocked"] is not None and cut["deleted"] == []
    assert cut["keep_days_cut"] is None  # nothing is 30 days old: the budget alone deleted
    assert deleted["details"]["budget_cut"] == cut["budget_cut"]
    assert deleted["details"]["blocked"] == cut["blocked"]
    assert {d["why"] for d in deleted["details"]["deleted"]} == {"keep_free_bytes"}
    budget_cut = naive(cut["budget_cut"])
    # A read-only reader of the directory (autoheal status, serve) says it too.
    with AutoHealManager(tight, tmp_path, clock=clock, read_only=True) as reader:
        health = reader.get_status_report().global_
        assert health.health == "degraded" and "retention cannot meet" in health.reason
    kept = read_manifest(tmp_path / FOLDER)
    assert kept and all((o.last_ts or o.max_ts) >= budget_cut for o in kept)  # type: ignore[operator]
    gone = {o.id for o in before} - {o.id for o in kept}
    assert gone and gone == {d["id"] for d in deleted["details"]["deleted"]}
    assert all(naive(d["last_ts"]) < budget_cut for d in deleted["details"]["deleted"])
    assert budget_cut <= naive(cut["protected_from"])
    # The state live decisions read is whole: a restart still starts from a checkpoint.
    again = resume_state(tmp_path, tight, clock.now())
    assert again is not None
    assert replay(tmp_path).matches
    # The floor lowered: the next run meets the budget, and /health is ok again everywhere.
    with keeper_run(tmp_path, clock, policy(keep_days=30)) as manager:
        status = manager.get_status_report().global_
        assert status.health == "ok", status.reason
    clock.advance(31)  # readers share a measurement for 30 s
    with AutoHealManager(policy(), tmp_path, clock=clock, read_only=True) as reader:
        assert reader.get_status_report().global_.health == "ok"


def test_a_pin_keeps_its_range_and_everything_newer(tmp_path: Path) -> None:
    """The outputs a pin overlaps and every newer one stay; older ones past keep_days go."""
    clock = FakeClock(START)
    build(tmp_path, clock, 8, policy())
    incident = START + timedelta(days=1, hours=12)
    with AutoHealManager(policy(), tmp_path, clock=clock) as manager:
        pin = manager.pin_range(incident, incident + timedelta(hours=1), "INC-7", "alice")
    assert [p.id for p in load_pins(tmp_path)] == [pin.id]
    before = read_manifest(tmp_path / FOLDER)
    keeper_run(tmp_path, clock, policy()).close()
    kept = read_manifest(tmp_path / FOLDER)
    at = incident.replace(tzinfo=None)
    holding = [o for o in before if (o.first_ts or o.min_ts) <= at <= (o.last_ts or o.max_ts)]  # type: ignore[operator]
    assert holding and all(o in kept for o in holding)
    gone = {o.id for o in before} - {o.id for o in kept}
    assert gone and {d["id"] for d in deleted_of(tmp_path)} == gone
    assert all(naive(d["last_ts"]) < at for d in deleted_of(tmp_path))
    assert all((o.last_ts or o.max_ts) < at for o in before if o.id in gone)  # type: ignore[operator]
    (rec,) = records(tmp_path, Reason.RETENTION_PINNED)
    assert rec["actor"] == "alice" and rec["details"]["pin"]["id"] == pin.id
    assert replay(tmp_path).matches


def test_an_unreadable_pins_file_deletes_nothing(tmp_path: Path) -> None:
    clock = FakeClock(START)
    build(tmp_path, clock, 6, policy())
    (tmp_path / "pins.json").write_text("{not json")
    before = read_manifest(tmp_path / FOLDER)
    with keeper_run(tmp_path, clock, policy()) as manager:
        report = manager.get_status_report()
        assert report.global_.health == "degraded" and "pins.json" in report.global_.reason
    assert read_manifest(tmp_path / FOLDER) == before
    (rec,) = records(tmp_path, Reason.RETENTION_BLOCKED)
    assert "pins.json" in rec["message"]


def test_the_pin_command_adds_lists_removes_and_refuses_in_one_line(
    tmp_path: Path, capsys: Any
) -> None:
    from autoheal_otel.cli import main

    with AutoHealManager(policy(), tmp_path) as manager:
        manager.should_execute_step("wf", "s")
    base = ["--data-dir", str(tmp_path)]
    assert main(["pin", "add", *base, "--from", "2026-03-01T14:00", "--to", "2026-03-01T16:00",
                 "--reason", "INC-7", "--actor", "alice"]) == 0  # fmt: skip
    assert "pinned p-" in capsys.readouterr().out
    assert main(["pin", "list", *base, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["start"] == "2026-03-01T14:00:00+00:00" and listed["actor"] == "alice"
    for bad in (
        ["pin", "add", *base, "--from", "yesterday", "--to", "2026-03-01", "--reason", "x"],
        ["pin", "add", *base, "--from", "2026-03-02", "--to", "2026-03-01", "--reason", "x"],
        ["pin", "add", *base, "--from", "2026-03-01", "--to", "2026-03-02"],
        ["pin", "remove", *base, "--reason", "x"],
        ["pin", "remove", "p-nope", *base, "--reason", "x"],
    ):
        try:
            code = main(bad)
        except SystemExit as exc:  # argparse's own refusals
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        assert code == 2, bad
        assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert main(["pin", "remove", listed["id"], *base, "--reason", "closed"]) == 0
    assert load_pins(tmp_path) == []
    reasons = [r["reason"] for r in records(tmp_path, Reason.RETENTION_PINNED)] + [
        r["reason"] for r in records(tmp_path, Reason.RETENTION_UNPINNED)
    ]
    assert reasons == [Reason.RETENTION_PINNED, Reason.RETENTION_UNPINNED]


def test_the_success_store_keeps_keep_days_and_stops_growing(tmp_path: Path) -> None:
    """Rows past keep_days go in batches, after they are folded into the rollup: the target
    memory's figures do not change, and the file's pages are reused (it stops growing)."""
    import sqlite3

    from autoheal_otel.sinks._prune import prune_successes

    clock = FakeClock(START)
    config = policy(keep_days=2)
    pages = []
    with AutoHealManager(config, tmp_path, clock=clock) as manager:
        store = manager.success_store
        assert store is not None
        for day in range(8):
            for i in range(1500):
                ok = StepResult(outcome=Outcome.SUCCESS, validated=True, confidence=0.9,
                                details={"pad": "x" * 200})  # fmt: skip
                if manager.should_execute_step(f"wf{i % 5}", "s")[0]:
                    manager.on_step_result(f"wf{i % 5}", "s", ok)
                clock.advance(50)
            clock.advance(DAY - 1500 * 50)
            store.flush()
            rates = {w: store.learning_success_rate(w) for w in ("wf0", "wf3")}
            gone = prune_successes(tmp_path, clock.now() - timedelta(days=2))
            assert (gone > 0) == (day >= 2)
            assert {w: store.learning_success_rate(w) for w in rates} == rates
            with sqlite3.connect(tmp_path / "target_memory.sqlite") as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                pages.append(conn.execute("PRAGMA page_count").fetchone()[0])
                oldest = conn.execute("SELECT min(ts) FROM successes").fetchone()[0]
                rollup = conn.execute("SELECT count(*) FROM success_rollup").fetchone()[0]
            assert rollup <= 5  # one row per workflow and version, however many folds
            assert datetime.fromisoformat(oldest) >= clock.now() - timedelta(days=2, hours=1)
    # Once keep_days is reached, as many rows go as come: the file stops growing.
    assert pages[-1] <= pages[3] * 1.05, pages
    assert pages[3] > pages[0]
