"""Fleet-wide ROLLBACK: one host's regression (or an operator) rolls back every host's own store."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import ExecutionState, PolicyConfig
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.replay import replay
from autoheal_otel.core._fleet_inputs import FleetEvent
from autoheal_otel.core._ledger import At
from autoheal_otel.core._machine import Machine, Restore
from autoheal_otel.core._transitions import is_legal
from autoheal_otel.semconv import Cause, EventKind, Reason
from autoheal_otel.testing import FakeClock

from .fleet_support import ROOT, Host, fleet_policy

S = ExecutionState
NO = (None, None)
REGRESSION = FleetEvent(
    id="5-0",
    kind="rollback",
    host="h9",
    workflow_id="invoice",
    target=S.ROLLBACK,
    rule="rollback.regression",
    count=100,
    threshold=20,
)


def _machine(*, versioned: bool) -> Machine:
    clock = FakeClock()
    m = Machine(PolicyConfig(), "w", (clock.monotonic(), clock.now()))
    if versioned:
        m.note_store()
    return m


def test_a_fleet_rollback_moves_a_host_with_a_store_and_asks_for_its_restore() -> None:
    """A fleet rollback is one transition with cause fleet naming the event and host, and returns the Restore this host runs."""
    m = _machine(versioned=True)
    events: list[Any] = []
    action = m.fleet_rollback(REGRESSION, At(1.0, None, NO, events))
    assert isinstance(action, Restore) and action.workflow_id == "invoice"
    assert m.view.workflows["invoice"].state is S.ROLLBACK
    (t,) = [e for e in events if e.kind is EventKind.TRANSITION]
    assert t.cause == Cause.FLEET.value and t.previous_state is S.RUNNING
    assert t.details["fleet_event"] == "5-0" and t.details["fleet_host"] == "h9"
    assert m.fleet_rollback(REGRESSION, At(2.0, None, NO, events)) is None  # in flight: no-op
    assert m.restore_done("invoice", "s1", None, "autoheal", None, At(3.0, None, NO, events))
    assert m.view.workflows["invoice"].state is S.DEGRADED


def test_a_host_without_a_store_records_that_it_cannot_roll_back_and_stays() -> None:
    """Without a versioned store the host records fleet.rollback_unavailable and keeps its state."""
    m = _machine(versioned=False)
    events: list[Any] = []
    assert m.fleet_rollback(REGRESSION, At(1.0, None, NO, events)) is None
    assert not m.fleet_apply(REGRESSION, At(1.0, None, NO, events))
    assert m.view.workflows["invoice"].state is S.RUNNING
    reasons = [e.reason for e in events if e.kind is EventKind.FLEET]
    assert reasons == [Reason.FLEET_ROLLBACK_UNAVAILABLE.value] * 2
    assert not [e for e in events if e.kind is EventKind.TRANSITION]


def test_a_regression_elsewhere_leaves_a_blocked_workflow_blocked_but_an_operator_does_not() -> (
    None
):
    """A quarantined workflow ignores another host's regression rollback; an operator's fleet rollback still restores it."""
    m = _machine(versioned=True)
    quarantine = FleetEvent("1-0", "quarantine", "h9", "invoice", S.QUARANTINED, "x", 1, 1)
    assert m.fleet_apply(quarantine, At(1.0, None, NO, None))
    assert m.fleet_rollback(REGRESSION, At(2.0, None, NO, None)) is None
    operator = FleetEvent("6-0", "rollback", "cli", "invoice", S.ROLLBACK, actor="ops")
    assert isinstance(m.fleet_rollback(operator, At(3.0, None, NO, None)), Restore)
    assert m.view.workflows["invoice"].state is S.ROLLBACK


def test_the_fleet_moves_into_rollback_but_never_out_of_it() -> None:
    """The table has fleet edges into ROLLBACK and none out of it (a restore is in flight)."""
    assert is_legal(S.RUNNING, S.ROLLBACK, Cause.FLEET)
    assert is_legal(S.DEGRADED, S.ROLLBACK, Cause.FLEET)
    assert not any(is_legal(S.ROLLBACK, t, Cause.FLEET) for t in S)


# -- real hosts on a real redis-server ---------------------------------------------------------

SECTIONS: dict[str, Any] = {
    "breakers": {
        "workflow": {"failure_threshold": 10_000},
        "global": {"failure_threshold": 10_000},
        "step": {"consecutive_target_not_found": 10_000},
    },
    "rollback": {"min_executions": 10},
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_server: Any) -> Iterator[list[Host]]:
    """Three hosts with a versioned store each (model v1 known-good, then v2) and one without."""
    tmp = tmp_path_factory.mktemp("fleet-rb")
    hosts = [
        Host(tmp / f"h{i}", fleet_policy(redis_server.url, "rb", f"h{i}", **SECTIONS), store=True)
        for i in range(3)
    ]
    hosts.append(Host(tmp / "h3", fleet_policy(redis_server.url, "rb", "h3", **SECTIONS)))
    try:
        for host in hosts:
            assert host.ask("sync", 10.0)
        for host in hosts[:3]:
            assert host.ask("snapshot", "v1", True) == "s000001"
        yield hosts
    finally:
        for host in hosts:
            host.close()


def _fleet_transitions(data_dir: Path, workflow: str) -> list[tuple[str, str, str]]:
    with AuditAnalytics(data_dir) as db:
        rows = db.sql(
            "SELECT previous_state, state, cause FROM audit WHERE kind = 'transition'"
            f" AND workflow_id = '{workflow}' ORDER BY ts, seq"
        )
    return [(r["previous_state"], r["state"], r["cause"]) for r in rows]


def test_a_regression_on_one_host_rolls_back_every_hosts_store(fleet: list[Host]) -> None:
    """One host's regression restores v1 in every host's own store; each records a fleet rollback, then restore_ok."""
    for host in fleet:
        host.ask("result", "invoice", "open", "success")
    fleet[0].ask("results", "invoice", "open", "success", 12)
    for host in fleet[:3]:
        assert host.ask("snapshot", "v2", False) == "s000002"
    fleet[0].ask("results", "invoice", "open", "postcondition_failed", 10)
    for host in fleet[:3]:
        assert host.ask("wait_mode", "invoice", "degraded", 10.0)
        assert host.ask("model") == ["v1", "s000001"]
    assert fleet[3].ask("mode", "invoice") == "running"  # no store: stays
    assert ("running", "rollback", "regression") in _fleet_transitions(fleet[0].data_dir, "invoice")
    for host in fleet[1:3]:
        assert _fleet_transitions(host.data_dir, "invoice") == [
            ("running", "rollback", "fleet"),
            ("rollback", "degraded", "restore_ok"),
        ]
    assert fleet[3].ask("sync", 10.0)
    with AuditAnalytics(fleet[3].data_dir) as db:
        rows = db.sql("SELECT details FROM audit WHERE reason = 'fleet.rollback_unavailable'")
    assert len(rows) == 1 and json.loads(rows[0]["details"])["fleet_host"] == "h0"


def test_an_operator_fleet_rollback_from_the_cli_reaches_every_host(
    fleet: list[Host], redis_server: Any
) -> None:
    """`autoheal force W rollback --fleet` restores the known-good set on every host with a store; every log replays."""
    for host in fleet[:3]:
        host.ask("result", "billing", "open", "success")
        host.ask("snapshot", "v3", False)
        assert host.ask("model")[0] == "v3"
    where = ["--reason", "bad model", "--url", redis_server.url, "--namespace", "rb"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoheal_otel.cli",
            "force",
            "billing",
            "rollback",
            "--fleet",
            *where,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    for host in fleet[:3]:
        assert host.ask("wait_mode", "billing", "degraded", 10.0)
        assert host.ask("model") == ["v1", "s000001"]
        assert ("running", "rollback", "fleet") in _fleet_transitions(host.data_dir, "billing")
    # Each host's log, fleet rollbacks and restores included, replays to the same decisions
    # (this one's, and those of the module's earlier tests when they ran before it).
    for host in fleet:
        assert host.ask("sync", 10.0)
        host.ask("gate", "invoice", "open")
    for host in fleet:
        report = replay(host.data_dir)
        assert report.matches, report.mismatches
    logged = [t for wf in ("invoice", "billing") for t in _fleet_transitions(fleet[1].data_dir, wf)]
    rollbacks = sum(1 for _, state, _ in logged if state == "rollback")
    assert rollbacks >= 1 and replay(fleet[1].data_dir).recorded["rollback"] == rollbacks


def test_a_gate_with_the_fleet_on_runs_no_fleet_redis_or_socket_code(
    tmp_path: Path, redis_server: Any
) -> None:
    """Profiled, a fleet host's gate calls what a host without the fleet calls, plus the link's sink (a kind check): no redis, socket or lock of the link."""
    import cProfile
    import gc
    import pstats

    from autoheal_otel import AutoHealManager

    from .fleet_support import wait_until

    def gate_calls(policy: PolicyConfig, data_dir: Path) -> dict[str, int]:
        manager = AutoHealManager(policy, data_dir=data_dir)
        try:
            assert manager.fleet is None or wait_until(lambda: manager.fleet.connected)  # type: ignore[union-attr]
            # Earlier tests' garbage (redis clients, ...) must not finalize inside the profile.
            gc.collect()
            gc.disable()
            profile = cProfile.Profile()
            profile.enable()
            try:
                for i in range(200):
                    manager.should_execute_step(f"wf{i % 20}", "step")
            finally:
                profile.disable()
                gc.enable()
        finally:
            manager.close()
        stats: dict[tuple[str, int, str], Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        # What a gate may reach: the library, redis, sockets, locks (not a plugin's GC hooks).
        keys = ("autoheal_otel", "redis", "socket", "lock", "recv", "send", "select")
        return {
            f"{Path(f).name}:{name}": row[1]  # the call count
            for (f, _, name), row in stats.items()
            if any(k in f + name for k in keys)
        }

    on = gate_calls(fleet_policy(redis_server.url, "gate", "g0"), tmp_path / "on")
    off = gate_calls(PolicyConfig(), tmp_path / "off")
    # The audit records allowed gates: the link's sink (its outbox's emit) is the one extra call.
    assert set(on) - set(off) == {"_outbox.py:emit"}
    assert set(off) - set(on) == set()
    assert not [c for c in on if "redis" in c or "socket" in c]
    # The one lock a gate takes is the manager's, once: never the link's.
    locks = {c: n for c, n in on.items() if "acquire" in c}
    assert locks == {c: n for c, n in off.items() if "acquire" in c}
    assert sum(locks.values()) == 200


def test_the_fleet_publishes_a_regression_rollback_once_and_an_operators_always(
    redis_server: Any,
) -> None:
    """A second host's regression of the same workflow is deduplicated, a quarantined workflow gets none, an operator's always goes out, and the fleet's state after a rollback is degraded, not a state a starting host would repeat."""
    from autoheal_otel.fleet import FleetStore
    from autoheal_otel.policy._fleet import FleetPolicy

    def store(host: str) -> FleetStore:
        policy = FleetPolicy(url=redis_server.url, namespace="rbx", host_id=host, timeout_seconds=2)
        return FleetStore(policy)

    a, b = store("a"), store("b")
    try:
        assert a.rollback("w", "rollback.regression", (40, 20), "", "drop", 30.0) is not None
        assert b.rollback("w", "rollback.regression", (35, 20), "", "drop", 30.0) is None
        assert b.rollback("w", "operator", (0, 0), "ops", "bad model", 0) is not None
        assert a.status()["workflows"]["w"]["state"] == "degraded"
        assert [e for e in a.snapshot()[0] if e.workflow_id == "w"] == []
        a.operator("q", S.QUARANTINED, "ops", "hold", create=True)
        assert a.rollback("q", "rollback.regression", (40, 20), "", "drop", 30.0) is None
        kinds = [(e.kind, e.workflow_id, e.host) for e in a.read("0-0", 10)[0]]
        assert kinds == [("rollback", "w", "a"), ("rollback", "w", "b"), ("operator", "q", "a")]
    finally:
        a.close()
        b.close()
