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
    assert testing.__all__ == [
        "CRASH_EXIT_CODE",
        "FakeClock",
        "FleetEvent",
        "InMemorySink",
        "apply_fleet_event",
        "crash_at_boundary",
        "crash_at_deletion",
    ]


PUBLIC = [
    "AutoHealError",
    "AutoHealManager",
    "Cause",
    "Clock",
    "DecisionEvent",
    "Edge",
    "EffectiveSettings",
    "EventKind",
    "EventSink",
    "ExecutionState",
    "ExecutionStateInfo",
    "FailureWindow",
    "IllegalTransitionError",
    "InvalidInputError",
    "LearningFrozenError",
    "ManagerClosedError",
    "Outcome",
    "PolicyConfig",
    "PolicyError",
    "PostconditionFailed",
    "Reason",
    "Rule",
    "RuleFiring",
    "StatusReport",
    "StepBlockedError",
    "StepGuard",
    "StepResult",
    "StoreError",
    "SystemClock",
    "TargetNotFound",
    "Trigger",
    "VersionInfo",
    "WatchdogTimeout",
    "__version__",
]


def test_all_is_exactly_the_intended_list() -> None:
    """__all__ is pinned name for name: adding or dropping a public name is a visible change."""
    assert autoheal_otel.__all__ == PUBLIC


def test_exception_tree_is_complete_and_drawn() -> None:
    """Every error class of the package is exported and drawn in the tree's docstring."""
    import importlib
    import pkgutil

    from autoheal_otel.base import _errors

    found: set[type] = set()
    for info in pkgutil.walk_packages(autoheal_otel.__path__, "autoheal_otel."):
        if info.name.endswith("__main__") or info.name.startswith(
            ("autoheal_otel.robot", "autoheal_otel.fleet")
        ):
            continue  # optional extras; their errors (if any) derive from the same base
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, autoheal_otel.AutoHealError):
                found.add(obj)
    assert found, "no error classes found"
    doc = _errors.__doc__ or ""
    for cls in found:
        assert cls.__module__ == "autoheal_otel.base._errors", f"{cls} lives outside _errors"
        assert cls.__name__ in autoheal_otel.__all__, f"{cls.__name__} is not exported"
        assert cls.__name__ in doc, f"{cls.__name__} is missing from the tree"


def test_manager_has_no_public_mutable_state(tmp_path: Path) -> None:
    """The manager's public attributes are read-only views: users cannot break its state."""
    manager = autoheal_otel.AutoHealManager(data_dir=tmp_path, clock=testing.FakeClock())
    try:
        assert not [k for k in vars(manager) if not k.startswith("_")]
        for name in ("policy", "clock", "writer", "data_dir", "store", "audit", "read_only"):
            try:
                setattr(manager, name, None)
            except AttributeError:
                continue
            raise AssertionError(f"manager.{name} could be overwritten")
    finally:
        manager.close()


def test_audit_columns_come_from_the_event_type() -> None:
    """The DuckDB schema of the log is the event's fields, in order, and the golden record's."""
    import dataclasses

    from autoheal_otel.analytics._view import AUDIT_COLUMNS

    fields = [f.name for f in dataclasses.fields(autoheal_otel.DecisionEvent)]
    assert list(AUDIT_COLUMNS) == fields
    golden = json.loads((ROOT / "tests" / "golden" / "audit_record.json").read_text())
    assert golden["fields"] == fields
    assert set(golden["example"]) == set(golden["result_shape"]) <= set(fields)


def test_version_comes_from_the_installed_metadata() -> None:
    """__version__ is the installed distribution's version, not a second copy."""
    from importlib.metadata import version

    assert autoheal_otel.__version__ == version("autoheal-otel")


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
