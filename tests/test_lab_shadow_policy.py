"""A policy names its shadow: validated, started with the manager, swapped at hot reload."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, PolicyConfig, PolicyError
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.testing import FakeClock

from .conftest import OK, TNF

SHADOW = {"breakers": {"workflow": {"failure_threshold": 2, "window_seconds": 600}}}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data))
    st = path.stat()  # visible to the stat-based check whatever the file system's resolution
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _error(make: Any) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        make()
    return caught.value


def test_a_bad_shadow_is_an_error_naming_the_field_and_value(tmp_path: Path) -> None:
    """Each way a shadow can be wrong names shadow.* and the value."""
    inline = {"shadow": {"policy": {"breakers": {"workflow": {"failure_threshold": 0}}}}}
    error = _error(lambda: PolicyConfig.from_dict(inline))
    assert error.field == "shadow.policy.breakers.workflow.failure_threshold" and error.value == 0
    error = _error(lambda: PolicyConfig.from_dict({"shadow": {"policy": 5}}))
    assert error.field == "shadow.policy" and "but was 5" in str(error)
    error = _error(lambda: PolicyConfig.from_dict({"shadow": {"policy": "a.json", "name": "a b"}}))
    assert error.field == "shadow.name" and error.value == "a b"
    nested = {"shadow": {"policy": {"shadow": {"policy": "x.json"}}}}
    assert _error(lambda: PolicyConfig.from_dict(nested)).field == "shadow.policy.shadow"
    main = tmp_path / "policy.json"
    _write(main, {"shadow": {"policy": "missing.json"}})
    error = _error(lambda: PolicyConfig.load(main))
    assert error.field == "shadow.policy" and error.value == "missing.json"
    assert str(main) in str(error) and "missing.json" in str(error)
    _write(tmp_path / "bad.json", {"breakers": {"workflow": {"failure_threshold": -1}}})
    _write(main, {"shadow": {"policy": "bad.json"}})
    error = _error(lambda: PolicyConfig.load(main))
    assert error.field == "shadow.policy.breakers.workflow.failure_threshold"
    _write(main, {"shadow": {"policy": "policy.json"}})  # itself: a shadow of its own
    assert "shadow of its own" in str(_error(lambda: PolicyConfig.load(main)))


def test_a_policy_without_a_shadow_keeps_its_version() -> None:
    """The section is left out of the dump when absent: versions recorded before stay."""
    plain = PolicyConfig.from_dict({"breakers": {"workflow": {"failure_threshold": 7}}})
    assert "shadow" not in plain.to_dict()
    shadowed = PolicyConfig.from_dict({**plain.to_dict(), "shadow": {"policy": SHADOW}})
    assert shadowed.version != plain.version
    assert PolicyConfig.from_dict(shadowed.to_dict()) == shadowed
    assert shadowed.shadow_policy is not None
    assert shadowed.shadow_policy.breakers.workflow.failure_threshold == 2


def _steps(manager: AutoHealManager, clock: FakeClock, n: int, result: Any) -> None:
    for _ in range(n):
        clock.advance(1.0)
        if manager.should_execute_step("a", "s1")[0]:
            manager.on_step_result("a", "s1", result)


def _shadow_lines(data: Path, name: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in (data / "shadow").glob(f"{name}-*.jsonl")
        for line in path.read_text().splitlines()
    ]


def _reloads(data: Path) -> list[dict[str, Any]]:
    with AuditAnalytics(data) as db:
        rows = db.sql("SELECT details FROM audit WHERE kind = 'policy_reload' ORDER BY seq")
    return [
        json.loads(r["details"]) if isinstance(r["details"], str) else r["details"] for r in rows
    ]


def test_the_shadow_follows_the_policy_file_through_reloads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Named at start it runs; a reload that changes it swaps it, one that removes it stops
    it, and promoting it is an ordinary edit; each reload is recorded with the section."""
    data, main = tmp_path / "data", tmp_path / "policy.json"
    _write(tmp_path / "candidate.json", SHADOW)
    _write(main, {"shadow": {"policy": "candidate.json", "name": "first"}})
    clock = FakeClock()
    manager = AutoHealManager(policy=main, data_dir=data, clock=clock)
    try:
        _steps(manager, clock, 3, TNF)  # the shadow (threshold 2) stops; the live one not
        first_running = _running(manager)
        assert first_running is not None and first_running["name"] == "first"
        assert "shadow" in manager.background_jobs()
        assert manager.run_background("shadow") == 1  # it judged every input so far
        first = _shadow_lines(data, "first")
        assert [r["shadow_allowed"] for r in first if r["what"] == "gate"] == [True, True, False]
        assert all(r["live_allowed"] for r in first if r["what"] == "gate")

        # Changed: an inline shadow under another name replaces the file one.
        _write(main, {"shadow": {"policy": {"breakers": {"workflow": {"failure_threshold": 9}}},
                                 "name": "second"}})  # fmt: skip
        clock.advance(10.0)
        _steps(manager, clock, 2, OK)
        second = _running(manager)
        assert second is not None and second["name"] == "second"
        assert second["pid"] != first_running["pid"]  # another process
        assert manager.run_background("shadow") == 1
        assert len(_shadow_lines(data, "second")) == 2
        assert len(_shadow_lines(data, "first")) == len(first)

        # Removed: no shadow runs, and none judges later steps.
        _write(main, {"breakers": {"workflow": {"failure_threshold": 10}}})
        clock.advance(10.0)
        _steps(manager, clock, 2, OK)
        assert _running(manager) is None and "shadow" not in manager.background_jobs()
        assert manager.run_background("shadow") == 0  # none runs; the stopped one has ended
        assert not [r for r in caplog.records if "exit code" in r.getMessage()]  # ended cleanly
        assert len(_shadow_lines(data, "second")) == 2

        # Promoted: the shadow's sections become the policy, an ordinary edit.
        _write(main, SHADOW)
        clock.advance(10.0)
        _steps(manager, clock, 1, OK)
        assert manager.policy.breakers.workflow.failure_threshold == 2
    finally:
        manager.close()
    reloads = _reloads(data)
    shadows = [r["policy"].get("shadow") for r in reloads]
    assert shadows == [
        {"policy": {"breakers": {"workflow": {"failure_threshold": 9}}}, "name": "second"},
        None,
        None,
    ]
    assert reloads[-1]["policy"]["breakers"]["workflow"]["failure_threshold"] == 2


