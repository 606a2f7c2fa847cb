"""Upgrades: data directories written by earlier releases keep working with this one.

Each fixture under ``tests/fixtures/`` is the data directory ``autoheal demo`` left with one
release (0.1.0, and this one). Today's code must read them for every command, restore them
on a warm restart, and replay every decision they hold.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, __version__
from autoheal_otel.analytics import AuditAnalytics
from tests.cli_support import run, run_many

FIXTURES = Path(__file__).with_name("fixtures")
RELEASES = sorted(p.name.split("-")[1] for p in FIXTURES.glob("release-*-demo.tar.gz"))


def _unpack(release: str, tmp: Path) -> Path:
    with tarfile.open(FIXTURES / f"release-{release}-demo.tar.gz") as archive:
        top = archive.getnames()[0].split("/")[0]
        archive.extractall(tmp, filter="data")
    return tmp / top


def test_a_fixture_of_each_release_is_kept() -> None:
    """0.1.0 (the first release) and this release each have a data directory to test."""
    assert "0.1.0" in RELEASES
    assert __version__ in RELEASES or __version__ == "0+unknown"


@pytest.mark.parametrize("release", RELEASES)
def test_every_command_reads_a_data_directory_of_an_earlier_release(
    release: str, tmp_path: Path
) -> None:
    """status, query, report, versions and compact work on it; replay reproduces it."""
    data = _unpack(release, tmp_path)
    cases = [
        ["status", "--data-dir", str(data)],
        ["query", "transitions", "--data-dir", str(data)],
        ["report", "--data-dir", str(data), "--out", str(tmp_path / "r.md")],
        ["versions", "list", "--data-dir", str(data)],
        ["replay", "--data-dir", str(data), "--json"],
    ]
    results = run_many(cases)
    for case, done in zip(cases, results, strict=True):
        assert done.returncode == 0, (case, done.stdout, done.stderr)
    summary = json.loads(results[-1].stdout)
    assert summary["matches"] is True, summary["mismatches"]
    assert summary["transitions"]["recorded"].get("rollback") == 1  # the payroll rollback
    compacted = run(["compact", "--data-dir", str(data)])
    assert compacted.returncode == 0, compacted.stderr
    again = run(["replay", "--data-dir", str(data), "--json"])
    assert json.loads(again.stdout)["matches"] is True


@pytest.mark.parametrize("release", RELEASES)
def test_a_warm_restart_restores_what_an_earlier_release_left(release: str, tmp_path: Path) -> None:
    """Each workflow comes back in the state the log left it in, and the new session names
    the release that now writes."""
    data = _unpack(release, tmp_path)
    with AuditAnalytics(data) as db:
        last = {
            r["workflow_id"]: r["state"]
            for r in db.sql(
                "SELECT workflow_id, arg_max(state, (ts, seq)) AS state FROM audit"
                " WHERE kind = 'transition' GROUP BY workflow_id"
            )
        }
    assert len(last) >= 3  # the demo ends with every workflow released by the operator
    with AutoHealManager(data_dir=data) as manager:
        for workflow, state in last.items():
            assert manager.get_mode(workflow).value == state, workflow
    with AuditAnalytics(data) as db:
        started = db.sql(
            "SELECT details FROM audit WHERE kind = 'session' AND reason = 'session.start'"
            " ORDER BY ts DESC, seq DESC LIMIT 1"
        )
    assert json.loads(str(started[0]["details"]))["library_version"] == __version__
