"""The parts `make prod-check` runs: robot hosts, Prometheus, the timeline and the checks' helpers.

Each part is a real process started from the files deploy/ ships (prod_check.py plays the
story with them). Nothing here sleeps except to poll a real process, with a deadline.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import yaml

from autoheal_otel import PolicyConfig
from autoheal_otel.analytics._columns import AUDIT_COLUMNS
from deploy.aids import Certs, DeployedRedis, _free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCRAPE_PASSWORD = "scrape-pw-5f1e"


class CheckFailed(Exception):
    """A step of the story did not hold."""


class Timeline:
    """What happened when, printed as it happens (seconds since the start)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.figures: dict[str, float] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        print(f"[{self.now():6.1f} s] {text}", flush=True)

    def figure(self, name: str, seconds: float) -> None:
        self.figures[name] = seconds
        self.say(f"  {name}: {seconds:.2f} s")


def wait(what: str, check: Any, timeout: float, every: float = 0.1) -> Any:
    """Poll ``check()`` until it returns a truthy value; raise CheckFailed after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        if last:
            return last
        time.sleep(every)  # polling real processes with a deadline
    raise CheckFailed(f"timed out after {timeout:g} s waiting for {what} (last: {last!r:.300})")


class Host:
    """One robot host: its robot process, its `autoheal serve`, its folders."""

    def __init__(self, root: Path, name: str, web: Path) -> None:
        self.name = name
        self.dir = root / name
        self.data = self.dir / "data"
        self.control = self.dir / "control"
        self.policy = self.dir / "policy.json"
        self.web = web
        self.port = _free_port()
        for folder in (self.data, self.control):
            folder.mkdir(parents=True, exist_ok=True)
        self.robot: subprocess.Popen[bytes] | None = None
        self.serve: subprocess.Popen[bytes] | None = None
        self.failures_done = 0  # failures reported by earlier incarnations of the robot
        self.control_state: dict[str, bool] = {}

    def env(self) -> dict[str, str]:
        return {**os.environ, "AUTOHEAL_HOST_ID": self.name, "PYTHONPATH": str(ROOT)}

    def set(self, **flags: bool) -> None:
        self.control_state.update(flags)
        tmp = self.control / "control.tmp"
        tmp.write_text(json.dumps(self.control_state))
        os.replace(tmp, self.control / "control.json")

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.control / "status.json").read_text())
        return data

    def alive_status(self) -> dict[str, Any] | None:
        """Return the status of the running robot (None until it wrote one)."""
        try:
            data = self.status()
        except (OSError, ValueError):
            return None
        return data if self.robot is not None and data.get("pid") == self.robot.pid else None

    def start_robot(self) -> None:
        log = (self.dir / "robot.log").open("ab")
        self.robot = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy" / "_robot.py"), str(self.data), str(self.policy),
             str(self.control)],
            env=self.env(), stdout=log, stderr=log,
        )  # fmt: skip

    def start_serve(self) -> None:
        log = (self.dir / "serve.log").open("ab")
        self.serve = subprocess.Popen(
            [str(BIN / "autoheal"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data), "--policy", str(self.policy),
             "--web-config", str(self.web)],
            env=self.env(), stdout=log, stderr=log,
        )  # fmt: skip

    def stop_robot(self, sig: int = signal.SIGTERM) -> None:
        assert self.robot is not None
        if sig == signal.SIGTERM:
            self.robot.send_signal(sig)
            if self.robot.wait(timeout=30) != 0:
                raise CheckFailed(f"{self.name}'s robot exited {self.robot.returncode}")
            final = self.status()
            if not final.get("closed"):
                raise CheckFailed(f"{self.name}'s robot did not close cleanly")
        else:
            final = self.status()  # held: the counts are final
            os.kill(self.robot.pid, sig)
            self.robot.wait(timeout=30)
        self.failures_done += int(final["failures"])
        self.robot = None

    def stop_serve(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                self.serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.serve.kill()
        self.serve = None

    def kill_all(self) -> None:
        for proc in (self.robot, self.serve):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


class Prometheus:
    """A real Prometheus with the shipped config, rules and file discovery (1 s intervals)."""

    def __init__(self, root: Path, certs: Certs, hosts: list[Host]) -> None:
        folder = root / "prometheus"
        shutil.copytree(ROOT / "deploy" / "prometheus", folder)
        shutil.copy(ROOT / "config" / "prometheus" / "alerts.yml", folder / "alerts.yml")
        shutil.copy(certs.ca, folder / "ca.crt")
        (folder / "scrape.password").write_text(SCRAPE_PASSWORD)
        config = yaml.safe_load((folder / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        targets = [{"targets": [f"127.0.0.1:{h.port}"], "labels": {"host": h.name}} for h in hosts]
        for old in (folder / "targets").glob("*.yml"):
            old.unlink()
        (folder / "targets" / "robots.yml").write_text(yaml.safe_dump(targets))
        self.port = _free_port()
        binary = shutil.which("prometheus")
        if binary is None:
            raise CheckFailed("prometheus is not installed (make prometheus installs it)")
        log = (folder / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=1h"],
            stdout=log, stderr=log,
        )  # fmt: skip

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.loads(response.read())
        if data["status"] != "success":
            raise CheckFailed(f"Prometheus refused {expr!r}: {data}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def alert(self, name: str) -> str | None:
        """Return the alert's state in ALERTS (pending/firing), None when it is not active."""
        rows = self.query(f'ALERTS{{alertname="{name}"}}')
        states = {r["metric"]["alertstate"] for r in rows}
        return "firing" if "firing" in states else ("pending" if states else None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def write_policy(path: Path, redis: DeployedRedis, **changes: Any) -> str:
    """Write a host's policy (the fleet over TLS as the ACL user); return its version."""
    fleet = redis.fleet_section(
        namespace="autoheal", min_hosts=2, block_seconds=0.5, reconnect_seconds=0.2,
        ship_interval_seconds=0.05,
    )  # fmt: skip
    data: dict[str, Any] = {
        "fleet": fleet,
        # The fleet's global window decides this story: 20 failures from 2 hosts pause it.
        "breakers": {
            "workflow": {"failure_threshold": 100_000},
            "global": {"failure_threshold": 20},
        },
        **changes,
    }
    policy = PolicyConfig.from_dict(data)
    policy.dump(path)
    return policy.version


def run_cli(*args: str) -> dict[str, Any]:
    """Run `autoheal ARGS --json` and return its JSON answer (CheckFailed on a non-zero exit)."""
    result = subprocess.run(
        [str(BIN / "autoheal"), *args, "--json"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    if result.returncode != 0:
        raise CheckFailed(
            f"autoheal {' '.join(args)} exited {result.returncode}: {result.stdout}{result.stderr}"
        )
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def fleet_state(redis: DeployedRedis) -> dict[str, Any]:
    """Return what the fleet keeps in Redis: states, the event stream, the hosts."""
    with redis.client() as admin:
        ids = sorted(admin.smembers("autoheal:wfs"))
        return {
            "global": admin.hgetall("autoheal:global"),
            "workflows": {w: admin.hgetall(f"autoheal:wf:{w}") for w in ids},
            "events": [e[0] for e in admin.xrange("autoheal:events")],
            "hosts": sorted(admin.hkeys("autoheal:hosts")),
        }


def count_log(hosts: list[Host]) -> dict[str, int]:
    """Count records, step results and failures in every host's audit log, in one DuckDB query."""
    paths = [p for h in hosts for p in sorted((h.data / "audit").rglob("*.jsonl"))]
    files = [str(p) for p in paths]
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in AUDIT_COLUMNS.items()) + "}"
    sql = (
        "SELECT count(*), count(*) FILTER (kind = 'result'),"
        " count(*) FILTER (kind = 'result' AND outcome <> 'success')"
        f" FROM read_json({files!r}, format='newline_delimited', ignore_errors=true,"
        f" columns={columns}) WHERE seq IS NOT NULL"
    )
    records, results, failures = duckdb.connect().execute(sql).fetchall()[0]
    size = sum(p.stat().st_size for p in paths)
    return {"records": records, "results": results, "failures": failures, "bytes": size}


def serve_health(host: Host, certs: Certs) -> dict[str, Any]:
    """GET the host's /health over TLS with the scrape login."""
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    request = urllib.request.Request(f"https://127.0.0.1:{host.port}/health")
    token = base64.b64encode(f"prometheus:{SCRAPE_PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 while paused: the body still says why
        data = json.loads(exc.read())
    return data
