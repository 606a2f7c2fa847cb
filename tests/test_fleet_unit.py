"""The fleet's pure inputs, its off-by-default promise, and its windows against DuckDB."""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, PolicyConfig, StepResult
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.core._fleet_inputs import FleetEvent
from autoheal_otel.core._ledger import NO_TRACE, At
from autoheal_otel.core._machine import Machine
from autoheal_otel.semconv import Cause, EventKind, Reason
from autoheal_otel.testing import FakeClock

from .fleet_support import fleet_policy, fleet_windows, wait_until

TNF = StepResult(outcome=Outcome.TARGET_NOT_FOUND, confidence=0.9)
QUARANTINE = FleetEvent(
    id="1-0",
    kind="quarantine",
    host="h7",
    workflow_id="invoice",
    target=ExecutionState.QUARANTINED,
    rule="workflow.failure_window",
    count=10,
    threshold=10,
    window_seconds=300.0,
)


def _machine() -> Machine:
    clock = FakeClock()
    return Machine(PolicyConfig(), "w", (clock.monotonic(), clock.now()))


def test_a_fleet_quarantine_is_one_transition_with_cause_fleet_host_and_event_id() -> None:
    """Applying a fleet quarantine records one transition naming the fleet event and its host; applying it again changes nothing."""
    m = _machine()
    events: list[Any] = []
    assert m.fleet_apply(QUARANTINE, At(1.0, None, NO_TRACE, events))
    assert not m.fleet_apply(QUARANTINE, At(2.0, None, NO_TRACE, events))
    transitions = [e for e in events if e.kind is EventKind.TRANSITION]
    assert len(transitions) == 1
    t = transitions[0]
    assert t.cause == Cause.FLEET.value and t.state is ExecutionState.QUARANTINED
    assert t.details["fleet_event"] == "1-0" and t.details["fleet_host"] == "h7"


def test_with_the_link_up_the_local_workflow_window_does_not_decide() -> None:
    """While the fleet decides the workflow window, local failures past the threshold do not quarantine here; once the link is down they do."""
    m = _machine()
    m.fleet_link(
        True,
        Reason.FLEET_CONNECTED,
        ["workflow", "global"],
        {},
        At(0.0, None, NO_TRACE, None),
    )
    for i in range(12):
        m.result("crm", "s", TNF, float(i), None, (None, None), None)
    assert m.view.workflows["crm"].state is not ExecutionState.QUARANTINED
    m.fleet_link(False, Reason.FLEET_DISCONNECTED, (), {}, At(13.0, None, NO_TRACE, None))
    m.result("crm", "s", TNF, 14.0, None, (None, None), None)
    assert m.view.workflows["crm"].state is ExecutionState.QUARANTINED


def test_only_the_probe_lease_holder_admits_a_probe_while_the_fleet_decides() -> None:
    """A quarantined workflow admits its probe only after this host won the fleet's lease, and only once."""
    m = _machine()
    at0 = At(0.0, None, NO_TRACE, None)
    probing = {"quarantine": {"probe_enabled": True, "probe_cooldown_seconds": 1}}
    m.change_policy(PolicyConfig.from_dict(probing), "test", at0)
    m.fleet_link(True, Reason.FLEET_CONNECTED, ["workflow"], {}, at0)
    m.fleet_apply(QUARANTINE, at0)
    assert m.view.workflows["invoice"].probe_ready_at == 1.0  # the cool-down passes at 1 s
    assert m.gate("invoice", "s", 5.0, None, (None, None), None)[0] is False
    m.fleet_grant_probe("invoice", 30.0, "h0", At(5.0, None, NO_TRACE, None))
    assert m.gate("invoice", "s", 6.0, None, (None, None), None)[0] is True
    assert m.gate("invoice", "t", 6.5, None, (None, None), None)[0] is False


