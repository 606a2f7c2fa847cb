"""`autoheal serve` follows the audit log: other processes' decisions show, with their age."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from autoheal_otel import AutoHealManager, ExecutionState
from autoheal_otel.server import AutoHealServer, LiveView, prometheus_meter_provider
from autoheal_otel.testing import FakeClock

from .conftest import OK
from .test_server import get


def test_live_view_follows_another_writer_and_says_how_fresh_it_is(tmp_path: Path) -> None:
    """A quarantine written by another manager shows in /health after a refresh, and /health,
    /status and the lag gauge say how old the view is."""
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as writer:
        writer.on_step_result("invoice", "s", OK)
    provider, registry = prometheus_meter_provider()
    view = LiveView(tmp_path, clock=clock, meter_provider=provider)
    with AutoHealServer(view, port=0, registry=registry) as server:
        health = json.loads(get(server.address)[1])
        assert health["workflows"]["running"] == 1 and health["lag_seconds"] == 0
        with AutoHealManager(data_dir=tmp_path, clock=clock) as operator:
            operator.force_transition("invoice", ExecutionState.QUARANTINED, reason="test")
        clock.advance(5)
        assert json.loads(get(server.address)[1])["workflows"]["quarantined"] == 0  # not yet
        view.refresh()
        clock.advance(1.5)
        health = json.loads(get(server.address)[1])
        assert health["workflows"]["quarantined"] == 1 and health["lag_seconds"] == 1.5
        status = json.loads(get(server.address, b"GET /status HTTP/1.0\r\n\r\n")[1])
        assert status["workflows"]["invoice"]["state"] == "quarantined"
        assert status["view"]["as_of"] == "2026-01-01T00:00:05+00:00"
        metrics = get(server.address, b"GET /metrics HTTP/1.0\r\n\r\n")[1].decode()
        assert "autoheal_view_lag_seconds" in metrics and " 1.5" in metrics
        assert re.search(r"autoheal_workflows{autoheal_state=\"quarantined\"[^}]*} 1.0", metrics)
        assert 'autoheal_rule="workflow.failure_window"' in metrics
        assert 'autoheal_rule="global.quarantined_workflows"' in metrics
    provider.shutdown()


def test_serve_command_follows_the_log(tmp_path: Path) -> None:
    """Regression: `autoheal serve --data-dir D` showed a snapshot frozen at start-up, so
    /health stayed green after `autoheal force invoice quarantined`; now it follows the log."""
    with AutoHealManager(data_dir=tmp_path) as writer:
        writer.on_step_result("invoice", "s", OK)
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent))
    assert exe is not None
    serve = subprocess.Popen(
        [exe, "serve", "--data-dir", str(tmp_path), "--port", "0", "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        port = int(line.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        assert json.loads(get(("127.0.0.1", port))[1])["workflows"]["running"] == 1
        subprocess.run(
            [
                exe,
                "force",
                "invoice",
                "quarantined",
                "--reason",
                "outage",
                "--data-dir",
                str(tmp_path),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        pause = threading.Event()
        seen = None
        for _ in range(100):  # bounded: the view refreshes every 2 s
            seen = json.loads(get(("127.0.0.1", port))[1])
            if seen["workflows"]["quarantined"] == 1:
                break
            pause.wait(0.1)  # allowed: polling a real server process
        assert seen is not None and seen["workflows"]["quarantined"] == 1, seen
        assert seen["lag_seconds"] < 5
    finally:
        serve.terminate()
        _, err = serve.communicate(timeout=30)
    assert "Traceback" not in err


def test_failed_refresh_keeps_the_last_view_and_says_so(tmp_path: Path) -> None:
    """A rebuild that fails (an unreadable compacted file) keeps the last good view, counts the
    error and reports it, while the lag keeps growing."""
    clock = FakeClock()
    with AutoHealManager(data_dir=tmp_path, clock=clock) as writer:
        writer.on_step_result("invoice", "s", OK)
    view = LiveView(tmp_path, clock=clock, interval=0.01)
    compacted = tmp_path / "audit" / "compacted"
    compacted.mkdir()
    (compacted / "x.parquet").write_bytes(b"not parquet")
    (compacted / "x.events.parquet").write_bytes(b"not parquet")
    (compacted / "manifest.jsonl").write_text(
        json.dumps(
            {"id": "x", "results": "x.parquet", "events": "x.events.parquet", "segments": []}
            | {"min_ts": None, "max_ts": None, "rows": 0}
        )
        + "\n"
    )
    clock.advance(30)
    pause = threading.Event()
    with view:
        for _ in range(200):  # bounded: the refresher runs every 10 ms
            if view.errors:
                break
            pause.wait(0.05)  # allowed: waiting for a background thread's first turn
    fresh = view.freshness()
    assert view.errors >= 1 and fresh["last_refresh_error"]
    # What failed inside (DuckDB's SQL excerpt, the file's path) is logged, not served.
    assert str(tmp_path) not in fresh["last_refresh_error"]
    assert "SELECT" not in fresh["last_refresh_error"]
    assert fresh["lag_seconds"] == 30
    assert "invoice" in view.get_status_report().workflows


def test_an_empty_directory_is_not_ok_until_its_log_appears(tmp_path: Path) -> None:
    """Regression: serve on a directory with no log said "ok"; now /health is 503 naming it,
    until a robot writes its log there."""
    clock = FakeClock()
    view = LiveView(tmp_path, clock=clock)
    with AutoHealServer(view, port=0) as server:
        code, body = get(server.address)
        health = json.loads(body)
        assert code == 503 and health["status"] == "no_data"
        assert str(tmp_path) in health["reason"] and health["data_dir"] == str(tmp_path)
        with AutoHealManager(data_dir=tmp_path, clock=clock) as robot:
            robot.on_step_result("invoice", "s", OK)
        view.refresh()
        code, body = get(server.address)
        assert code == 200 and json.loads(body)["status"] == "ok"


def test_serve_refuses_a_missing_directory_in_one_line(tmp_path: Path) -> None:
    """A typo in --data-dir is exit 1 with one line, not a server that watches nothing."""
    from .cli_support import run

    proc = run(["serve", "--data-dir", str(tmp_path / "nope"), "--port", "0", "--duration", "1"])
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr


def test_serve_beside_a_fleet_host_shows_its_link(tmp_path: Path) -> None:
    """The view reads the robot's link records: up, and then down with the error."""
    from autoheal_otel.server._live_view import fleet_links

    robot = AutoHealManager(data_dir=tmp_path)  # holds its segment: a running writer
    robot.on_step_result("invoice", "s", OK)
    audit = tmp_path / "audit"
    fleet = audit / f"audit-20260101-{robot.writer}-0900.jsonl"
    link_records = [
        {"reason": "fleet.connected", "details": {"fleet_host": "h1", "namespace": "ns"}},
        {
            "reason": "fleet.disconnected",
            "details": {"fleet_host": "h1", "namespace": "ns", "error": "redis: timeout"},
        },
    ]
    fleet.write_text(
        "".join(
            json.dumps(
                {
                    "schema_version": 1,
                    "ts": f"2026-01-01T00:00:0{i}Z",
                    "seq": i + 1,
                    "kind": "fleet",
                    "writer": robot.writer,
                    "workflow_id": None,
                    "step_id": None,
                    "state": None,
                    **rec,
                }
            )
            + "\n"
            for i, rec in enumerate(link_records)
        )
    )
    from datetime import UTC, datetime

    links = fleet_links(tmp_path, datetime(2030, 1, 1, tzinfo=UTC))
    assert links is not None and links["connected"] is False
    link = links["links"][robot.writer]
    assert (link["host"], link["namespace"], link["error"]) == ("h1", "ns", "redis: timeout")
    view = LiveView(tmp_path)
    report = view.get_status_report()
    assert report.fleet is not None and report.global_.health == "degraded"
    robot.close()
