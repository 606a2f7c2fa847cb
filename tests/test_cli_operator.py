"""What the operator commands say is what they did: query parameters, force, versions, report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from autoheal_otel.analytics import AuditAnalytics, load_query, query_names, query_params

from .cli_support import run


@pytest.fixture
def data(demo_data: Path, tmp_path: Path) -> Path:
    """A writable copy of the demo's data directory, one per test."""
    copy = tmp_path / "data"
    shutil.copytree(demo_data, copy)
    return copy


def _records(data: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted((data / "audit").rglob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def test_every_query_declares_exactly_the_parameters_it_uses() -> None:
    """Each packaged query's header declares every $name its SQL uses, and nothing else."""
    for name in query_names():
        body = "\n".join(
            line for line in load_query(name).splitlines() if not line.startswith("--")
        )
        used = set(re.findall(r"\$([a-z_]+)", body))
        assert {p.name for p in query_params(name)} == used, name
        assert all(p.help and p.type for p in query_params(name)), name


def test_queries_run_with_their_defaults(demo_data: Path) -> None:
    """`query transitions` (the demo's hint) and every query with defaults run without --param."""
    proc = run(["query", "transitions", "--data-dir", str(demo_data), "--json"])
    assert proc.returncode == 0, proc.stderr
    assert {"degraded", "quarantined", "rollback", "paused"} <= {
        r["state"] for r in json.loads(proc.stdout)
    }
    for name in query_names():
        if all(p.default is not None for p in query_params(name)):
            proc = run(["query", name, "--data-dir", str(demo_data), "--json"])
            assert proc.returncode == 0, (name, proc.stderr)


def test_query_params_are_typed_and_lists_take_commas(demo_data: Path) -> None:
    """`triggers=a,b` is a list, `limit=2` a number; the result matches the library's query."""
    args = ["query", "top_failing_steps", "--param", "limit=2", "--json"]
    rows = json.loads(run([*args, "--data-dir", str(demo_data)]).stdout)
    assert len(rows) == 2
    with AuditAnalytics(demo_data) as db:
        first = db.sql("SELECT min(ts) AS t FROM audit")[0]["t"]
        expected = db.query("success_rate", since="2000-01-01", until=first.isoformat(sep=" "))
    proc = run(
        [
            "query",
            "success_rate",
            "--param",
            f"until={first.isoformat()}Z",
            "--data-dir",
            str(demo_data),
            "--json",
        ]
    )
    assert json.loads(proc.stdout) == json.loads(json.dumps(expected, default=str))
    proc = run(
        [
            "query",
            "workflow_window",
            "--param",
            "window_seconds=86400",
            "--param",
            "triggers=target_not_found, postcondition_failed",
            "--data-dir",
            str(demo_data),
            "--json",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert {r["trigger"] for r in json.loads(proc.stdout)} <= {
        "target_not_found",
        "postcondition_failed",
    }


def test_query_help_lists_parameters() -> None:
    """`autoheal query NAME --help` lists each parameter with its type, default and help."""
    proc = run(["query", "success_rate_drop", "--help"])
    assert proc.returncode == 0
    for p in query_params("success_rate_drop"):
        assert f"{p.name} ({p.type}, default {p.default})" in proc.stdout
    listing = run(["query"]).stdout
    assert all(name in listing for name in query_names())


def test_readme_lists_every_query() -> None:
    """The README names every packaged query (it listed 14 of 17)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert [n for n in query_names() if f"`{n}`" not in readme] == []


def test_force_refuses_a_move_to_the_same_state(data: Path) -> None:
    """Forcing a workflow into the state it is in exits 1 and writes nothing (it printed the previous move)."""
    before = len(_records(data))
    proc = run(["force", "invoice", "running", "--reason", "x", "--data-dir", str(data)])
    assert proc.returncode == 1 and "already running" in proc.stderr
    assert len(_records(data)) == before


def test_force_refuses_an_unseen_workflow_unless_create(data: Path) -> None:
    """A typo'd workflow id is refused with close matches (it was silently created and quarantined)."""
    before = len(_records(data))
    proc = run(["force", "invoce", "quarantined", "--reason", "x", "--data-dir", str(data)])
    assert (
        proc.returncode == 1 and "did you mean invoice" in proc.stderr and "--create" in proc.stderr
    )
    assert len(_records(data)) == before
    created = run(
        ["force", "newflow", "paused", "--reason", "x", "--create", "--data-dir", str(data)]
    )
    assert created.returncode == 0 and "newflow: running -> paused" in created.stdout


def test_versions_rollback_takes_the_listed_id_and_is_audited(data: Path) -> None:
    """`--to s000001` (as `versions list` prints it) works; snapshot and rollback are in the log."""
    listed = json.loads(run(["versions", "list", "--data-dir", str(data), "--json"]).stdout)
    first = listed[0]["set"]
    proc = run(
        [
            "versions",
            "rollback",
            "--to",
            first,
            "--reason",
            "r",
            "--actor",
            "ann",
            "--data-dir",
            str(data),
        ]
    )
    assert proc.returncode == 0 and f"{first} is active" in proc.stdout, proc.stderr
    snap = run(["versions", "snapshot", "--reason", "tuned", "--data-dir", str(data), "--json"])
    label = f"s{json.loads(snap.stdout)['id']:06d}"
    activations = [r for r in _records(data) if r.get("kind") == "activation"]
    assert activations[-2]["artifact_version"] == first and activations[-2]["actor"] == "ann"
    assert activations[-1]["artifact_version"] == label and "tuned" in str(
        activations[-1]["message"]
    )


def test_report_out_writes_the_format_asked(data: Path, tmp_path: Path) -> None:
    """`--out x.md` writes Markdown to x.md only (HTML used to overwrite it), printed once."""
    md = tmp_path / "x.md"
    proc = run(["report", "--out", str(md), "--data-dir", str(data)])
    assert proc.returncode == 0, proc.stderr
    assert md.read_text().startswith("# All workflows") and "<html" not in md.read_text()
    assert not md.with_suffix(".html").exists()
    assert proc.stdout.count(str(md)) == 1
    html = tmp_path / "x.html"
    both = run(["report", "--out", str(md), "--out", str(html), "--data-dir", str(data)])
    assert both.returncode == 0 and html.read_text().startswith("<!doctype html>")


def test_report_refuses_an_unknown_workflow(data: Path) -> None:
    """An unknown --workflow exits 1 with close matches (it wrote an empty report, exit 0)."""
    before = (data / "report.md").read_text()
    proc = run(["report", "--workflow", "payrol", "--data-dir", str(data)])
    assert proc.returncode == 1 and "did you mean payroll" in proc.stderr
    assert (data / "report.md").read_text() == before


def test_query_output_fits_the_terminal_unless_wide(data: Path) -> None:
    """Regression: `query transitions` printed ~230 columns; now it fits 80 (naming the columns
    left out), and --wide prints them all."""
    narrow = run(["query", "transitions", "--data-dir", str(data)], env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert "--wide or --json shows them" in narrow.stdout
    wide = run(["query", "transitions", "--wide", "--data-dir", str(data)], env={"COLUMNS": "80"})
    assert "message" in wide.stdout.splitlines()[0] and "more columns" not in wide.stdout