def test_with_the_fleet_off_redis_is_never_imported(tmp_path: Path) -> None:
    """A manager with the default policy runs its hooks without importing redis or the fleet package."""
    code = (
        "import sys\n"
        "from autoheal_otel import AutoHealManager, StepResult, Outcome\n"
        f"m = AutoHealManager(data_dir={str(tmp_path)!r})\n"
        "m.should_execute_step('w', 's')\n"
        "m.on_step_result('w', 's', StepResult(outcome=Outcome.ERROR))\n"
        "m.get_status_report(); m.close()\n"
        "print(sorted(n for n in sys.modules if n == 'redis' or n.startswith('autoheal_otel.fleet')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


_counter = itertools.count()


@settings(max_examples=6, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(list(Outcome)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_fleet_window_counts_equal_duckdb_over_the_union_of_host_logs(
    redis_server: Any, steps: list[tuple[int, str, Outcome]]
) -> None:
    """Whatever results three hosts record, each fleet workflow window holds exactly the counted failures DuckDB finds in their logs."""
    ns = f"prop{next(_counter)}"
    sections = {
        "breakers": {
            "workflow": {"failure_threshold": 100_000},
            "global": {"failure_threshold": 100_000},
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / f"h{i}" for i in range(3)]
        managers = [
            AutoHealManager(fleet_policy(redis_server.url, ns, f"h{i}", **sections), data_dir=d)
            for i, d in enumerate(dirs)
        ]
        try:
            for host, wid, outcome in steps:
                managers[host].on_step_result(wid, "s", StepResult(outcome=outcome, confidence=0.9))
            assert wait_until(
                lambda: all(m.fleet.connected and not m.fleet.status()["queued"] for m in managers)
            )
            counts = fleet_windows(managers[0])
        finally:
            for m in managers:
                m.close()
        counted = [t.value for t in PolicyConfig().breakers.workflow.counted_triggers]
        with AuditAnalytics(dirs) as db:
            rows = db.sql(
                "SELECT workflow_id, count(*) AS n FROM audit WHERE kind = 'result'"
                " AND trigger IN (SELECT unnest($t)) GROUP BY workflow_id",
                {"t": counted},
            )
        expected = {r["workflow_id"]: int(r["n"]) for r in rows}
        assert {w: n for w, n in counts.items() if n} == expected


def test_the_api_moves_and_resumes_every_host(redis_server: Any, tmp_path: Path) -> None:
    """`manager.fleet.publish_move` pauses a workflow on every host and `publish_resume` releases it."""
    managers = [
        AutoHealManager(fleet_policy(redis_server.url, "api", f"h{i}"), data_dir=tmp_path / f"h{i}")
        for i in range(2)
    ]
    try:
        assert wait_until(lambda: all(m.fleet.connected for m in managers))
        managers[0].fleet.publish_move("payroll", "paused", "month end", actor="ann")
        assert wait_until(lambda: all(m.get_mode("payroll").value == "paused" for m in managers))
        info = managers[1].get_state_info("payroll")
        assert info.actor == "ann"
        managers[1].fleet.publish_resume("month closed", actor="bob")
        assert wait_until(lambda: all(m.get_mode("payroll").value == "running" for m in managers))
        assert managers[1].get_status_report().fleet["host"] == "h1"  # type: ignore[index]
    finally:
        for m in managers:
            m.close()


def test_fleet_commands_fail_in_one_line_when_redis_is_unreachable(tmp_path: Path) -> None:
    """`autoheal fleet status` and `force --fleet ... rollback` against a closed port exit 1 with one line."""
    base = [sys.executable, "-m", "autoheal_otel.cli"]
    url = ["--url", "redis://127.0.0.1:1/0"]
    down = subprocess.run(
        [*base, "fleet", "status", *url], capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 1
    assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1
    assert "redis://127.0.0.1:1/0" in down.stderr
    rollback = subprocess.run(
        [*base, "force", "w", "rollback", "--fleet", "--reason", "r", *url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rollback.returncode == 1 and "Traceback" not in rollback.stderr
    assert len(rollback.stderr.strip().splitlines()) == 1
