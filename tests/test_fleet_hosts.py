"""The fleet with real host processes (own data directories) sharing one real redis-server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.replay import replay

from .fleet_support import ROOT, Host, fleet_policy

TNF = "target_not_found"
POST = "postcondition_failed"


def _hosts(tmp: Path, url: str, ns: str, n: int, **sections: Any) -> list[Host]:
    return [Host(tmp / f"h{i}", fleet_policy(url, ns, f"h{i}", **sections)) for i in range(n)]


def _stream(redis_server: Any, ns: str) -> list[dict[str, str]]:
    import redis

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        return [fields for _, fields in client.xrange(f"{ns}:events")]
    finally:
        client.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autoheal_otel.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def three_hosts(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Any
) -> Iterator[tuple[list[Host], str]]:
    """Three hosts of one fleet: workflow threshold 6, no global pause, quick probes."""
    tmp = tmp_path_factory.mktemp("fleet3")
    sections = {
        "breakers": {
            "workflow": {"failure_threshold": 6, "window_seconds": 120},
            "global": {"failure_threshold": 10_000},
            "step": {"consecutive_target_not_found": 100, "consecutive_low_confidence": 100},
        },
        "quarantine": {
            "probe_enabled": True,
            "probe_cooldown_seconds": 0.3,
            "probe_timeout_seconds": 60,
        },
    }
    hosts = _hosts(tmp, redis_server.url, "m3", 3, **sections)
    for host in hosts:
        assert host.ask("sync", 10.0)
    yield hosts, "m3"
    for host in hosts:
        host.close()


def test_failures_spread_over_hosts_quarantine_every_host_at_the_threshold(
    three_hosts: tuple[list[Host], str], redis_server: Any
) -> None:
    """Five failures over three hosts keep the workflow running; the sixth quarantines it everywhere, once."""
    hosts, ns = three_hosts
    for host, n in zip(hosts, (2, 2, 1), strict=True):
        host.ask("results", "invoice", "submit", TNF, n)
    for host in hosts:
        assert host.ask("sync", 10.0)
    assert [h.ask("mode", "invoice") for h in hosts] == ["running"] * 3
    hosts[2].ask("result", "invoice", "submit", POST)
    assert all(h.ask("wait_mode", "invoice", "quarantined", 15.0) for h in hosts)
    quarantines = [e for e in _stream(redis_server, ns) if e["kind"] == "quarantine"]
    assert [(e["wf"], e["count"], e["host"]) for e in quarantines] == [("invoice", "6", "h2")]


def test_an_operator_move_from_the_cli_reaches_every_host(
    three_hosts: tuple[list[Host], str], redis_server: Any
) -> None:
    """`autoheal force --fleet` pauses a workflow on every host; `fleet resume` releases it."""
    hosts, ns = three_hosts
    for host in hosts:
        host.ask("result", "billing", "open", "success")
    url = ["--url", redis_server.url, "--namespace", ns]
    proc = _cli("force", "billing", "paused", "--fleet", "--reason", "app upgrade", *url)
    assert proc.returncode == 0, proc.stderr
    assert all(h.ask("wait_mode", "billing", "paused", 15.0) for h in hosts)
    proc = _cli("fleet", "resume", "--reason", "upgrade done", *url)
    assert proc.returncode == 0, proc.stderr
    assert all(h.ask("wait_mode", "billing", "running", 15.0) for h in hosts)
    status = json.loads(_cli("fleet", "status", "--json", *url).stdout)
    assert sorted(status["hosts"]) == ["h0", "h1", "h2"]
    assert status["workflows"]["billing"]["state"] == "running"


def test_exactly_one_probe_runs_fleet_wide_under_concurrency(
    three_hosts: tuple[list[Host], str],
) -> None:
    """Three hosts gating a quarantined workflow at once admit one probe in total; its success releases every host."""
    hosts, _ = three_hosts
    hosts[0].ask("results", "probe-wf", "s", TNF, 6)
    assert all(h.ask("wait_mode", "probe-wf", "quarantined", 15.0) for h in hosts)
    for host in hosts:
        host.send("gates", "probe-wf", "s", 1.5)
    admitted = [host.answer() for host in hosts]
    assert sum(admitted) == 1, admitted
    prober = hosts[admitted.index(1)]
    prober.ask("result", "probe-wf", "s", "success")
    released = prober.ask("mode", "probe-wf")
    assert released in ("running", "degraded")
    assert all(h.ask("wait_mode", "probe-wf", released, 15.0) for h in hosts)


def test_one_failing_host_alone_does_not_pause_the_fleet_but_a_quorum_does(
    tmp_path: Path, redis_server: Any
) -> None:
    """Failures past the global threshold from one host pause nothing; one more from a second host pauses every host."""
    sections = {
        "breakers": {
            "workflow": {"failure_threshold": 10_000},
            "global": {"failure_threshold": 8, "window_seconds": 120},
            "step": {"consecutive_target_not_found": 100},
        }
    }
    hosts = _hosts(tmp_path, redis_server.url, "quorum", 3, **sections)
    try:
        for host in hosts:
            host.ask("result", "crm", "login", "success")
        hosts[0].ask("results", "crm", "login", TNF, 12)
        assert hosts[0].ask("sync", 10.0)
        assert [h.ask("mode", "crm") for h in hosts] == ["running"] * 3
        hosts[1].ask("result", "crm", "login", TNF)
        assert all(h.ask("wait_mode", "crm", "paused", 15.0) for h in hosts)
    finally:
        for host in hosts:
            host.close()
    for i in range(3):
        report = replay(tmp_path / f"h{i}")
        assert report.matches, report.mismatches
        assert report.recorded["paused"] == 1


def test_replay_reproduces_every_fleet_hosts_decisions(
    three_hosts: tuple[list[Host], str],
) -> None:
    """Each host's audit log replays to the same decisions, fleet transitions included."""
    hosts, _ = three_hosts
    hosts[1].ask("results", "replayed", "s", TNF, 6)  # this test's own quarantine
    assert all(h.ask("wait_mode", "replayed", "quarantined", 15.0) for h in hosts)
    for host in hosts:
        host.ask("gate", "replayed", "s")
    for host in hosts:
        report = replay(host.data_dir)
        assert report.matches, report.mismatches
        assert report.recorded["quarantined"] >= 1


