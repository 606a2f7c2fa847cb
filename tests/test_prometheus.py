"""Dashboards and alert rules against a real Prometheus scraping `autoheal serve`.

One Prometheus (Debian's package) and one `autoheal serve --simulate` per module, on
127.0.0.1: every panel query of every generated dashboard must return data, and the alert
rules must load, evaluate without error, and fire for what the simulation does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import PolicyConfig

from .redis_support import RedisServer

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

if PROMETHEUS is None:
    if os.environ.get("CI"):
        raise RuntimeError("prometheus is not installed: .ci/run installs it (Debian package)")
    pytest.skip("prometheus is not installed (make test installs it)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def poll(check: Any, timeout: float, what: str) -> Any:
    """Poll a real server until ``check()`` returns a truthy value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)  # allowed: polling a real Prometheus server
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.app_port, self.prom_port = free_port(), free_port()
        exe = shutil.which("autoheal", path=str(Path(sys.executable).parent))
        assert exe is not None
        # The served manager is a one-host fleet, so the fleet row has data too.
        (tmp / "redis").mkdir()
        self.redis = RedisServer(tmp / "redis").start()
        policy = tmp / "policy.json"
        fleet = {"enabled": True, "url": self.redis.url, "host_id": "sim", "min_hosts": 1}
        # A free-space floor above what any test machine has free: the disk alert must fire.
        retention = {"keep_free_bytes": 2**49}
        PolicyConfig.from_dict({"fleet": fleet, "retention": retention}).dump(policy)
        self.app = subprocess.Popen(
            [
                exe,
                "serve",
                "--simulate",
                "--port",
                str(self.app_port),
                "--data-dir",
                str(tmp / "data"),
                "--pace",
                "0.01",
                "--policy",
                str(policy),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {ROOT / 'config' / 'prometheus' / 'alerts.yml'}\n"
            "scrape_configs:\n  - job_name: autoheal\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{self.app_port}']\n"
        )
        self.prom = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.prom_port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.base = f"http://127.0.0.1:{self.prom_port}"

    def query(self, expr: str) -> dict[str, Any]:
        data: dict[str, Any] = get(
            f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        )
        return data

    def stop(self) -> None:
        for proc in (self.app, self.prom):
            proc.send_signal(signal.SIGTERM)
        for proc in (self.app, self.prom):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.redis.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("prometheus"))
    try:
        poll(
            lambda: urllib.request.urlopen(f"{s.base}/-/ready", timeout=2).status == 200,
            30,
            "prometheus ready",
        )
        # The simulation cycles through every phase; wait until a rollback and a pause were scraped.
        poll(
            lambda: (
                s.query('max(autoheal_transitions_total{autoheal_state="rollback"})')["data"][
                    "result"
                ]
                and s.query('max(autoheal_transitions_total{autoheal_state="paused"})')["data"][
                    "result"
                ]
            ),
            120,
            "the simulation to roll back and pause",
        )
        yield s
    finally:
        s.stop()


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m").replace('"$workflow"', '".*"')
            out.append((panel["title"], expr))
    return out


@pytest.mark.parametrize("name", ["overview", "workflow"])
def test_every_panel_query_returns_data(stack: Stack, name: str) -> None:
    """Each panel's PromQL runs on the real server and returns at least one series."""
    dashboard = json.loads((ROOT / "dashboards" / f"{name}.json").read_text())
    exprs = expressions(dashboard)
    assert exprs
    for title, expr in exprs:
        result = poll(lambda e=expr: stack.query(e)["data"]["result"], 60, f"{title}: {expr}")
        assert result, (title, expr)


def test_template_variable_lists_the_workflows(stack: Stack) -> None:
    """The drill-down's workflow variable query finds the simulated workflows."""
    values = get(f"{stack.base}/api/v1/label/autoheal_workflow_id/values")["data"]
    assert {"invoice", "onboarding", "payroll", "shipping"} <= set(values)


def test_alert_rules_check_and_evaluate(stack: Stack) -> None:
    """promtool accepts the rules; Prometheus evaluates them without error; the simulation fires some."""
    assert PROMTOOL is not None
    check = subprocess.run(
        [PROMTOOL, "check", "rules", str(ROOT / "config" / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    groups = get(f"{stack.base}/api/v1/rules")["data"]["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(rules) == {
        "AutohealWorkflowQuarantined",
        "AutohealRollback",
        "AutohealGlobalPause",
        "AutohealAuditWriteErrors",
        "AutohealDroppedEvents",
        "AutohealDiskBudget",
        "AutohealDiskFreeLow",
    }
    assert all(r["health"] == "ok" for r in rules.values()), {
        n: r.get("lastError") for n, r in rules.items()
    }
    fired = poll(
        lambda: (
            {a["labels"]["alertname"] for a in get(f"{stack.base}/api/v1/alerts")["data"]["alerts"]}
            & {"AutohealRollback", "AutohealWorkflowQuarantined"}
        ),
        60,
        "alerts to fire",
    )
    assert fired
    disk = poll(
        lambda: [
            a
            for a in get(f"{stack.base}/api/v1/alerts")["data"]["alerts"]
            if a["labels"]["alertname"] == "AutohealDiskFreeLow"
        ],
        60,
        "the free-space alert to fire",
    )
    assert disk[0]["labels"]["severity"] == "warning"


def test_health_and_status_endpoints(stack: Stack) -> None:
    """The served endpoints answer with the documented codes; a write is refused."""
    base = f"http://127.0.0.1:{stack.app_port}"
    with urllib.request.urlopen(f"{base}/status", timeout=5) as r:
        assert set(json.loads(r.read())["workflows"]) >= {"invoice", "payroll"}
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
            code, body = r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        code, body = err.code, json.loads(err.read())
    assert (code, body["status"]) in {(200, "ok"), (200, "degraded"), (503, "critical")}
    assert body["fleet"]["host"] == "sim" and body["fleet"]["connected"] is True
    for method, path, expected in (("POST", "/health", 405), ("GET", "/nope", 404)):
        request = urllib.request.Request(f"{base}{path}", method=method)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == expected
        err.value.close()
