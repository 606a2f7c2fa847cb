"""`autoheal tune` on a synthetic history with known incidents and known false stops."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from autoheal_otel import PolicyConfig
from autoheal_otel.base._errors import InvalidInputError
from autoheal_otel.lab.space import Space, parse_dimension

from .cli_support import read_only, run
from .lab_history import write_history

CHROMIUM = shutil.which("chromium")
SPACE = [
    "--space",
    "breakers.workflow.failure_threshold=5..20",
    "--space",
    "breakers.workflow.window_seconds=300,600,900",
]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two flaky bursts (false stops under the default) and two incidents (true stops)."""
    data = tmp_path_factory.mktemp("lab") / "data"
    assert write_history(data) == {"burst": 2, "incident": 2}
    return data


@pytest.mark.parametrize("search", ["grid", "halving"])
def test_tune_recovers_a_policy_that_catches_every_incident_with_fewer_false_stops(
    history: Path, tmp_path: Path, search: str
) -> None:
    """The default stops on both bursts; tune recommends a policy that still stops on both
    incidents and on neither burst, names each labelled stop, and writes it to a candidate
    file, not to the policy in force."""
    live = tmp_path / "policy.json"
    live.write_text("{}")
    out = tmp_path / "candidate.json"
    args = ["tune", *SPACE, "--search", search, "--policy", str(live), "--write", str(out)]
    proc = run([*args, "--data-dir", str(history), "--json"])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["incidents"], data["labelled_false_stops"]) == (2, 2)
    assert data["in_force"]["missed"] == 0 and data["in_force"]["false_stops"] == 2
    assert data["recommended"]["missed"] == 0
    assert data["recommended"]["false_stops"] == 0
    assert {d["label"] for d in data["differences"]} == {"true_stop", "false_stop"}
    assert len(data["differences"]) == 4
    for d in data["differences"]:
        if d["label"] == "false_stop":
            assert d["in_force"].startswith("stops it at") and d["change"] == "dropped"
            assert d["recommended"] == "does not stop it"
        else:
            assert d["recommended"].startswith("stops it at")
    assert data["diff"] and all(d["field"].startswith("breakers.workflow") for d in data["diff"])
    candidate = PolicyConfig.load(out)
    choice = data["recommended"]["choice"]
    wf = candidate.breakers.workflow
    assert wf.failure_threshold == choice["breakers.workflow.failure_threshold"]
    assert wf.failure_threshold > 10 or wf.window_seconds < 600
    assert live.read_text() == "{}"
    if search == "halving":
        assert data["eliminated_early"] > 0


def test_tune_never_writes_the_policy_in_force(history: Path, tmp_path: Path) -> None:
    """--write naming the --policy file is a usage error; the file is left as it was."""
    live = tmp_path / "policy.json"
    live.write_text("{}")
    proc = run(["tune", *SPACE, "--policy", str(live), "--write", str(live),
                "--data-dir", str(history)])  # fmt: skip
    assert proc.returncode == 2 and "never changes it" in proc.stderr
    assert live.read_text() == "{}"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("breakers.workflow.nope=1..3", "not a policy field"),
        ("breakers.workflow=1,2", "is a section"),
        ("breakers.workflow.failure_threshold=9..3", "is empty"),
        ("breakers.workflow.failure_threshold", "FIELD=A..B"),
        ("breakers.workflow.failure_threshold=0,5", "failure_threshold"),
        ("breakers.workflow.failure_threshold=1..5000", "more than 1000"),
    ],
    ids=["unknown", "section", "empty", "no-values", "out-of-bounds", "too-large"],
)
def test_a_bad_space_names_the_field_and_value(spec: str, needle: str) -> None:
    """Each malformed or invalid dimension is an error naming it, before any replay."""
    base = PolicyConfig()

    def build() -> None:
        space = Space(base, (parse_dimension(spec, base),))
        for choice in space.grid():
            space.policy(choice)

    with pytest.raises(InvalidInputError, match=needle.replace(".", r"\.")):
        build()


def test_a_bad_space_on_the_command_line_is_a_usage_error(history: Path) -> None:
    """The CLI says which --space is wrong in one line, exit 2."""
    proc = run(["tune", "--space", "breakers.nope=1..2", "--data-dir", str(history)])
    assert proc.returncode == 2 and "breakers.nope" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(["tune", "--data-dir", str(history)])
    assert proc.returncode == 2 and "--space" in proc.stderr


def test_space_ranges_and_lists() -> None:
    """Whole ranges list every number; decimal ones five points; lists keep their order."""
    base = PolicyConfig()
    assert parse_dimension("breakers.workflow.failure_threshold=3..6", base).values == (3, 4, 5, 6)
    assert parse_dimension("degraded.recovery_successes=4,2,4", base).values == (4, 2)
    floats = parse_dimension("confidence.normal_threshold=0.6..0.8", base).values
    assert floats == (0.6, 0.65, 0.7, 0.75, 0.8)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_html_report_renders_in_chromium_with_hostile_text_as_text(
    history: Path, tmp_path: Path
) -> None:
    """The page shows the trade-off plot and every labelled stop; a label reason with markup
    renders as text (escaped, and the page's CSP allows no script)."""
    data = tmp_path / "data"
    shutil.copytree(history, data)
    hostile = "<img src=x onerror=alert(1)><script>document.title='owned'</script>"
    labels = run(["query", "labels", "--data-dir", str(data), "--json"])
    ref = f"{json.loads(labels.stdout)[0]['writer']}:{json.loads(labels.stdout)[0]['seq']}"
    assert (
        run(["label", ref, "false", "--reason", hostile, "--data-dir", str(data)]).returncode == 0
    )
    page = tmp_path / "tune.html"
    proc = run(["tune", *SPACE, "--out", str(page), "--data-dir", str(data)])
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert "default-src 'none'" in text and "<script>" not in text
    assert CHROMIUM is not None
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert "<title>autoheal tune</title>" in dom.stdout  # no script changed the title
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom.stdout
    assert dom.stdout.count("<circle") >= 48 + 2  # every candidate, the policy in force, the pick
    assert dom.stdout.count(">invoice<") == 4  # each labelled stop in the timeline


def test_tune_and_label_on_a_read_only_directory_say_what_to_do(history: Path) -> None:
    """Tune cannot write its default candidate file there: one line naming --write, exit 1;
    label refuses before writing anything."""
    proc = read_only(history, ["tune", *SPACE, "--data-dir", str(history)])
    if proc is None:
        pytest.skip("no mount namespaces here")
    assert proc.returncode == 1 and "--write" in proc.stderr and "Traceback" not in proc.stderr
    proc = read_only(history, ["label", "1", "true", "--reason", "r", "--data-dir", str(history)])
    assert proc is not None and proc.returncode != 0 and "Traceback" not in proc.stderr