def test_a_killed_host_never_counts_a_failure_twice(tmp_path: Path, redis_server: Any) -> None:
    """Kill -9 while shipping: the fleet counts only recorded failures, and nothing again after a restart."""
    import redis

    sections = {
        "breakers": {
            "workflow": {"failure_threshold": 100_000, "window_seconds": 600},
            "global": {"failure_threshold": 100_000},
            "step": {"consecutive_target_not_found": 1_000_000},
        }
    }
    policy = fleet_policy(redis_server.url, "kill", "hk", **sections)
    host = Host(tmp_path / "hk", policy)
    host.send("results", "orders", "s", TNF, 3000)
    host.send("results", "orders", "s", TNF, 3000)
    host.answer()  # the first 3000 are recorded; the second batch is being recorded and shipped
    host.kill()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        members = set(client.zrange("kill:win:orders", 0, -1))
        with AuditAnalytics(tmp_path / "hk") as db:
            rows = db.sql("SELECT writer, seq FROM audit WHERE kind = 'result'")
        logged = {f"hk/{r['writer']}/{r['seq']}" for r in rows}
        assert members <= logged
        assert len(members) >= 1
        restarted = Host(tmp_path / "hk", policy)
        try:
            assert restarted.ask("sync", 10.0)
            assert set(client.zrange("kill:win:orders", 0, -1)) == members
        finally:
            restarted.close()
    finally:
        client.close()
