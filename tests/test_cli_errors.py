"""No command of `autoheal` ever shows a traceback: bad arguments get one line and an exit code.

Every case runs the installed entry point in a subprocess (in parallel, to stay fast) and
checks the exit code (2 bad usage, 1 a problem found), that standard error is one line
naming what was wrong, and that no traceback reaches the terminal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .cli_support import EXE, read_only, run, run_many


@pytest.fixture(scope="module")
def data(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the demo's data directory."""
    copy = tmp_path_factory.mktemp("errors") / "data"
    shutil.copytree(demo_data, copy)
    return copy


def _cases(data: Path, scratch: Path) -> list[tuple[list[str], int, str]]:
    d = ["--data-dir", str(data)]
    a_file = scratch / "a-file.txt"
    a_file.write_text("not a folder")
    foreign = scratch / "foreign"
    foreign.mkdir(exist_ok=True)
    (foreign / "keep.txt").write_text("keep me")
    bad_policy = scratch / "bad.json"
    bad_policy.write_text('{"breakers": {"workflow": {"failure_threshold": -3}}}')
    return [
        ([], 2, "required: COMMAND"),
        (["stauts"], 2, "invalid choice"),
        (["status", "--data-dir", str(scratch / "nope")], 1, "has no audit log"),
        (["status", "--data-dir", str(a_file)], 1, "is a file"),
        (["status", "--policy", str(scratch / "nope.json"), *d], 1, "nope.json"),
        (["force", "invoice", "bogus", "--reason", "x", *d], 2, "invalid choice"),
        (["force", "invoice", "paused", *d], 2, "--reason"),
        (["force", "invoce", "paused", "--reason", "x", *d], 1, "did you mean invoice"),
        (
            ["versions", "rollback", "--to", "last-tuesday", "--reason", "r", *d],
            2,
            "--to must be a set id",
        ),
        (["versions", "rollback", "--to", "s000099", "--reason", "r", *d], 1, "s000099 (the sets:"),
        (["versions", "rollback", *d], 2, "needs --reason"),
        (["--bogus"], 2, "'--bogus'"),
        (["versions", "list", "--data-dir", str(scratch)], 1, "no versioned artifacts"),
        (["query", "top_failing_steps", "--param", "limit=abc", *d], 2, "limit must be"),
        (["query", "top_failing_steps", "--param", "limit=-1", *d], 2, "limit must be"),
        (["query", "top_failing_steps", "--param", "limit=", *d], 2, "limit must be"),
        (["query", "workflow_window", "--param", "triggers=a,b", *d], 2, "triggers must be"),
        (["query", "global_state", "--param", "as_of=yesterday", *d], 2, "as_of must be"),
        (["query", "summary", "--param", "limit=3", *d], 2, "not a parameter"),
        # Regressions: values DuckDB or Python could not take were internal errors (exit 1).
        (
            ["query", "top_failing_steps", "--param", "limit=99999999999999999999", *d],
            2,
            "limit must be a whole number from 0 to",
        ),
        (
            ["query", "workflow_window", "--param", "window_seconds=1e30", *d],
            2,
            "window_seconds must be a number of seconds from 0",
        ),
        (
            ["query", "workflow_window", "--param", "as_of=0001-01-01", *d],
            2,
            "as_of must be an ISO 8601 UTC time from 1970",
        ),
        (
            ["query", "precision", "--param", "target_precision=2", *d],
            2,
            "target_precision must be a number from 0 to 1",
        ),
        (["fleet", "status", "--url", "garbage"], 2, "--url must be a redis://"),
        (["force", "invoice", "paused", "--reason", "", *d], 2, "--reason"),
        (["query", "sumary", *d], 2, "did you mean summary"),
        (["replay", "--data-dir", str(a_file)], 1, "is a file"),
        (["what-if", *d], 2, "--policy"),
        (["what-if", "--policy", str(bad_policy), *d], 1, "invalid policy"),
        (["what-if", "--policy", str(scratch / "nope.json"), *d], 1, "nope.json"),
        (["compact", "--data-dir", str(scratch / "nope")], 1, "has no audit log"),
        (["report", "--out", str(scratch / "missing" / "r.md"), *d], 1, "does not exist"),
        (["report", "--out", str(scratch / "r.txt"), *d], 2, "--out must end in"),
        (["report", "--workflow", "payrol", *d], 1, "did you mean payroll"),
        (["serve", "--port", "99999", *d], 2, "--port"),
        (["serve", "--port", "http", *d], 2, "--port"),
        (["serve", "--duration", "-1", *d], 2, "--duration"),
        (["demo", "--data-dir", str(a_file)], 1, "is a file"),
        (["demo", "--data-dir", str(foreign)], 1, "not a demo directory"),
        (["policy", "validate", str(bad_policy)], 1, "failure_threshold"),
        (["policy", "validate", str(scratch / "nope.json")], 1, "nope.json"),
    ]


