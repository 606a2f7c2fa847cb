"""The success store's rebuild from the log: bounded chunks, seq order, a kill between chunks."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from autoheal_otel import AutoHealManager
from autoheal_otel.sinks import _repair
from autoheal_otel.sinks.sqlite import SuccessStore, rebuild_from_segments

WRITER = "dead.3.cc"


def _segments(audit: Path) -> list[Path]:
    """Three closed segments of a dead writer: 10 gates and 10 qualifying successes each."""
    paths = []
    seq = 0
    for n in range(1, 4):
        lines = []
        for _ in range(10):
            for kind in ("gate", "result"):
                seq += 1
                rec: dict[str, Any] = {
                    "ts": f"2026-01-01T00:00:{seq % 60:02d}Z",
                    "seq": seq,
                    "kind": kind,
                    "writer": WRITER,
                    "workflow_id": "w",
                    "step_id": "s",
                    "state": "running",
                    "learning": True,
                }
                if kind == "result":
                    rec.update(outcome="success", validated=True, confidence=0.9)
                lines.append(orjson.dumps(rec))
        path = audit / f"audit-20260101-{WRITER}-{n:04d}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        paths.append(path)
    return paths


def _stored(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / SuccessStore.FILENAME) as conn:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM successes WHERE writer = ?", (WRITER,))]
    conn.close()
    return sorted(seqs)


def test_a_rebuild_killed_between_chunks_keeps_a_prefix_and_the_next_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go in in seq order, a chunk per commit: a rebuild that dies after its first chunk
    leaves the oldest missing rows, and the next one inserts exactly the rest."""
    with AutoHealManager(data_dir=tmp_path):
        pass  # creates the store
    paths = _segments(tmp_path / "audit")
    every = list(range(2, 61, 2))
    assert rebuild_from_segments(tmp_path, paths[:1]) == 10  # the store has the first segment
    assert _stored(tmp_path) == every[:10]
    monkeypatch.setattr(_repair, "CHUNK_ROWS", 4)
    real_row = _repair._row
    calls = 0

    def dying_row(writer: str, rec: dict[str, Any]) -> tuple[Any, ...]:
        nonlocal calls
        calls += 1
        if calls > 6:  # inside the second chunk
            raise KeyboardInterrupt
        return real_row(writer, rec)

    monkeypatch.setattr(_repair, "_row", dying_row)
    with pytest.raises(KeyboardInterrupt):
        rebuild_from_segments(tmp_path, paths)
    assert _stored(tmp_path) == every[:14]  # the first segment and the first chunk after it
    monkeypatch.setattr(_repair, "_row", real_row)
    assert rebuild_from_segments(tmp_path, paths) == 16
    assert _stored(tmp_path) == every
    assert rebuild_from_segments(tmp_path, paths) == 0  # nothing left to rebuild


def test_a_rebuild_of_everything_reads_forward_from_the_oldest_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty store (mark -1): every qualifying row of every segment, none twice, in
    chunks smaller than one segment's."""
    with AutoHealManager(data_dir=tmp_path):
        pass
    paths = _segments(tmp_path / "audit")
    monkeypatch.setattr(_repair, "CHUNK_ROWS", 3)
    assert rebuild_from_segments(tmp_path, paths) == 30
    assert _stored(tmp_path) == list(range(2, 61, 2))
