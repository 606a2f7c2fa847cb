"""Automatic compaction: closed segments become Parquet on a background thread, off the hooks."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from autoheal_otel import AutoHealManager
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.compaction import LOCK, compact, pending_segments
from autoheal_otel.runtime._compactor import SETTLE_SECONDS, AutoCompactor, start_compactor
from autoheal_otel.testing import FakeClock

from .conftest import OK, TNF, policy_with


def _fill(data_dir: Path, clock: FakeClock, steps: int = 12) -> None:
    with AutoHealManager(data_dir=data_dir, clock=clock) as m:
        for i in range(steps):
            m.on_step_result("w", f"s{i % 3}", TNF if i % 4 == 0 else OK)
            clock.advance(5)


def _summary(data_dir: Path) -> list[dict[str, object]]:
    with AuditAnalytics(data_dir) as db:
        return db.query("summary")


def test_kicked_compactor_compacts_closed_segments_only(tmp_path: Path, clock: FakeClock) -> None:
    """A kick compacts the closed segments on the thread; a live one stays JSONL; answers hold."""
    _fill(tmp_path, clock)
    before = _summary(tmp_path)
    live = AutoHealManager(data_dir=tmp_path, clock=clock, policy=policy_with())
    live.on_step_result("w", "s0", OK)
    live.flush()
    compactor = AutoCompactor(tmp_path, 0, settle_seconds=0)
    try:
        compactor.kick()
        assert compactor.wait_idle(60)
        assert compactor.runs == 1 and compactor.errors == 0
        assert compactor.last_report is not None and len(compactor.last_report.compacted) == 1
        assert pending_segments(tmp_path) == []
        assert live.audit is not None
        assert list((tmp_path / "audit").glob("*.jsonl")) == [live.audit.path]
        assert _summary(tmp_path)[0]["results"] == before[0]["results"] + 1
    finally:
        compactor.close()
        live.close()


def test_nothing_closed_means_no_run(tmp_path: Path) -> None:
    """With no closed segment a look does nothing: no output, no manifest; close() stops
    the compactor's thread."""
    before = set(threading.enumerate())
    compactor = AutoCompactor(tmp_path, 0, settle_seconds=0)
    try:
        new = set(threading.enumerate()) - before  # (other tests' threads may come and go)
        mine = [t for t in new if t.name == "autoheal-compaction"]
        assert len(mine) == 1
        assert compactor.run_once() is None
        assert not (tmp_path / "audit" / "compacted").exists()
    finally:
        compactor.close()
    assert not mine[0].is_alive()  # close() stopped it


def test_manager_starts_and_stops_its_compactor(tmp_path: Path, clock: FakeClock) -> None:
    """A manager with a data directory runs one compactor and stops it at close; 0 turns it off."""
    import threading

    before = set(threading.enumerate())
    manager = AutoHealManager(data_dir=tmp_path, clock=clock)
    assert "compaction" in manager.background_jobs()
    mine = [t for t in threading.enumerate() if t not in before and t.name == "autoheal-compaction"]
    assert len(mine) == 1 and mine[0].is_alive()
    manager.close()
    assert not mine[0].is_alive()
    off = policy_with(audit={"compact_interval_seconds": 0})
    with AutoHealManager(data_dir=tmp_path, clock=clock, policy=off) as quiet:
        assert "compaction" not in quiet.background_jobs()
        assert quiet.run_background("compaction") == 0
    assert start_compactor(tmp_path, off.audit, read_only=False) is None
    assert start_compactor(None, policy_with().audit, read_only=False) is None
    assert start_compactor(tmp_path, policy_with().audit, read_only=True) is None


def test_a_failing_run_is_counted_not_raised(tmp_path: Path, clock: FakeClock) -> None:
    """A compaction that cannot write is logged and counted; the thread keeps going."""
    _fill(tmp_path, clock)
    folder = tmp_path / "audit" / "compacted"
    folder.write_text("not a directory")  # compaction cannot create its folder
    compactor = AutoCompactor(tmp_path, 0, settle_seconds=0)
    try:
        compactor.kick()
        assert compactor.wait_idle(60)
        assert compactor.errors == 1 and compactor.runs == 0
        folder.unlink()
        compactor.kick()
        assert compactor.wait_idle(60)
        assert compactor.runs == 1 and pending_segments(tmp_path) == []
    finally:
        compactor.close()


def test_runs_take_turns_on_the_lock(tmp_path: Path, clock: FakeClock) -> None:
    """A run waits while another holds the compaction lock, then finds nothing left to double."""
    _fill(tmp_path, clock)
    before = _summary(tmp_path)
    folder = tmp_path / "audit" / "compacted"
    folder.mkdir(parents=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()
    reports = []
    worker = threading.Thread(target=lambda: (reports.append(compact(tmp_path)), done.set()))
    worker.start()
    try:
        assert not done.wait(0.3)  # blocked on the lock held here
        assert pending_segments(tmp_path)
    finally:
        os.close(fd)
    assert done.wait(60)
    worker.join()
    assert len(reports[0].compacted) == 1
    assert compact(tmp_path).compacted == []
    assert _summary(tmp_path) == before
    assert (folder / LOCK).exists()


def test_close_stops_a_starting_run_without_waiting_and_loses_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    """close() during a run stops it (no error counted); a later run compacts everything."""
    _fill(tmp_path, clock)
    before, pending = _summary(tmp_path), pending_segments(tmp_path)
    started = threading.Event()

    class Held(AutoCompactor):
        def _connected(self, con: object) -> None:
            started.set()
            self._wake.wait(30)  # close() sets it, after it marked the compactor closing
            super()._connected(con)

    threads = set(threading.enumerate())
    compactor = Held(tmp_path, 0, settle_seconds=0)
    (mine,) = [t for t in set(threading.enumerate()) - threads if t.name == "autoheal-compaction"]
    compactor.kick()
    assert started.wait(30)
    compactor.close()
    assert not mine.is_alive()  # its thread stopped
    assert (compactor.runs, compactor.errors) == (0, 0)
    assert pending_segments(tmp_path) == pending
    report = compact(tmp_path)
    assert report.compacted == [p.name for p in pending]
    assert _summary(tmp_path) == before


def test_a_robots_compactor_leaves_a_just_closed_segment_for_later(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Other processes read a closed segment's last lines from the file: a running robot's
    compaction waits until it settled (SETTLE_SECONDS of real time) before taking it."""
    import os
    import time

    _fill(tmp_path, clock)
    compactor = AutoCompactor(tmp_path, 0)
    try:
        assert compactor.settle_seconds == SETTLE_SECONDS
        assert compactor.run_once() is None  # just closed: not yet
        assert pending_segments(tmp_path, SETTLE_SECONDS) == []
        assert pending_segments(tmp_path)  # (`autoheal compact` takes it at once)
        old = time.time() - SETTLE_SECONDS - 1
        for segment in (tmp_path / "audit").glob("*.jsonl"):
            os.utime(segment, (old, old))
        report = compactor.run_once()
        assert report is not None and report.compacted
    finally:
        compactor.close()