def test_bad_arguments_never_show_a_traceback(data: Path, tmp_path: Path) -> None:
    """Each command with bad arguments exits 1 or 2 with one line naming what was wrong."""
    cases = _cases(data, tmp_path)
    results = run_many([args for args, _, _ in cases])
    for (args, code, needle), proc in zip(cases, results, strict=True):
        shown = f"autoheal {' '.join(args)} -> {proc.returncode}: {proc.stderr!r}"
        assert "Traceback" not in proc.stderr + proc.stdout, shown
        assert proc.returncode == code, shown
        assert needle in proc.stderr, shown
        assert len(proc.stderr.strip().splitlines()) == 1, shown
    assert (tmp_path / "foreign" / "keep.txt").exists()


def test_json_errors_are_json(data: Path) -> None:
    """With --json an error is one JSON object carrying the message, a hint and the exit code."""
    usage, problem = run_many(
        [
            [
                "query",
                "top_failing_steps",
                "--param",
                "limit=abc",
                "--json",
                "--data-dir",
                str(data),
            ],
            ["report", "--workflow", "nobody", "--json", "--data-dir", str(data)],
        ]
    )
    assert usage.returncode == 2 and problem.returncode == 1
    first, second = json.loads(usage.stdout), json.loads(problem.stdout)
    assert first["exit_code"] == 2 and "limit" in first["error"] and first["hint"]
    assert second["exit_code"] == 1 and "nobody" in second["error"]
    parse = json.loads(run(["serve", "--port", "99999", "--json"]).stdout)
    assert parse["exit_code"] == 2 and "--port" in parse["error"]


def test_a_closed_pipe_ends_quietly(data: Path) -> None:
    """`autoheal query ... | head` whose reader went away: no traceback, no warning (was BrokenPipeError)."""
    assert EXE is not None
    proc = subprocess.Popen(
        [EXE, "query", "transitions", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes its first line
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""


READS = [["status"], ["versions", "list"], ["versions", "verify"], ["query", "summary"]]
WRITES = [
    ["force", "invoice", "paused", "--reason", "x"],
    ["versions", "snapshot", "--reason", "x"],
    ["versions", "rollback", "--to", "s000001", "--reason", "x"],
    ["compact"],
]


def test_read_only_data_directory(data: Path, tmp_path: Path) -> None:
    """Read commands work on a read-only data directory; write commands refuse in one line."""
    if read_only(data, ["--version"]) is None:
        pytest.skip("needs root and mount namespaces (unshare -m) to mount a folder read-only")
    for args in READS:
        proc = read_only(data, [*args, "--data-dir", str(data)])
        assert proc is not None and proc.returncode == 0, (args, proc and proc.stderr)
    out = tmp_path / "r.html"
    proc = read_only(data, ["report", "--out", str(out), "--data-dir", str(data)])
    assert proc is not None and proc.returncode == 0 and out.exists(), proc and proc.stderr
    proc = read_only(data, ["report", "--data-dir", str(data)])
    assert proc is not None and proc.returncode == 1 and "--out" in proc.stderr
    for args in WRITES:
        proc = read_only(data, [*args, "--data-dir", str(data)])
        assert proc is not None and proc.returncode == 1, (args, proc and proc.stderr)
        assert "not writable" in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("blocked", "args"),
    [
        ("faiss", ["demo", "--data-dir", "{tmp}/demo"]),
        ("numpy", ["demo", "--data-dir", "{tmp}/demo"]),
        ("opentelemetry.exporter.prometheus", ["serve", "--port", "0", "--duration", "1"]),
        ("opentelemetry.sdk", ["serve", "--port", "0", "--duration", "1"]),
    ],
    ids=["demo-no-faiss", "demo-no-numpy", "serve-no-prometheus-exporter", "serve-no-sdk"],
)
def test_missing_extras_name_the_install(blocked: str, args: list[str], tmp_path: Path) -> None:
    """Without an optional package, demo/serve say which extra to install in one line (was ModuleNotFoundError)."""
    import sys

    # A plain install lacks the module: make its import fail as it would there.
    program = (
        f"import sys; sys.modules[{blocked!r}] = None; "
        "from autoheal_otel.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run(
        [sys.executable, "-c", program, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith(f"autoheal: autoheal {args[0]} needs the optional extras ({blocked}")
    # The extra that installs what is missing, not every extra (it named [faiss,otel]).
    extra = "faiss" if blocked in ("faiss", "numpy") else "otel"
    assert line.endswith(f"pip install 'autoheal-otel[{extra}]'") and "\n" not in line
    assert not (tmp_path / "demo").exists()


def test_version() -> None:
    """`autoheal --version` prints the installed version."""
    from autoheal_otel import __version__

    proc = run(["--version"])
    assert proc.returncode == 0 and proc.stdout.strip() == f"autoheal {__version__}"
