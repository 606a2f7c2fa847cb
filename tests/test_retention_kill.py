"""kill -9 during audit retention and during a checkpoint: nothing kept is lost, nothing is
left half deleted, and restart and replay still match afterwards.

Retention is killed with :func:`autoheal_otel.testing.crash_at_deletion`, which ends the
process with ``os._exit`` right after a chosen durable step: like ``kill -9``, no ``finally``,
no ``atexit``, no flush of what the process buffered runs; the kernel closes its files and
releases its locks. What is on disk at that instant is what either leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, EventKind
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics._view import read_manifest
from autoheal_otel.analytics.replay import replay
from autoheal_otel.analytics.resume import resume_state
from autoheal_otel.disk._audit_retention import JOURNAL
from autoheal_otel.semconv import Reason
from autoheal_otel.testing import CRASH_EXIT_CODE, FakeClock, InMemorySink

from .test_retention_audit import FOLDER, START, build, keeper_run, naive, policy, records

ROOT = Path(__file__).resolve().parent.parent


RETENTION = """
import sys
from datetime import datetime
from autoheal_otel import AutoHealManager
from autoheal_otel.testing import FakeClock, crash_at_deletion
from tests.test_retention_audit import policy
data, now, kill_at = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
crash_at_deletion(kill_at)
clock = FakeClock(now)
manager = AutoHealManager(policy(), data, clock=clock)
clock.advance(61)  # the first run is due a minute after the start
manager.run_background("retention")
"""


def _child(script: str, *args: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, timeout=180, check=False)
    return done.returncode


def _counts(data: Path) -> dict[str, int]:
    with AuditAnalytics(data) as db:
        rows = db.sql("SELECT kind, count(*) AS n FROM audit GROUP BY kind")
    return {r["kind"]: int(r["n"]) for r in rows}


def _kept_since(data: Path, since: str) -> int:
    with AuditAnalytics(data) as db:
        return int(
            db.sql("SELECT count(*) AS n FROM audit WHERE ts >= $s::TIMESTAMP", {"s": since})[0][
                "n"
            ]
        )


@pytest.mark.parametrize(
    "kills",
    [(1,), (2,), (3,), (6,), (3, 2)],
    ids=["journalled", "committed", "first-file", "several-files", "killed-again-finishing"],
)
def test_kill_during_audit_retention(tmp_path: Path, kills: tuple[int, ...]) -> None:
    """Killed after the journal (1), after the manifest's commit line (2), after the first
    file (3) or several (6), or after the first file and again while the next run finishes:
    before the commit nothing is gone, after it the next run deletes the rest and records it;
    the kept records, the restart and replay are as before."""
    clock = FakeClock(START)
    build(tmp_path, clock, 8, policy())
    now = clock.now()
    run_at = now + timedelta(seconds=61)  # when each process's retention turn runs
    before = read_manifest(tmp_path / FOLDER)
    expected = resume_state(tmp_path, policy(), run_at)
    for kill_at in kills:
        assert _child(RETENTION, str(tmp_path), now.isoformat(), str(kill_at)) == CRASH_EXIT_CODE
        assert (tmp_path / JOURNAL).exists()
        after_kill = read_manifest(tmp_path / FOLDER)
        if kills[0] == 1:
            assert after_kill == before  # not committed: every output is still there
        else:
            assert len(after_kill) < len(before)
        # Whatever a reader sees is whole: every output it lists has all its files.
        for out in after_kill:
            for name in (out.results, out.events, out.rollup, out.hourly):
                assert name is not None and (tmp_path / FOLDER / name).exists()
        assert records(tmp_path, Reason.RETENTION_DELETED) == []
    keeper_run(tmp_path, FakeClock(now), policy()).close()
    assert not (tmp_path / JOURNAL).exists()
    kept = read_manifest(tmp_path / FOLDER)
    gone = {o.id for o in before} - {o.id for o in kept}
    named = {n for o in kept for n in (o.results, o.events, o.rollup, o.hourly)}
    on_disk = {p.name for p in (tmp_path / FOLDER).glob("*.parquet")}
    assert on_disk == named  # no half-deleted output left behind
    (deleted,) = records(tmp_path, Reason.RETENTION_DELETED)  # one run, recorded once
    details = deleted["details"]
    assert gone and sorted(d["id"] for d in details["deleted"]) == sorted(gone)
    assert details["resumed"] is (kills[0] > 1)
    keep_days_cut = naive(details["keep_days_cut"])
    assert all((o.last_ts or o.max_ts) >= keep_days_cut for o in kept)  # type: ignore[operator]
    # Nothing kept is lost: the records from the kept checkpoint on, restart and replay.
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    again = resume_state(tmp_path, policy(), run_at)
    assert expected is not None and again is not None and again.state == expected.state


def test_kill_during_a_checkpoint(tmp_path: Path) -> None:
    """A checkpoint's line torn by kill -9 half-way: the next process starts (from the last
    whole checkpoint), replay matches every decision, nothing before the tear is lost."""
    clock = FakeClock(START)
    build(tmp_path, clock, 2, policy())
    counts = _counts(tmp_path)
    now = clock.now()
    script = textwrap.dedent(
        f"""
        import os, signal
        from datetime import datetime
        from autoheal_otel import AutoHealManager, Outcome, StepResult
        from autoheal_otel.testing import FakeClock
        from tests.test_retention_audit import policy
        real = os.write
        def torn(fd, data):
            if b'"kind":"checkpoint"' in bytes(data):
                real(fd, bytes(data)[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            return real(fd, data)
        clock = FakeClock(datetime.fromisoformat({now.isoformat()!r}))
        manager = AutoHealManager(policy(), {str(tmp_path)!r}, clock=clock)
        for i in range(20):
            clock.advance(30)
            if manager.should_execute_step("wf0", "s0")[0]:
                manager.on_step_result("wf0", "s0", StepResult(outcome=Outcome.SUCCESS))
        os.write = torn
        manager.checkpoint()
        """
    )
    assert _child(script) == -signal.SIGKILL
    tail = max((tmp_path / "audit").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    last = tail.read_bytes().rsplit(b"\n", 1)[-1]
    assert b'"checkpoint_version"' in last  # the torn half-line is there
    with pytest.raises(json.JSONDecodeError):
        json.loads(last)
    later = FakeClock(now)
    later.advance(3600)
    sink = InMemorySink()
    with AutoHealManager(policy(), tmp_path, clock=later, sinks=[sink]) as manager:
        (start,) = [e for e in sink.of_kind(EventKind.SESSION) if e.reason == Reason.SESSION_START]
        assert "from_checkpoint" in start.details["restored"]  # the last whole checkpoint
        assert manager.should_execute_step("wf0", "s0")[0]
    after = _counts(tmp_path)
    for kind, n in counts.items():
        assert after.get(kind, 0) >= n, kind  # nothing recorded before the kill is lost
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.skipped_lines == 1
    fast = resume_state(tmp_path, policy(), later.now())
    whole = resume_state(tmp_path, policy(), later.now(), whole=True)
    assert fast is not None and whole is not None
    assert fast.streaks == whole.streaks and fast.max_seq == whole.max_seq
