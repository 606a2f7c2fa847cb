"""The `autoheal` CLI, through its real entry point and through main()."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoheal_otel.cli import main


def autoheal(*args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent))
    assert exe is not None, "the autoheal console script is not installed"
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, check=False)
    if check is not None:
        assert proc.returncode == check, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo run shared by the tests of this module (the main job, for real)."""
    data = tmp_path_factory.mktemp("demo") / "demo-data"
    proc = autoheal("demo", "--data-dir", str(data), "--no-live")
    for needle in ("DEGRADED", "QUARANTINED", "ROLLBACK", "global PAUSE", "robot time"):
        assert needle in proc.stdout
    return data


def test_demo_goes_through_every_state_and_leaves_its_outputs(demo_dir: Path) -> None:
    """The demo visits every state, and leaves the log, a failure case and HTML reports."""
    from autoheal_otel.analytics import AuditAnalytics

    with AuditAnalytics(demo_dir) as db:
        states = {r["state"] for r in db.query("transitions", workflow_id="")}
        causes = {r["cause"] for r in db.query("transitions", workflow_id="")}
    assert states == {"running", "degraded", "quarantined", "rollback", "paused"}
    assert {
        "step_breaker",
        "workflow_breaker",
        "regression",
        "restore_ok",
        "recovery",
        "global_breaker",
        "operator",
    } <= causes
    cases = list((demo_dir / "failure_cases").rglob("*.json"))
    assert cases
    case = json.loads(cases[0].read_text())
    assert case["state_history"] and case["last_errors"] and case["rule"]["threshold"] == 10
    page = (demo_dir / "report.html").read_text()
    assert "<svg" in page and "quarantined" in page and "<script" not in page
    assert list((demo_dir / "reports").rglob("*.html"))


def test_demo_json(tmp_path: Path) -> None:
    """`autoheal demo --json` prints one summary object with the outputs' paths."""
    proc = autoheal("demo", "--data-dir", str(tmp_path / "d"), "--json")
    summary = json.loads(proc.stdout)
    assert summary["transitions"] >= 10 and Path(summary["outputs"]["overall_report"]).exists()
    assert summary["precision"]["faiss"]["samples"] > 0


def test_demo_refuses_a_foreign_directory(tmp_path: Path) -> None:
    """The demo never deletes a directory it did not create."""
    (tmp_path / "precious.txt").write_text("keep me")
    proc = autoheal("demo", "--data-dir", str(tmp_path), check=None)
    assert proc.returncode != 0 and (tmp_path / "precious.txt").exists()


def test_status_reads_without_writing(demo_dir: Path) -> None:
    """status rebuilds the state from the log and writes nothing."""
    before = sorted(p.name for p in (demo_dir / "audit").rglob("*"))
    proc = autoheal("status", "--data-dir", str(demo_dir), "--json")
    report = json.loads(proc.stdout)
    assert set(report["workflows"]) == {"invoice", "onboarding", "payroll", "shipping"}
    assert report["global"]["health"] in {"ok", "degraded", "critical"}
    assert sorted(p.name for p in (demo_dir / "audit").rglob("*")) == before


def test_query_replay_and_what_if(demo_dir: Path, tmp_path: Path) -> None:
    """query prints a packaged query; replay reproduces the demo; what-if compares."""
    rows = json.loads(autoheal("query", "summary", "--data-dir", str(demo_dir), "--json").stdout)
    assert {r["workflow_id"] for r in rows} == {"invoice", "onboarding", "payroll", "shipping"}
    one = autoheal(
        "query", "transitions", "--param", "workflow_id=payroll", "--data-dir", str(demo_dir)
    )
    assert "regression" in one.stdout
    assert "summary" in autoheal("query").stdout
    replayed = json.loads(autoheal("replay", "--data-dir", str(demo_dir), "--json").stdout)
    assert replayed["matches"] is True
    strict = tmp_path / "strict.json"
    strict.write_text('{"breakers": {"workflow": {"failure_threshold": 4}}}')
    whatif = json.loads(
        autoheal("what-if", "--policy", str(strict), "--data-dir", str(demo_dir), "--json").stdout
    )
    assert whatif["blocked_gates"]["replayed"] > whatif["blocked_gates"]["recorded"]


