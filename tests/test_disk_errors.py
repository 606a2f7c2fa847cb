"""Disks and files: a full SQLite store, unusable data directories, new directories shared by
processes starting at once, and component file names that try to leave the data directory."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, InvalidInputError
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.sinks.sqlite import SuccessStore
from autoheal_otel.testing import FakeClock
from autoheal_otel.versioning import PrototypesComponent, VersionedStore

from .conftest import OK
from .test_success_store import rows


def test_full_success_store_keeps_and_retries_its_rows(tmp_path: Path, clock: FakeClock) -> None:
    """Regression: success batches were dropped on a full disk (256 of 300 rows lost); now they
    are kept, counted, and written once space returns."""
    m = AutoHealManager(data_dir=tmp_path, clock=clock)
    store = m.success_store
    assert store is not None
    with store.lock:
        pages = store.connection.execute("PRAGMA page_count").fetchone()[0]
        store.connection.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own full disk
    for i in range(300):
        m.on_step_result("w", f"step-{i:03d}-" + "x" * 200, OK)  # must not raise
        clock.advance(0.01)  # a batch is due after 1 s of event time
    assert store.write_errors > 0 and store.pending == 300 and store.dropped == 0
    assert m.get_status_report().sink_errors.get("SuccessStore", 0) > 0
    with store.lock:
        store.connection.execute("PRAGMA max_page_count = 1073741823")  # space returns
    m.close()
    assert len(rows(tmp_path)) == 300


def test_unusable_success_store_is_an_invalid_data_dir(tmp_path: Path) -> None:
    """Regression: a store SQLite cannot open escaped as sqlite3.OperationalError from the
    manager's constructor; now it is InvalidInputError naming data_dir."""
    (tmp_path / SuccessStore.FILENAME).mkdir()  # where the database file belongs
    with pytest.raises(InvalidInputError) as err:
        AutoHealManager(data_dir=tmp_path, clock=FakeClock())
    assert err.value.field == "data_dir" and str(tmp_path) in str(err.value)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Path:
    """A data directory with a log, in which no file can be created (root included)."""
    with AutoHealManager(data_dir=tmp_path / "d", clock=FakeClock()) as m:
        m.on_step_result("w", "s", OK)
    folder = tmp_path / "d"
    for path in [folder, folder / "audit"]:
        if (
            shutil.which("chattr")
            and subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True, check=False
            ).returncode
            == 0
        ):
            continue
        path.chmod(0o555)
    probe = folder / "probe"
    try:
        probe.touch()
    except OSError:
        pass
    else:
        probe.unlink()
        pytest.skip("cannot make a read-only directory here")
    yield folder
    for path in [folder / "audit", folder]:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
        path.chmod(0o755)


def test_read_only_data_dir_is_an_invalid_data_dir(read_only_dir: Path) -> None:
    """Regression: a read-only data directory raised sqlite3.OperationalError from the
    constructor, and compaction an OSError; both are now InvalidInputError naming data_dir."""
    with pytest.raises(InvalidInputError) as err:
        AutoHealManager(data_dir=read_only_dir, clock=FakeClock())
    assert err.value.field == "data_dir"
    with pytest.raises(InvalidInputError) as err:
        compact(read_only_dir)
    assert err.value.field == "data_dir"
    with AutoHealManager(data_dir=read_only_dir, clock=FakeClock(), read_only=True) as reader:
        assert "w" in reader.get_status_report().workflows


STARTER = """
import sys
from pathlib import Path
from autoheal_otel.sinks.sqlite import SuccessStore
for i in range(int(sys.argv[2])):
    folder = Path(sys.argv[1]) / f"d{i}"
    folder.mkdir(parents=True, exist_ok=True)
    SuccessStore(folder, "writer").close()
"""


def test_processes_starting_at_once_on_new_data_dirs(tmp_path: Path) -> None:
    """Regression: four processes starting managers at once on new data directories failed
    with "database is locked" at PRAGMA journal_mode=WAL (2 of 40); each process here opens
    the success store of the same 150 new directories, in step with the others."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, str(tmp_path), "150"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    for i in range(150):
        with sqlite3.connect(tmp_path / f"d{i}" / SuccessStore.FILENAME) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize(
    "name",
    ["../../../../x", "ABSOLUTE", "a/../../b", "", "a\x00b", "."],
    ids=["dotdot", "absolute", "inner-dotdot", "empty", "nul", "dot"],
)
def test_component_file_names_stay_inside_the_data_dir(tmp_path: Path, name: str) -> None:
    """Regression: write_file("../../../../x") or an absolute path wrote outside the data
    directory; a component file name is now contained like an id, or refused."""
    data = tmp_path / "data"
    if name == "ABSOLUTE":
        name = str(tmp_path / "absolute")
    prototypes = PrototypesComponent()
    VersionedStore(data, [prototypes])
    before = set(tmp_path.rglob("*")) - set(data.rglob("*"))
    with pytest.raises(InvalidInputError) as err:
        prototypes.write_file(name, b"payload")
    assert err.value.field == "relative"
    assert set(tmp_path.rglob("*")) - set(data.rglob("*")) == before
    assert not (tmp_path / "absolute").exists()
    assert prototypes.write_file("invoice/submit.f32", b"ok").read_bytes() == b"ok"
