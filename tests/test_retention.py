"""Retention of failure cases and reports: whole units, oldest first, recorded, crash-safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from autoheal_otel import AutoHealManager, PolicyConfig
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.replay import replay
from autoheal_otel.disk._retention import RetentionKeeper
from autoheal_otel.disk._sweep import JOURNAL, plan, read_journal
from autoheal_otel.semconv import EventKind, Reason
from autoheal_otel.testing import FakeClock

START = datetime(2026, 3, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%S")


def _case(data: Path, wf: str, when: datetime, seq: int, attachment: bool = True) -> list[Path]:
    """Write a failure case (JSON + attachments folder) stamped ``when``; return its paths."""
    folder = data / "failure_cases" / wf
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{_stamp(when)}-{seq:08d}"
    main = folder / f"{stem}.json"
    main.write_text(json.dumps({"workflow_id": wf, "pad": "x" * 100}))
    paths = [main]
    if attachment:
        (folder / stem).mkdir()
        shot = folder / stem / "screenshot.png"
        shot.write_bytes(b"p" * 500)
        paths.append(shot)
    return paths


def _report(data: Path, wf: str, when: datetime, seq: int) -> list[Path]:
    folder = data / "reports" / wf
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{_stamp(when)}-{seq:08d}"
    paths = [folder / f"{stem}.md", folder / f"{stem}.html"]
    for path in paths:
        path.write_text("# report\n" * 20)
    return paths


def _records(data: Path, kind: str) -> list[dict[str, Any]]:
    out = []
    for seg in sorted((data / "audit").glob("*.jsonl")):
        for line in seg.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec.get("kind") == kind:
                    out.append(rec)
    return out


def _manager(data: Path, clock: FakeClock, **retention: Any) -> AutoHealManager:
    policy = PolicyConfig.from_dict({"retention": retention}) if retention else None
    return AutoHealManager(policy=policy, data_dir=data, clock=clock)


def _keeper(manager: AutoHealManager) -> RetentionKeeper:
    keeper = manager._parts.retention
    assert keeper is not None
    return keeper


def test_units_past_their_keep_days_go_oldest_first_and_are_recorded(tmp_path: Path) -> None:
    """Old cases and reports are deleted whole; recent ones stay; one record says it all."""
    clock = FakeClock(start=START)
    old_case = _case(tmp_path, "wf", START - timedelta(days=40), 1)
    older_case = _case(tmp_path, "other", START - timedelta(days=50), 2, attachment=False)
    new_case = _case(tmp_path, "wf", START - timedelta(days=10), 3)
    old_report = _report(tmp_path, "wf", START - timedelta(days=8), 4)
    new_report = _report(tmp_path, "wf", START - timedelta(days=2), 5)
    freed = sum(p.stat().st_size for p in old_case + older_case + old_report)
    with _manager(tmp_path, clock, reports_keep_days=7) as manager:
        details = _keeper(manager).run_once()
    assert details is not None
    assert not any(p.exists() for p in old_case + older_case + old_report)
    assert not (old_case[0].with_suffix("")).exists()  # the attachments folder went too
    assert all(p.exists() for p in new_case + new_report)
    assert details["bytes_freed"] == freed and details["units"] == 3
    assert details["deleted"][0].startswith("failure_cases/other/")  # the oldest first
    assert details["areas"]["reports"]["keep_days"] == 7
    (record,) = _records(tmp_path, EventKind.RETENTION)
    assert record["reason"] == Reason.RETENTION_DELETED
    assert record["details"]["bytes_freed"] == freed
    assert not (tmp_path / JOURNAL).exists()


def test_age_follows_the_injected_clock(tmp_path: Path) -> None:
    """A case is kept until the fake clock passes its keep-days, then deleted."""
    clock = FakeClock(start=START)
    case = _case(tmp_path, "wf", START - timedelta(days=29), 1)
    with _manager(tmp_path, clock) as manager:
        assert _keeper(manager).run_once() is None
        assert case[0].exists()
        clock.advance(2 * 86_400)
        assert _keeper(manager).run_once() is not None
    assert not case[0].exists()
    assert len(_records(tmp_path, EventKind.RETENTION)) == 1  # a run with nothing: no record


def test_retention_off_deletes_nothing(tmp_path: Path) -> None:
    """With retention.enabled false nothing is deleted (disk use is still measured)."""
    clock = FakeClock(start=START)
    case = _case(tmp_path, "wf", START - timedelta(days=400), 1)
    with _manager(tmp_path, clock, enabled=False) as manager:
        _keeper(manager).tick()
        assert manager.get_status_report().disk is not None
    assert case[0].exists()


def test_links_are_never_followed_and_nothing_outside_is_deleted(tmp_path: Path) -> None:
    """Links to folders or files outside are removed as links at most; targets stay."""
    clock = FakeClock(start=START)
    data = tmp_path / "data"
    outside = tmp_path / "outside"
    victim = _case(outside, "wf", START - timedelta(days=400), 9)
    (data / "failure_cases").mkdir(parents=True)
    (data / "failure_cases" / "linked").symlink_to(outside / "failure_cases" / "wf")
    old_when = START - timedelta(days=400)
    folder = data / "reports" / "wf"
    folder.mkdir(parents=True)
    link = folder / f"{_stamp(old_when)}-00000001.md"
    link.symlink_to(victim[0])
    (data / "reports_link").symlink_to(outside)
    with _manager(data, clock) as manager:
        details = _keeper(manager).run_once()
    assert all(p.exists() for p in victim)
    assert not link.is_symlink()  # the link itself was the old unit
    assert details is not None and details["units"] == 1


def test_a_run_killed_part_way_is_finished_and_recorded_by_the_next(tmp_path: Path) -> None:
    """kill -9 after the first file deleted: the next run deletes the rest, and says so."""
    start = START.isoformat()
    victims = [_case(tmp_path, "wf", START - timedelta(days=40 + i), i) for i in range(5)]
    kept = _case(tmp_path, "wf", START - timedelta(days=1), 99)
    script = textwrap.dedent(
        f"""
        import os, signal
        from datetime import datetime
        from autoheal_otel import AutoHealManager
        from autoheal_otel.testing import FakeClock
        manager = AutoHealManager(data_dir={str(tmp_path)!r},
                                  clock=FakeClock(start=datetime.fromisoformat({start!r})))
        deleted = 0
        def step():
            global deleted
            deleted += 1
            if deleted == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        manager._parts.retention.run_once(step)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    journal = read_journal(tmp_path)
    assert journal is not None and len(journal) == 5  # the plan outlived the kill
    assert any(p.exists() for v in victims for p in v)  # some units were not reached
    assert _records(tmp_path, EventKind.RETENTION) == []
    with _manager(tmp_path, FakeClock(start=START)) as manager:
        details = _keeper(manager).run_once()
    assert details is not None and details["resumed"] is True and details["units"] == 5
    assert not any(p.exists() for v in victims for p in v)
    assert not any(v[0].with_suffix("").exists() for v in victims)
    assert all(p.exists() for p in kept)
    assert not (tmp_path / JOURNAL).exists()
    (record,) = _records(tmp_path, EventKind.RETENTION)
    assert record["details"]["resumed"] is True


