"""Replay reads the log in slices of time: the same records, once each, in the same order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoheal_otel import AutoHealManager
from autoheal_otel.analytics import AuditAnalytics, _ordered
from autoheal_otel.analytics._ordered import ordered
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.analytics.replay import replay
from autoheal_otel.testing import FakeClock

from .conftest import OK, POST, TNF
from .test_replay import record

COLUMNS = "ts, seq, writer, kind, workflow_id, step_id, outcome"


def _write(data_dir: Path, advances: list[int], writers: int) -> None:
    """One manager per writer, each writing steps at the given advances (ms; 0 repeats an
    instant), the writers' lines interleaved on one fake clock."""
    clock = FakeClock()
    managers = [AutoHealManager(data_dir=data_dir, clock=clock) for _ in range(writers)]
    try:
        for i, ms in enumerate(advances):
            clock.advance(ms / 1000)
            m = managers[i % writers]
            m.on_step_result(f"w{i % 2}", f"s{i % 3}", (OK, TNF, POST)[i % 3])
    finally:
        for m in managers:
            m.close()


@given(
    advances=st.lists(st.sampled_from([0, 0, 1, 2, 50, 1000, 3_600_000]), max_size=40),
    slice_rows=st.integers(1, 12),
    writers=st.integers(1, 2),
    compacted=st.booleans(),
)
def test_slices_yield_every_record_once_in_replay_order(
    tmp_path_factory: pytest.TempPathFactory,
    advances: list[int],
    slice_rows: int,
    writers: int,
    compacted: bool,
) -> None:
    """Whatever the spread of the timestamps (repeats, bursts, hour gaps), the slices yield
    exactly what one ORDER BY over the whole log yields."""
    data_dir = tmp_path_factory.mktemp("log")
    _write(data_dir, advances, writers)
    if compacted:
        compact(data_dir)
    with AuditAnalytics(data_dir) as db:
        whole = db.sql(f"SELECT {COLUMNS} FROM audit ORDER BY ts, seq, writer")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_ordered, "SLICE_ROWS", slice_rows)
            sliced = list(ordered(db, COLUMNS))
    assert sliced == whole


def test_replay_in_small_slices_equals_replay_in_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recorded log with restarts, operator moves and a version change replays to the same
    report in slices of 50 records as in one slice, and matches the log."""
    record(tmp_path, seed=11)
    clock = FakeClock()
    clock.advance(100_000)  # after the recording (its clock starts where this one does)
    rng = random.Random(2)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as m:  # a restart, then more steps
        for _ in range(60):
            clock.advance(rng.choice([0, 1, 30]))
            m.on_step_result("a", "s1", rng.choice([OK, TNF]))
    whole = replay(tmp_path)
    monkeypatch.setattr(_ordered, "SLICE_ROWS", 50)
    sliced = replay(tmp_path)
    assert sliced.records > 800
    assert sliced.to_dict() == whole.to_dict()
    assert sliced.matches, sliced.mismatches[:3]
