"""Retention of failure cases and reports: whole units, oldest first, recorded, crash-safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, DecisionEvent, PolicyConfig
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.replay import replay
from autoheal_otel.base import _crash
from autoheal_otel.disk._sweep import JOURNAL, plan, read_journal
from autoheal_otel.semconv import EventKind, Reason
from autoheal_otel.testing import CRASH_EXIT_CODE, FakeClock, InMemorySink

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


def _run(manager: AutoHealManager, clock: FakeClock) -> int:
    """Take one retention turn now, as the manager's thread does, once the check interval
    (longer than the first run's minute) has passed on the fake clock; return 1 if it was due."""
    clock.advance(manager.policy.retention.check_interval_seconds)
    return manager.run_background("retention")


def _details(data: Path) -> dict[str, Any]:
    """Return the details of the one retention record in ``data``'s audit log."""
    (record,) = _records(data, EventKind.RETENTION)
    details: dict[str, Any] = record["details"]
    return details


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
        assert _run(manager, clock) == 1
    details = _details(tmp_path)
    assert not any(p.exists() for p in old_case + older_case + old_report)
    assert not (old_case[0].with_suffix("")).exists()  # the attachments folder went too
    assert all(p.exists() for p in new_case + new_report)
    assert details["bytes_freed"] == freed and details["units"] == 3
    assert details["deleted"][0].startswith("failure_cases/other/")  # the oldest first
    assert details["areas"]["reports"]["keep_days"] == 7
    assert details["resumed"] is False
    (record,) = _records(tmp_path, EventKind.RETENTION)
    assert record["reason"] == Reason.RETENTION_DELETED
    assert not (tmp_path / JOURNAL).exists()


def test_age_follows_the_injected_clock(tmp_path: Path) -> None:
    """A case is kept until the fake clock passes its keep-days, then deleted."""
    clock = FakeClock(start=START)
    case = _case(tmp_path, "wf", START - timedelta(days=29), 1)
    with _manager(tmp_path, clock) as manager:
        assert _run(manager, clock) == 1
        assert case[0].exists()
        assert _records(tmp_path, EventKind.RETENTION) == []  # a run with nothing: no record
        clock.advance(2 * 86_400)
        assert _run(manager, clock) == 1
    assert not case[0].exists()
    assert len(_records(tmp_path, EventKind.RETENTION)) == 1


def test_the_first_run_comes_a_minute_after_the_start(tmp_path: Path) -> None:
    """A manager that starts and stops at once deletes nothing: the first run is due 60 s
    (of its clock) after the start, then every check interval."""
    clock = FakeClock(start=START)
    case = _case(tmp_path, "wf", START - timedelta(days=400), 1)
    later = _case(tmp_path, "wf", START - timedelta(days=30) + timedelta(minutes=30), 2)
    with _manager(tmp_path, clock) as manager:
        assert manager.run_background("retention") == 0
        clock.advance(59)
        assert manager.run_background("retention") == 0
        assert case[0].exists()
        clock.advance(1)
        assert manager.run_background("retention") == 1
        assert not case[0].exists() and later[0].exists()
        clock.advance(manager.policy.retention.check_interval_seconds - 1)
        assert manager.run_background("retention") == 0  # not yet again
        assert later[0].exists()
        clock.advance(1)
        assert manager.run_background("retention") == 1
    assert not later[0].exists()


def test_retention_off_deletes_nothing(tmp_path: Path) -> None:
    """With retention.enabled false nothing is deleted (disk use is still measured)."""
    clock = FakeClock(start=START)
    case = _case(tmp_path, "wf", START - timedelta(days=400), 1)
    with _manager(tmp_path, clock, enabled=False) as manager:
        assert _run(manager, clock) == 1
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
        assert _run(manager, clock) == 1
    assert all(p.exists() for p in victim)
    assert not link.is_symlink()  # the link itself was the old unit
    assert _details(data)["units"] == 1


CHILD = """
import sys
from datetime import datetime
from autoheal_otel import AutoHealManager
from autoheal_otel.testing import FakeClock, crash_at_deletion
data, start, kill_at = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
crash_at_deletion(kill_at)
clock = FakeClock(start=start)
manager = AutoHealManager(data_dir=data, clock=clock)
clock.advance(61)  # the first run is due a minute after the start
manager.run_background("retention")
"""


def _killed_at(data: Path, kill_at: int) -> None:
    """Run retention in a child process that dies right after its ``kill_at``-th durable step.

    ``crash_at_deletion`` ends it with ``os._exit``, as ``kill -9`` would: no ``finally``, no
    ``atexit``, no flush of anything buffered in the process, the kernel closes its files and
    releases its locks. What is on disk at that instant is what either leaves behind.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), START.isoformat(), str(kill_at)],
        env=env, timeout=120, check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == CRASH_EXIT_CODE, done.stderr  # it died there, not before


@pytest.mark.parametrize(
    "kills",
    [(1,), (2,), (5,), (11,), (4, 2)],
    ids=["journalled", "first-file", "mid-run", "all-deleted", "killed-again-finishing"],
)
def test_a_run_killed_part_way_is_finished_and_recorded_by_the_next(
    tmp_path: Path, kills: tuple[int, ...]
) -> None:
    """kill -9 after the journal, after a file, or after the last one (and again while the
    next run finishes it): oldest first, the file readers look for first, nothing recorded
    until the run is whole; the next run deletes the rest and says so, once."""
    victims = [_case(tmp_path, "wf", START - timedelta(days=40 + i), i) for i in range(5)]
    kept = _case(tmp_path, "wf", START - timedelta(days=1), 99)
    # Each victim's entries in the order a run deletes them: oldest unit first, its .json first.
    order = [e for v in reversed(victims) for e in (v[0], v[1].parent)]
    _killed_at(tmp_path, kills[0])
    journal = read_journal(tmp_path)
    assert journal is not None and len(journal) == 5  # the plan outlived the kill
    assert [e.exists() for e in order] == [i >= kills[0] - 1 for i in range(len(order))]
    # A reader looks for a case's .json: while it is there, the case is whole.
    assert all(v[1].exists() for v in victims if v[0].exists())
    assert _records(tmp_path, EventKind.RETENTION) == []
    for kill_at in kills[1:]:  # the next run dies too, while it finishes this one
        _killed_at(tmp_path, kill_at)
        assert read_journal(tmp_path) is not None
        assert _records(tmp_path, EventKind.RETENTION) == []
    clock = FakeClock(start=START)
    with _manager(tmp_path, clock) as manager:
        assert _run(manager, clock) == 1
    details = _details(tmp_path)
    assert details["resumed"] is True and details["units"] == 5
    assert sorted(details["deleted"]) == sorted(f"failure_cases/wf/{v[0].stem}" for v in victims)
    assert not any(e.exists() for e in order)
    assert all(p.exists() for p in kept)
    assert not (tmp_path / JOURNAL).exists()


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
    clock = FakeClock(start=START)
    with _manager(data, clock) as manager:
        assert _run(manager, clock) == 1
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
        assert _run(manager, clock) == 1
        manager.should_execute_step("wf", "s")
    assert _details(tmp_path)["units"] == 1
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    with AuditAnalytics(tmp_path) as db:
        kinds = {r["kind"] for r in db.sql("SELECT DISTINCT kind FROM audit_events")}
    assert EventKind.RETENTION.value in kinds
    with AutoHealManager(data_dir=tmp_path, clock=clock, read_only=True) as again:
        assert "wf" in again.get_status_report().workflows


def test_manager_thread_runs_retention_off_the_hooks(tmp_path: Path) -> None:
    """A writing manager's own retention thread deletes old cases without being asked, and
    records the run from its own thread; close() stops it."""
    clock = FakeClock(start=START)
    case = _case(tmp_path, "wf", START - timedelta(days=60), 1)
    recorded = threading.Event()
    threads: list[str] = []

    class Watch(InMemorySink):
        def emit(self, event: DecisionEvent) -> None:
            super().emit(event)
            if event.reason == Reason.SESSION_START:
                # The manager's first minute passes before its threads start (they start
                # right after this record): the retention thread's first turn is due.
                clock.advance(61)
            elif event.kind == EventKind.RETENTION:
                threads.append(threading.current_thread().name)
                recorded.set()

    def retention_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "autoheal-retention"}

    others = retention_threads()  # other tests' managers may still be running theirs
    with AutoHealManager(data_dir=tmp_path, clock=clock, sinks=[Watch()]) as manager:
        ours = retention_threads() - others
        assert len(ours) == 1
        assert "retention" in manager.background_jobs()
        assert recorded.wait(60), "the retention thread recorded no run"
        assert not case[0].exists()
    assert threads == ["autoheal-retention"]
    assert not any(t.is_alive() for t in ours)  # close() stopped it
    assert len(_records(tmp_path, EventKind.RETENTION)) == 1


def test_follower_and_shared_catch_up_pass_over_a_retention_record(tmp_path: Path) -> None:
    """Another writer's follower and the shared catch-up take no move or fact from it."""
    from autoheal_otel.runtime._follow import parse_move
    from autoheal_otel.runtime._shared import FACT_MARKERS, parse_fact

    clock = FakeClock(start=START)
    _case(tmp_path, "wf", START - timedelta(days=40), 1)
    with _manager(tmp_path, clock) as manager:
        assert _run(manager, clock) == 1
    (record,) = _records(tmp_path, EventKind.RETENTION)
    assert parse_move("other-writer", record) is None
    assert parse_fact("other-writer", record) is None
    line = json.dumps(record, separators=(",", ":")).encode()
    assert not any(marker in line for marker in FACT_MARKERS)


def test_a_run_cut_short_by_close_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manager closed during a run stops after the unit under way; the journal makes the
    next run finish it."""
    clock = FakeClock(start=START)
    victims = [_case(tmp_path, "wf", START - timedelta(days=40 + i), i) for i in range(3)]
    with _manager(tmp_path, clock) as manager:
        steps = 0

        def close_on_first_file() -> None:
            nonlocal steps
            steps += 1
            if steps == 2:  # 1: the run's journal, 2: its first file
                manager.close()

        # The hook crash_at_deletion sets, here to close the manager at a known point of a run.
        monkeypatch.setitem(_crash.hooks, _crash.RETENTION, close_on_first_file)
        assert _run(manager, clock) == 1
    monkeypatch.delitem(_crash.hooks, _crash.RETENTION)
    journal = read_journal(tmp_path)
    assert journal is not None and len(journal) == 3
    oldest, *rest = reversed(victims)
    assert not oldest[0].exists() and not oldest[1].parent.exists()  # the unit under way: whole
    assert all(p.exists() for v in rest for p in v)
    assert _records(tmp_path, EventKind.RETENTION) == []
    clock = FakeClock(start=START)
    with _manager(tmp_path, clock) as manager:
        assert _run(manager, clock) == 1
    details = _details(tmp_path)
    assert details["resumed"] is True and details["units"] == 3
    assert not any(p.exists() for v in victims for p in v)
    assert not (tmp_path / JOURNAL).exists()