def test_a_hostile_journal_deletes_nothing_outside(tmp_path: Path) -> None:
    """Journal entries naming paths, dot names or unknown areas are ignored."""
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    data = tmp_path / "data"
    kept = _case(data, "wf", START, 1)
    hostile = [
        {"area": "failure_cases", "folder": "..", "names": ["outside.txt"], "stamp": "x"},
        {"area": "../", "folder": "wf", "names": ["a"]},
        {"area": "failure_cases", "folder": "wf", "names": ["../../outside.txt"]},
        {"area": "failure_cases", "folder": "wf", "names": [".hidden"]},
        "not a unit",
    ]
    (data / JOURNAL).write_text(json.dumps(hostile))
    assert read_journal(data) == []
    with _manager(data, FakeClock(start=START)) as manager:
        _keeper(manager).run_once()
    assert outside.read_text() == "keep" and all(p.exists() for p in kept)


def test_plan_is_bounded_and_oldest_first(tmp_path: Path) -> None:
    """A run deletes at most its limit, the oldest units first."""
    for i in range(20):
        _report(tmp_path, f"wf{i % 3}", START - timedelta(days=100 - i), i)
    units = plan(tmp_path, {"reports": 30}, START, limit=5)
    assert len(units) == 5
    assert [u.stamp for u in units] == sorted(u.stamp for u in units)
    assert units[0].stamp == START - timedelta(days=100)