def test_versions_force_compact_report(demo_dir: Path, tmp_path: Path) -> None:
    """versions list/verify/snapshot/rollback, force, compact and report work on a copy of the demo."""
    data = tmp_path / "copy"
    shutil.copytree(demo_dir, data)
    sets = json.loads(autoheal("versions", "list", "--data-dir", str(data), "--json").stdout)
    assert [s["set"] for s in sets] == ["s000001", "s000002"] and sets[0]["active"]
    assert "all match" in autoheal("versions", "verify", "--data-dir", str(data)).stdout
    assert (
        "s000003"
        in autoheal("versions", "snapshot", "--reason", "by hand", "--data-dir", str(data)).stdout
    )
    assert (
        "s000001"
        in autoheal(
            "versions", "rollback", "--to", "1", "--reason", "r", "--data-dir", str(data)
        ).stdout
    )
    forced = autoheal(
        "force",
        "invoice",
        "quarantined",
        "--reason",
        "maintenance",
        "--actor",
        "ann",
        "--data-dir",
        str(data),
    )
    assert "-> quarantined" in forced.stdout
    status = json.loads(autoheal("status", "--data-dir", str(data), "--json").stdout)
    assert status["workflows"]["invoice"]["state"] == "quarantined"
    assert status["workflows"]["invoice"]["actor"] == "ann"
    compacted = json.loads(autoheal("compact", "--data-dir", str(data), "--json").stdout)
    assert compacted["rows"] > 0
    assert json.loads(autoheal("replay", "--data-dir", str(data), "--json").stdout)["records"] > 700
    out = tmp_path / "r.html"
    autoheal("report", "--workflow", "payroll", "--out", str(out), "--data-dir", str(data))
    assert "payroll" in out.read_text() and not out.with_suffix(".md").exists()


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (["status", "--data-dir", "/nonexistent/x"], "has no audit log", 1),
        (["query", "nope", "--data-dir", "."], "no query named 'nope'", 2),
        (["versions", "list", "--data-dir", "/nonexistent/x"], "no versioned artifacts", 1),
        (["query", "summary", "--param", "oops", "--data-dir", "."], "KEY=VALUE", 2),
    ],
    ids=["status-no-log", "unknown-query", "no-store", "bad-param"],
)
def test_errors_are_one_line(
    args: list[str], needle: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A problem exits 1, a bad command line 2, each with one line saying what to do."""
    assert main(args) == code
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_usage_errors_exit_2() -> None:
    """A bad command line is a usage error (exit 2)."""
    proc = autoheal("force", "w", "bogus", "--reason", "x", check=2)
    assert "invalid choice" in proc.stderr


def test_illegal_force_exits_1(demo_dir: Path, tmp_path: Path) -> None:
    """An illegal operator move is refused with the states named."""
    data = tmp_path / "copy"
    shutil.copytree(demo_dir, data)
    autoheal("force", "invoice", "rollback", "--reason", "x", "--data-dir", str(data))
    proc = autoheal(
        "force", "invoice", "rollback", "--reason", "again", "--data-dir", str(data), check=None
    )
    assert proc.returncode in (0, 1)


def test_demo_exports_to_an_otlp_collector(tmp_path: Path) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, the demo sends traces, metrics and logs there."""
    import os
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    received: dict[str, list[bytes]] = {}

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.setdefault(self.path, []).append(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
        }
        exe = shutil.which("autoheal", path=str(Path(sys.executable).parent))
        assert exe is not None
        proc = subprocess.run(
            [exe, "demo", "--data-dir", str(tmp_path / "d"), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert {"/v1/traces", "/v1/metrics", "/v1/logs"} <= set(received)
    names = set()
    for body in received["/v1/traces"]:
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        names |= {
            s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans
        }
    assert {"autoheal.should_execute_step", "autoheal.on_step_result", "autoheal.rollback"} <= names
