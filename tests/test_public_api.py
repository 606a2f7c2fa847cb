"""The public surface: a pinned __all__, the README quick start, and the CLI entry point."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import autoheal_otel
from autoheal_otel import testing
from autoheal_otel.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_pinned_and_sorted() -> None:
    """__all__ lists exactly the public names (a change here is a change of contract)."""
    assert autoheal_otel.__all__ == sorted(autoheal_otel.__all__)
    assert set(autoheal_otel.__all__) >= {
        "AutoHealManager",
        "PolicyConfig",
        "ExecutionState",
        "StepResult",
        "Outcome",
        "ExecutionStateInfo",
        "FailureWindow",
        "VersionInfo",
        "AutoHealError",
    }
    for name in autoheal_otel.__all__:
        obj = getattr(autoheal_otel, name)
        assert obj.__doc__, f"{name} has no docstring"
    assert testing.__all__ == ["FakeClock", "InMemorySink"]


def test_readme_quick_start_runs() -> None:
    """The README's quick start runs as a doctest, so the first thing a newcomer runs is green."""
    text = (ROOT / "README.md").read_text()
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, "README.md", str(ROOT / "README.md"), 0)
    assert test.examples, "README has no doctest examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0


def test_cli_policy_validate_exit_codes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """validate exits 0 on a good file and 1 with the bad field named, without a traceback."""
    assert main(["policy", "validate", str(ROOT / "config" / "auto_heal_policy.json")]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"degraded": {"recovery_successes": 0}}')
    assert main(["policy", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "degraded.recovery_successes" in err and "Traceback" not in err


def test_cli_policy_schema_and_default(capsys) -> None:  # type: ignore[no-untyped-def]
    """schema prints the JSON Schema; default prints the complete default policy."""
    assert main(["policy", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "autoheal-otel policy"
    assert main(["policy", "default"]) == 0
    assert json.loads(capsys.readouterr().out) == autoheal_otel.PolicyConfig().to_dict()