def _running(manager: AutoHealManager) -> dict[str, Any] | None:
    """The shadow the manager runs now, as its status report says (None: none)."""
    shadow = manager.get_status_report().shadow
    assert shadow is None or shadow["alive"], shadow
    return shadow


def test_a_policy_built_in_code_names_its_shadow_file_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative shadow file of a policy built in code is read from the working directory;
    one that is not there fails the start, naming the field."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "candidate.json", SHADOW)
    policy = PolicyConfig.from_dict({"shadow": {"policy": "candidate.json"}})
    with AutoHealManager(policy=policy, data_dir=tmp_path / "data", clock=FakeClock()) as m:
        assert _running(m) is not None
    missing = PolicyConfig.from_dict({"shadow": {"policy": "nowhere.json"}})
    with pytest.raises(PolicyError) as caught:
        AutoHealManager(policy=missing, data_dir=tmp_path / "other", clock=FakeClock())
    assert caught.value.field == "shadow.policy"


def test_a_reload_with_a_bad_shadow_keeps_the_last_good_policy_and_shadow(tmp_path: Path) -> None:
    """An edit naming a shadow file that is not there is rejected like any bad edit: the
    policy and the shadow in force stay, and the rejection names shadow.policy."""
    data, main = tmp_path / "data", tmp_path / "policy.json"
    _write(tmp_path / "candidate.json", SHADOW)
    _write(main, {"shadow": {"policy": "candidate.json"}})
    clock = FakeClock()
    with AutoHealManager(policy=main, data_dir=data, clock=clock) as manager:
        running, version = _running(manager), manager.policy.version
        _write(main, {"shadow": {"policy": "gone.json"}})
        clock.advance(10.0)
        _steps(manager, clock, 1, OK)
        error = manager.last_policy_error
        assert error is not None and error.field == "shadow.policy" and error.value == "gone.json"
        still = _running(manager)
        assert manager.policy.version == version and still is not None and running is not None
        assert still["pid"] == running["pid"]  # the same process
    with AuditAnalytics(data) as db:
        rows = db.sql("SELECT details FROM audit WHERE kind = 'policy_rejected'")
    assert [json.loads(r["details"])["field"] for r in rows] == ["shadow.policy"]
