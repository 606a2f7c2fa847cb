"""Bounded compaction: batches of segments, DuckDB's memory limit, spill files, kill -9."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from autoheal_otel import AutoHealManager
from autoheal_otel.analytics import AuditAnalytics, compaction
from autoheal_otel.analytics._view import COMPACTED_DIR, read_manifest
from autoheal_otel.analytics.compaction import SPILL_DIR, compact, pending_segments
from autoheal_otel.testing import FakeClock

from .conftest import OK, POST, TNF

RECORDS = (
    "SELECT writer, seq, kind, ts, workflow_id, step_id, state, outcome, reason"
    " FROM audit ORDER BY writer, seq"
)


def _backlog(data_dir: Path, sessions: int = 10, steps: int = 12) -> None:
    """Write ``sessions`` closed segments (one manager each, as restarts leave them)."""
    clock = FakeClock()
    for n in range(sessions):
        with AutoHealManager(data_dir=data_dir, clock=clock) as m:
            for i in range(steps):
                step = f"s{i % 3}"
                m.should_execute_step(f"w{n % 3}", step)
                m.on_step_result(f"w{n % 3}", step, TNF if i % 5 == 0 else POST if i % 7 else OK)
                clock.advance(3)


def _records(data_dir: Path) -> list[dict[str, Any]]:
    with AuditAnalytics(data_dir) as db:
        return db.sql(RECORDS)


def test_a_backlog_compacts_batch_by_batch_to_the_same_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many closed segments, a few lines per batch: every batch is an output of its own
    (then merged), and the log holds the same records, none lost or doubled."""
    _backlog(tmp_path)
    segments = pending_segments(tmp_path)
    assert len(segments) == 10
    before = _records(tmp_path)
    monkeypatch.setattr(compaction, "BATCH_LINES", 40)  # each segment holds ~30 lines
    seen: list[tuple[int, int]] = []
    report = compact(tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert sorted(report.compacted) == sorted(p.name for p in segments)
    assert not pending_segments(tmp_path)
    assert report.rows == len(before) and report.bad_lines == 0
    # One progress report per batch: more than one batch, the last one complete.
    assert len(seen) > 3 and seen[0] == (0, 10) and seen[-1] == (10, 10)
    assert report.merged, "small batch outputs are merged as before"
    after = _records(tmp_path)
    assert after == before
    assert len({(r["writer"], r["seq"]) for r in after}) == len(after)


def test_each_batch_is_committed_by_its_own_manifest_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's segments are named by one manifest line and deleted after it: a run that
    stops between batches keeps the batches it finished."""
    _backlog(tmp_path, sessions=5)
    before = _records(tmp_path)
    monkeypatch.setattr(compaction, "BATCH_LINES", 1)  # one segment per batch
    monkeypatch.setattr(compaction, "MERGE_AT", 100)  # keep the batch outputs apart
    calls: list[int] = []

    def stop_after_two(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt  # stands for a run that stops here

    with pytest.raises(KeyboardInterrupt):
        compact(tmp_path, progress=stop_after_two)
    outputs = read_manifest(tmp_path / "audit" / COMPACTED_DIR)
    assert [len(o.segments) for o in outputs] == [1, 1]
    assert len(pending_segments(tmp_path)) == 3
    assert _records(tmp_path) == before
    compact(tmp_path)
    assert not pending_segments(tmp_path)
    assert _records(tmp_path) == before


def test_the_run_connection_has_the_memory_limit_threads_and_spill_dir(tmp_path: Path) -> None:
    """The connection a run uses holds DuckDB to MEMORY_LIMIT on THREADS thread(s), spilling
    inside the data directory; the spill directory is gone when the run ends."""
    _backlog(tmp_path, sessions=2)
    settings: dict[str, str] = {}

    def read_back(con: Any) -> None:
        for name in ("memory_limit", "threads", "temp_directory", "preserve_insertion_order"):
            settings[name] = str(con.execute(f"SELECT current_setting('{name}')").fetchone()[0])

    compact(tmp_path, connected=read_back)
    reference = duckdb.connect(":memory:")
    reference.execute(f"SET memory_limit = '{compaction.MEMORY_LIMIT}'")
    expected = str(reference.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    default = duckdb.connect(":memory:").execute("SELECT current_setting('memory_limit')")
    assert settings["memory_limit"] == expected != str(default.fetchall()[0][0])
    assert settings["threads"] == str(compaction.THREADS) == "1"
    assert Path(settings["temp_directory"]) == tmp_path / "audit" / SPILL_DIR
    assert settings["preserve_insertion_order"] == "False"
    assert not (tmp_path / "audit" / SPILL_DIR).exists()


def test_a_killed_runs_spill_files_go_and_a_planted_link_is_never_followed(
    tmp_path: Path,
) -> None:
    """Spill files a killed run left are deleted by the next run; a symlink planted where
    the spill directory goes is removed, and nothing is written where it pointed."""
    _backlog(tmp_path, sessions=2)
    spill = tmp_path / "audit" / SPILL_DIR
    spill.mkdir()
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 1000)
    compact(tmp_path)
    assert not spill.exists()
    _backlog(tmp_path / "more", sessions=1)
    for p in pending_segments(tmp_path / "more"):
        p.rename(tmp_path / "audit" / p.name)
    outside = tmp_path / "outside"
    outside.mkdir()
    spill.symlink_to(outside)
    report = compact(tmp_path)
    assert report.compacted
    assert not spill.exists() and not spill.is_symlink()
    assert outside.is_dir() and not list(outside.iterdir())


CHILD = r"""
import sys
from autoheal_otel.analytics import compaction
compaction.BATCH_LINES = 1  # one segment per batch: a commit point per segment
compaction.MERGE_AT = 3
report = compaction.compact(
    sys.argv[1], progress=lambda done, total: print(done, total, flush=True)
)
print("done", flush=True)
"""


def test_compaction_killed_at_random_batches_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """kill -9 a run after a random number of batches, again and again: after every kill the
    log holds exactly the records it held before, and the runs together compact it all."""
    _backlog(tmp_path, sessions=12)
    before = _records(tmp_path)
    rng = random.Random(24)
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()  # "0 N": the run has started its first batch
        if line.startswith("0 "):
            for _ in range(rng.randint(0, 2)):
                line = proc.stdout.readline()
        if line and line.strip() != "done":
            proc.send_signal(signal.SIGKILL)  # somewhere inside the next batch
        proc.wait(timeout=120)
        rest = proc.stdout.read()
        error = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        else:
            assert proc.returncode == 0, error
        assert _records(tmp_path) == before
        if "done" in line + rest:
            break
    assert kills >= 3
    compact(tmp_path)  # whatever the kills left, one more run finishes it
    assert not pending_segments(tmp_path)
    assert not (tmp_path / "audit" / SPILL_DIR).exists()
    assert _records(tmp_path) == before
