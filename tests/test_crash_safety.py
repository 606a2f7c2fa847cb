"""Crash safety: a process killed at random instants of snapshots and rollbacks, many times."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

from autoheal_otel.testing import CRASH_EXIT_CODE
from autoheal_otel.versioning import FileComponent, SqliteComponent, VersionedStore

CHILD = r"""
import random, sqlite3, sys
from autoheal_otel.versioning import FileComponent, SqliteComponent, VersionedStore
data, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
files = FileComponent("models")
store = VersionedStore(data, [files, SqliteComponent()], keep=3)
conn = sqlite3.connect(f"{data}/target_memory.sqlite")
conn.execute("CREATE TABLE IF NOT EXISTS rows (v INTEGER)")
conn.commit()
i = 0
while True:
    i += 1
    for name in ("a.bin", "b.bin", "deep/c.bin"):
        files.write_file(name, f"{seed}:{i}:{name}".encode() * rng.randint(1, 2000))
    conn.execute("INSERT INTO rows VALUES (?)", (i,))
    conn.commit()
    if rng.random() < 0.6 or store.current() is None:
        store.snapshot(f"op {i}", known_good=rng.random() < 0.3)
    else:
        sets = store.list()
        store.rollback(rng.choice(sets).id)
    print(i, flush=True)
"""


def _check(data: Path) -> None:
    """Open the store (recovering) and check every invariant a reader relies on."""
    files = FileComponent("models")
    store = VersionedStore(data, [files, SqliteComponent()], keep=3)
    assert not (data / "versions" / "ROLLBACK").exists()
    current = store.current()
    assert current is not None
    assert store.verify().ok, store.verify().problems
    for vset in store.list():
        assert store.verify(vset.id).ok
    known = store.known_good()
    assert known is not None and known.id in [s.id for s in store.list()]
    used = {f"v{s.version_of(files.name):02d}" for s in store.list()}
    on_disk = {p.name for p in (data / files.root).iterdir()} - {"work"}
    assert on_disk == used, (on_disk, used)
    assert not list((data / "versions").glob(".*.tmp"))


def test_killed_at_random_instants_leaves_old_or_new_set(tmp_path: Path) -> None:
    """SIGKILL mid-operation, 25 times in a row on one store: every reopen is consistent."""
    rng = random.Random(1234)
    data = tmp_path / "data"
    data.mkdir()
    kills = 0
    for round_ in range(25):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data), str(round_)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        wanted = rng.randint(1, 6)
        for _ in range(wanted):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "child died"
        proc.send_signal(signal.SIGKILL)  # somewhere inside the next operation
        proc.wait(timeout=60)
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
        kills += proc.returncode == -signal.SIGKILL
        _check(data)
    assert kills == 25


SWEEP = r"""
import sqlite3, sys
from autoheal_otel.testing import crash_at_boundary
from autoheal_otel.versioning import FileComponent, SqliteComponent, VersionedStore
data, op, crash_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
if crash_at:
    crash_at_boundary(crash_at)
files = FileComponent("models")
store = VersionedStore(data, [files, SqliteComponent()], keep=3)
conn = sqlite3.connect(f"{data}/target_memory.sqlite")
if op == "setup":
    conn.execute("CREATE TABLE rows (v TEXT)")
    for i in (1, 2):
        files.write_file("a.bin", f"a{i}".encode())
        files.write_file("deep/b.bin", f"b{i}".encode())
        conn.execute("INSERT INTO rows VALUES (?)", (f"r{i}",))
        conn.commit()
        store.snapshot(f"v{i}", known_good=i == 1)
elif op == "snapshot":
    files.write_file("a.bin", b"a3")
    conn.execute("INSERT INTO rows VALUES ('r3')")
    conn.commit()
    store.snapshot("v3")
else:
    store.rollback(int(op))
"""


def _run(data: Path, op: str, crash_at: int) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", SWEEP, str(data), op, str(crash_at)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode in (0, CRASH_EXIT_CODE), proc.stderr
    return proc.returncode


def _working(data: Path) -> tuple[bytes, bytes, list[str]]:
    import sqlite3

    work = data / "artifacts"
    folder = next(work.iterdir()) / "work"
    with sqlite3.connect(data / "target_memory.sqlite") as conn:
        rows = [r[0] for r in conn.execute("SELECT v FROM rows ORDER BY rowid")]
    return (folder / "a.bin").read_bytes(), (folder / "deep" / "b.bin").read_bytes(), rows


def test_crash_at_every_step_of_a_snapshot_and_a_rollback(tmp_path: Path) -> None:
    """Die at each durable step boundary in turn; reopening always gives the old or new set.

    After a crashed rollback, the working copies always match the set that is active.
    """
    import shutil

    template = tmp_path / "template"
    template.mkdir()
    assert _run(template, "setup", 0) == 0
    for op, old, new in (("snapshot", 2, 3), ("1", 2, 1)):
        crashes = 0
        for point in range(1, 60):
            data = tmp_path / f"{op}-{point}"
            shutil.copytree(template, data)
            code = _run(data, op, point)
            _check(data)
            store = VersionedStore(data, [FileComponent("models"), SqliteComponent()], keep=3)
            current = store.current()
            assert current is not None and current.id in (old, new), (op, point, current)
            if op != "snapshot":
                # Before its intent is durable a rollback has not started (old set, old working
                # copy); after it, reopening finishes it (new set, restored working copy).
                expected = {1: (b"a1", b"b1", ["r1"]), 2: (b"a2", b"b2", ["r1", "r2"])}
                assert _working(data) == expected[current.id], (point, current.id)
            if code == 0:
                break
            crashes += 1
        assert crashes >= 5, f"{op}: the sweep found only {crashes} crash points"