def test_every_reader_accepts_a_retention_record(tmp_path: Path) -> None:
    """Replay, the analytics views and a warm restart read a log holding retention records."""
    clock = FakeClock(start=START)
    _case(tmp_path, "wf", START - timedelta(days=40), 1)
    with _manager(tmp_path, clock) as manager:
        for _ in range(3):
            manager.should_execute_step("wf", "s")
            clock.advance(1)
        assert _keeper(manager).run_once() is not None
        manager.should_execute_step("wf", "s")
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    with AuditAnalytics(tmp_path) as db:
        kinds = {r["kind"] for r in db.sql("SELECT DISTINCT kind FROM audit_events")}
    assert EventKind.RETENTION.value in kinds
    with AutoHealManager(data_dir=tmp_path, clock=clock, read_only=True) as again:
        assert "wf" in again.get_status_report().workflows


def test_manager_thread_runs_retention_off_the_hooks(tmp_path: Path) -> None:
    """A writing manager's own retention thread deletes old cases without being asked."""
    clock = FakeClock(start=START)
    case = _case(tmp_path, "wf", START - timedelta(days=60), 1)
    with _manager(tmp_path, clock) as manager:
        keeper = _keeper(manager)
        assert keeper._thread is not None and keeper._thread.name == "autoheal-retention"
        keeper.tick()  # a turn now, on this thread: no deletion in the first minute
        assert case[0].exists()
        clock.advance(61)
        keeper.kick()
        # Poll the real thread for its first run (a deadline, no sleep in the library).
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while case[0].exists() and datetime.now(UTC) < deadline:
            keeper._stop.wait(0.01)
    assert not case[0].exists()
    assert len(_records(tmp_path, EventKind.RETENTION)) == 1


def test_follower_and_shared_catch_up_pass_over_a_retention_record(tmp_path: Path) -> None:
    """Another writer's follower and the shared catch-up take no move or fact from it."""
    from autoheal_otel.runtime._follow import parse_move
    from autoheal_otel.runtime._shared import FACT_MARKERS, parse_fact

    clock = FakeClock(start=START)
    _case(tmp_path, "wf", START - timedelta(days=40), 1)
    with _manager(tmp_path, clock) as manager:
        _keeper(manager).run_once()
    (record,) = _records(tmp_path, EventKind.RETENTION)
    assert parse_move("other-writer", record) is None
    assert parse_fact("other-writer", record) is None
    line = json.dumps(record, separators=(",", ":")).encode()
    assert not any(marker in line for marker in FACT_MARKERS)


def test_a_run_cut_short_by_close_is_finished_by_the_next(tmp_path: Path) -> None:
    """A closing manager stops between units; the journal makes the next run finish it."""
    clock = FakeClock(start=START)
    victims = [_case(tmp_path, "wf", START - timedelta(days=40 + i), i) for i in range(3)]
    with _manager(tmp_path, clock) as manager:
        keeper = _keeper(manager)
        keeper._stop.set()  # what close() does, before the run's first unit
        assert keeper.run_once() is None
        journal = read_journal(tmp_path)
        assert journal is not None and len(journal) == 3
        assert all(v[0].exists() for v in victims)
        keeper._stop.clear()
        details = keeper.run_once()
    assert details is not None and details["resumed"] is True and details["units"] == 3
    assert not any(v[0].exists() for v in victims)
