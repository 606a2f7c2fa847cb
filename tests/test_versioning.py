"""The versioned store: safe ids, snapshot/rollback round trips, retention, verify, FAISS."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoheal_otel.testing import FakeClock
from autoheal_otel.versioning import (
    FaissIndexComponent,
    FileComponent,
    PrototypesComponent,
    SqliteComponent,
    StoreError,
    VersionedStore,
    safe_name,
)

SAFE = re.compile(r"^([A-Za-z0-9_-]{0,40}-)?[0-9a-f]{16}$")
HOSTILE = [
    "../x",
    "../../etc/passwd",
    "/abs/path",
    "a\x00b",
    "CON",
    "NUL",
    ".",
    "..",
    "x" * 5000,
    "a/b",
    "a_b",
    "ünï/cødé",
    "~root",
    "$(rm -rf /)",
    "-rf",
    " ",
]


@given(st.text(min_size=1, max_size=300))
def test_safe_name_is_always_a_plain_folder_name(identifier: str) -> None:
    """Any id maps to a short name of safe characters, never a path."""
    name = safe_name(identifier)
    assert SAFE.match(name), name
    assert len(name) <= 57 and name not in {".", ".."}


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=50))
def test_safe_names_do_not_collide(a: str, b: str) -> None:
    """Different ids give different names, even with equal slugs."""
    assert (safe_name(a) == safe_name(b)) == (a == b)


def test_hostile_ids_stay_inside_the_data_dir(tmp_path: Path) -> None:
    """FAISS and file components with hostile ids write only under the data directory."""
    data = tmp_path / "data"
    components = [FaissIndexComponent(i) for i in HOSTILE] + [FileComponent(i) for i in HOSTILE]
    store = VersionedStore(data, components)
    index = faiss.IndexFlatIP(4)
    index.add(np.eye(4, dtype="float32"))
    for component in components:
        if isinstance(component, FaissIndexComponent):
            component.save(index)
        else:
            component.write_file("f.bin", b"x")
    store.snapshot("hostile")
    outside = [p for p in tmp_path.rglob("*") if data not in p.parents and p != data]
    assert outside == []
    assert len({c.root for c in components}) == len(components)
    for path in data.rglob("*"):
        assert path.resolve().is_relative_to(data.resolve())


def _store(tmp_path: Path, keep: int = 5) -> tuple[VersionedStore, FileComponent, SqliteComponent]:
    files = FileComponent("models")
    db = SqliteComponent()
    conn = sqlite3.connect(tmp_path / "target_memory.sqlite")
    conn.execute("CREATE TABLE IF NOT EXISTS rows (v TEXT)")
    conn.commit()
    conn.close()
    return VersionedStore(tmp_path, [files, db], keep=keep, clock=FakeClock()), files, db


def _state(tmp_path: Path, files: FileComponent) -> tuple[dict[str, bytes], list[str]]:
    content = {
        str(p.relative_to(files.working)): p.read_bytes()
        for p in files.working.rglob("*")
        if p.is_file()
    }
    with sqlite3.connect(tmp_path / "target_memory.sqlite") as conn:
        rows = [r[0] for r in conn.execute("SELECT v FROM rows ORDER BY rowid")]
    return content, rows


changes = st.lists(
    st.tuples(
        st.sampled_from(["a.bin", "b.bin", "sub/c.bin"]),
        st.binary(max_size=64),
        st.text(max_size=5),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25)
@given(before=changes, after=changes, keep=st.integers(2, 4))
def test_rollback_round_trip(
    tmp_path_factory: pytest.TempPathFactory, before: list, after: list, keep: int
) -> None:
    """Snapshot v, change anything, roll back to v: every component equals v again."""
    tmp_path = tmp_path_factory.mktemp("store")
    store, files, _ = _store(tmp_path, keep)

    def apply(batch: list) -> None:
        with sqlite3.connect(tmp_path / "target_memory.sqlite") as conn:
            for name, data, row in batch:
                files.write_file(name, data)
                conn.execute("INSERT INTO rows VALUES (?)", (row,))

    apply(before)
    v = store.snapshot("v")
    expected = _state(tmp_path, files)
    for _ in range(3):
        apply(after)
        store.snapshot("later")
    store.rollback(v.id)
    assert _state(tmp_path, files) == expected
    assert store.current().id == v.id  # type: ignore[union-attr]
    assert store.verify().ok
    ids = [s.id for s in store.list()]
    assert ids == sorted(ids) and len(ids) <= keep + 2


def test_unchanged_components_keep_their_version(tmp_path: Path) -> None:
    """A snapshot reuses the version of a component whose content did not change."""
    store, files, _ = _store(tmp_path)
    files.write_file("a.bin", b"1")
    first = store.snapshot("first")
    second = store.snapshot("nothing changed")
    assert second.components["file:" + files.name.split(":")[1]].version == first.version_of(
        files.name
    )
    files.write_file("a.bin", b"2")
    third = store.snapshot("changed")
    assert third.version_of(files.name) == first.version_of(files.name) + 1
    assert [v.version for v in store.versions(files.name)] == [1, 2]


def test_retention_keeps_active_and_known_good(tmp_path: Path) -> None:
    """Retention keeps `keep` sets, plus the active and the known-good ones, and their folders."""
    store, files, _ = _store(tmp_path, keep=2)
    files.write_file("a.bin", b"0")
    first = store.snapshot("known good", known_good=True)
    for i in range(2, 7):
        files.write_file("a.bin", str(i).encode())
        store.snapshot(f"v{i}")
    assert [s.id for s in store.list()] == [1, 5, 6]  # newest two, and the known-good one
    store.rollback(5)
    assert [s.id for s in store.list()] == [1, 5, 6]  # 5 is active now
    files.write_file("a.bin", b"new")
    store.snapshot("after rollback")
    assert [s.id for s in store.list()] == [1, 6, 7]
    assert store.known_good().id == first.id  # type: ignore[union-attr]
    assert (store.active_path(files.name) / "a.bin").read_bytes() == b"new"
    assert (tmp_path / files.root / "v01" / "a.bin").read_bytes() == b"0"
    versions_on_disk = sorted(p.name for p in (tmp_path / files.root).glob("v*"))
    used = sorted({f"v{s.version_of(files.name):02d}" for s in store.list()})
    assert versions_on_disk == used


def test_rollback_target_errors(tmp_path: Path) -> None:
    """Rolling back to nothing says so and changes nothing."""
    store, files, _ = _store(tmp_path)
    with pytest.raises(StoreError, match="known-good"):
        store.rollback()
    files.write_file("a.bin", b"1")
    store.snapshot("only")
    with pytest.raises(StoreError, match="previous"):
        store.rollback("previous")
    with pytest.raises(StoreError, match=r"no version set s000042 \(the sets: s0"):
        store.rollback(42)
    assert store.current().id == 1  # type: ignore[union-attr]


def test_verify_finds_corruption(tmp_path: Path) -> None:
    """verify() recomputes checksums and reports a changed or missing file."""
    store, files, _ = _store(tmp_path)
    files.write_file("a.bin", b"good")
    files.write_file("b.bin", b"good")
    store.snapshot("v")
    folder = store.active_path(files.name)
    (folder / "a.bin").unlink()
    (folder / "a.bin").write_bytes(b"evil")  # a new inode: the shared link is untouched
    (folder / "b.bin").unlink()
    report = store.verify()
    assert not report.ok
    assert sorted((p["file"], p["problem"]) for p in report.problems) == [
        ("a.bin", "checksum"),
        ("b.bin", "missing"),
    ]


def test_sqlite_snapshot_drops_later_rows_on_rollback(tmp_path: Path) -> None:
    """Target-memory rows learned after a snapshot are gone after rolling back to it."""
    store, _, _ = _store(tmp_path)
    conn = sqlite3.connect(tmp_path / "target_memory.sqlite")
    conn.execute("INSERT INTO rows VALUES ('learned before')")
    conn.commit()
    v1 = store.snapshot("v1")
    conn.execute("INSERT INTO rows VALUES ('learned after')")
    conn.commit()
    store.snapshot("v2")
    store.rollback(v1.id)
    assert [r[0] for r in conn.execute("SELECT v FROM rows")] == ["learned before"]
    conn.close()


def test_real_faiss_rollback_restores_search_results(tmp_path: Path) -> None:
    """Build an index of prototypes, snapshot, degrade it with noise, roll back: same results."""
    rng = np.random.default_rng(7)
    prototypes = rng.standard_normal((500, 32)).astype("float32")
    faiss.normalize_L2(prototypes)
    component = FaissIndexComponent("invoice")
    store = VersionedStore(tmp_path, [component])
    index = faiss.IndexFlatIP(32)
    index.add(prototypes)
    component.save(index)
    store.snapshot("original", known_good=True)
    queries = prototypes[:20] + 0.05 * rng.standard_normal((20, 32)).astype("float32")
    want_d, want_i = FaissIndexComponent.load(store.active_path(component.name)).search(queries, 5)
    noisy = prototypes + rng.standard_normal(prototypes.shape).astype("float32")
    faiss.normalize_L2(noisy)
    worse = faiss.IndexFlatIP(32)
    worse.add(noisy)
    component.save(worse)
    store.snapshot("degraded")
    got_d, _ = FaissIndexComponent.load(store.active_path(component.name)).search(queries, 5)
    assert got_d[:, 0].mean() < want_d[:, 0].mean() - 0.2  # the degradation is real
    store.rollback()
    got_d, got_i = FaissIndexComponent.load(store.active_path(component.name)).search(queries, 5)
    assert np.array_equal(got_i, want_i) and np.array_equal(got_d, want_d)
    _, work_i = FaissIndexComponent.load(component.working).search(queries, 5)
    assert np.array_equal(work_i, want_i)


def test_snapshot_cost_does_not_copy(tmp_path: Path) -> None:
    """A snapshot hard-links the index: the version file is the same inode as the working one."""
    component = FaissIndexComponent("w")
    store = VersionedStore(tmp_path, [component])
    index = faiss.IndexFlatIP(8)
    index.add(np.eye(8, dtype="float32"))
    component.save(index)
    store.snapshot("v")
    working = component.working / "index.faiss"
    frozen = store.active_path(component.name) / "index.faiss"
    assert os.stat(working).st_ino == os.stat(frozen).st_ino


def test_prototypes_component_layout(tmp_path: Path) -> None:
    """Prototypes live under learning/prototypes/vNN/."""
    protos = PrototypesComponent()
    store = VersionedStore(tmp_path, [protos])
    protos.write_file("button.f32", b"\x00" * 16)
    store.snapshot("v")
    assert (tmp_path / "learning" / "prototypes" / "v01" / "button.f32").exists()
