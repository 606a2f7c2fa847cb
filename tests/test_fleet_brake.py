"""A fleet decides as one host would: resumes reset windows, refusals match, pauses stay local.

On a real redis-server: every operator and resume input has the same effect on a fleet of
hosts as on one plain manager; what a host decided alone during an outage stays local; the
CLI's moves are credited to the operator, and refused as one host refuses them.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoheal_otel import AutoHealManager, ExecutionState, PolicyConfig
from autoheal_otel.base._fleet_event import FleetEvent
from autoheal_otel.core._ledger import NO_TRACE, At
from autoheal_otel.core._machine import Machine
from autoheal_otel.fleet import FleetStore
from autoheal_otel.fleet._catchup import reseed_states
from autoheal_otel.testing import FakeClock

from .cli_support import run
from .conftest import OK, POST, policy_with
from .fleet_support import fleet_policy, wait_until

S = ExecutionState


def test_fleet_resume_empties_the_released_workflows_window(
    redis_server: Any, tmp_path: Path
) -> None:
    """Regression: after 5 + 5 failures (quarantined), a pause and a fleet resume, one more
    failure quarantined the workflow again ("11 in 600 s >= 10"); one host stays RUNNING."""
    ns = "resume-window"
    hosts = [
        AutoHealManager(fleet_policy(redis_server.url, ns, f"h{i}"), data_dir=tmp_path / f"h{i}")
        for i in range(2)
    ]
    alone = AutoHealManager(data_dir=tmp_path / "alone")
    try:
        assert wait_until(lambda: all(h.fleet is not None and h.fleet.connected for h in hosts))
        for host in hosts:
            for _ in range(5):
                host.on_step_result("invoice", "s", POST)
        for _ in range(10):
            alone.on_step_result("invoice", "s", POST)
        assert wait_until(lambda: all(h.get_mode("invoice") is S.QUARANTINED for h in hosts), 10)
        assert alone.get_mode("invoice") is S.QUARANTINED
        assert hosts[0].fleet is not None
        hosts[0].fleet.publish_move("invoice", "paused", "hold", actor="ann")
        alone.force_transition("invoice", "paused", reason="hold", actor="ann")
        assert wait_until(lambda: all(h.get_mode("invoice") is S.PAUSED for h in hosts))
        hosts[0].fleet.publish_resume("go", actor="ann")
        alone.resume_all("go", actor="ann")
        assert wait_until(lambda: all(h.get_mode("invoice") is S.RUNNING for h in hosts))
        store = FleetStore(hosts[0].fleet.policy)
        assert store.window_counts().get("invoice", 0) == 0
        hosts[1].on_step_result("invoice", "s", POST)
        alone.on_step_result("invoice", "s", POST)
        assert wait_until(lambda: store.window_counts().get("invoice", 0) == 1)
        store.close()
        assert alone.get_mode("invoice") is S.RUNNING
        assert [h.get_mode("invoice") for h in hosts] == [S.RUNNING, S.RUNNING]
    finally:
        for m in (*hosts, alone):
            m.close()


def test_a_local_pause_is_not_reseeded_but_a_fleet_pause_is() -> None:
    """A global pause this host's fallback breakers decided stays local; the fleet's is kept."""
    policy = policy_with(breakers={"global": {"failure_threshold": 3}})
    clock = FakeClock()
    machine = Machine(policy, "h0", (clock.monotonic(), clock.now()))
    for i in range(3):
        machine.result(f"w{i}", "s", POST, clock.monotonic(), None, (None, None), None)
    view = machine.view
    assert view.glob.paused and view.glob.cause == "global_breaker"
    assert [s["w"] for s in reseed_states(view, {})] == []
    fleet = Machine(policy, "h0", (clock.monotonic(), clock.now()))
    pause = FleetEvent("1-0", "pause", "h9", None, ExecutionState.PAUSED, "global.failure_window")
    assert fleet.fleet_apply(pause, At(clock.monotonic(), None, NO_TRACE, None))
    assert fleet.view.glob.cause == "fleet"
    assert [s["w"] for s in reseed_states(fleet.view, {})] == [""]


def _fleet_args(url: str, ns: str) -> list[str]:
    return ["--url", url, "--namespace", ns]


def test_the_cli_refuses_what_one_host_refuses_and_credits_the_operator(
    redis_server: Any, tmp_path: Path
) -> None:
    """An unknown id needs --create, a same-state move is refused, the event names the CLI."""
    ns = "cli-refusals"
    policy = fleet_policy(redis_server.url, ns, "robot-7")
    policy_file = tmp_path / "robot.json"
    policy.dump(policy_file)
    host = AutoHealManager(policy, data_dir=tmp_path / "h")
    try:
        host.on_step_result("invoice", "s", POST)  # the host runs "invoice": announced
        assert host.fleet is not None
        store = FleetStore(host.fleet.policy)
        assert wait_until(lambda: store.client.sismember(f"{ns}:known", "invoice"))
        base = ["force", "--fleet", "--policy", str(policy_file), "--reason", "r", "--actor", "ann"]
        typo = run([*base[:1], "nosuchwf", "paused", *base[1:]])
        assert typo.returncode == 1 and "nosuchwf" in typo.stderr and "--create" in typo.stderr
        assert "nosuchwf" not in store.status()["workflows"]
        made = run([*base[:1], "nosuchwf", "paused", *base[1:], "--create"])
        assert made.returncode == 0, made.stderr
        again = run([*base[:1], "nosuchwf", "paused", *base[1:], "--create"])
        assert again.returncode == 1 and "already holds" in again.stderr
        moved = run([*base[:1], "invoice", "paused", *base[1:]])
        assert moved.returncode == 0, moved.stderr
        events = store.read("0-0", 10)[0]
        assert {e.host for e in events if e.kind == "operator"} == {f"cli@{socket.gethostname()}"}
        assert all(e.actor == "ann" for e in events if e.kind == "operator")
        assert wait_until(lambda: host.get_mode("invoice") is S.PAUSED)
        store.close()
    finally:
        host.close()


def test_fleet_status_names_an_empty_namespace_and_stale_hosts(
    redis_server: Any, tmp_path: Path
) -> None:
    """An unknown namespace is a problem (exit 1), not a healthy empty fleet; old hosts are stale."""
    empty = run(["fleet", "status", *_fleet_args(redis_server.url, "no-such-namespace")])
    assert empty.returncode == 1 and "no-such-namespace" in empty.stderr
    ns = "stale-hosts"
    store = FleetStore(fleet_policy(redis_server.url, ns, "x").fleet)
    store.client.hset(f"{ns}:hosts", mapping={"old": 0, "new": 10**13})
    store.close()
    shown = run(["fleet", "status", "--json", *_fleet_args(redis_server.url, ns)])
    assert shown.returncode == 0, shown.stderr
    hosts = json.loads(shown.stdout)["hosts"]
    assert hosts["old"]["stale"] is True and hosts["new"]["stale"] is False


# -- the fleet decides as one host would: a differential property test ------------------------

Op = tuple[str, int, str]
OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["fail", "ok"]), st.integers(0, 1), st.sampled_from(["a", "b"])),
        st.tuples(
            st.just("force"),
            st.just(0),
            st.sampled_from(
                ["a:paused", "a:running", "b:quarantined", "b:running", "a:quarantined"]
            ),
        ),
        st.tuples(st.just("resume"), st.just(0), st.just("")),
    ),
    min_size=1,
    max_size=16,
)
LIMITS = {"breakers": {"workflow": {"failure_threshold": 4}, "global": {"failure_threshold": 1000}}}
RUNS = iter(range(1_000_000))


@settings(max_examples=10, deadline=None)
@given(ops=OPS)
# Found by this test: a failure shipped after a release and a later move was counted, because
# only the newest event was compared (the fleet now keeps each workflow's last release).
@example(ops=[("fail", 0, "a"), ("force", 0, "a:paused"), ("force", 0, "a:running"),
              ("force", 0, "a:paused")])  # fmt: skip
def test_a_fleet_ends_where_one_host_ends(
    redis_server: Any, tmp_path_factory: Any, ops: list[Op]
) -> None:
    """Random failures, successes, operator moves and resumes driven into one plain manager
    and into a fleet of two hosts: the same gate answers, the same states, the same windows."""
    ns = f"diff-{next(RUNS)}"
    root = tmp_path_factory.mktemp(ns)
    hosts = [
        AutoHealManager(
            fleet_policy(redis_server.url, ns, f"h{i}", **LIMITS), data_dir=root / f"h{i}"
        )
        for i in range(2)
    ]
    alone = AutoHealManager(PolicyConfig.from_dict(LIMITS), data_dir=root / "alone")
    links = [h.fleet for h in hosts]
    assert links[0] is not None and links[1] is not None
    store = FleetStore(links[0].policy)
    try:
        assert wait_until(lambda: all(link.connected for link in links))  # type: ignore[union-attr]
        for kind, who, arg in ops:
            if kind in ("fail", "ok"):
                allowed = alone.should_execute_step(arg, "s")[0]
                assert hosts[who].should_execute_step(arg, "s")[0] == allowed, (kind, arg)
                if allowed:
                    result = POST if kind == "fail" else OK
                    alone.on_step_result(arg, "s", result)
                    hosts[who].on_step_result(arg, "s", result)
            elif kind == "force":
                wid, state = arg.split(":")
                if alone.get_mode(wid).value == state:
                    continue  # a same-state move is refused by both (tested above)
                alone.force_transition(wid, state, reason="op", actor="ann")
                links[0].publish_move(wid, state, "op", actor="ann")
            else:
                alone.resume_all("go", actor="ann")
                links[0].publish_resume("go", actor="ann")
            want = {w: alone.get_mode(w) for w in ("a", "b")}

            def converged(want: dict[str, ExecutionState] = want) -> bool:
                return all(h.get_mode(w) is want[w] for h in hosts for w in want)

            assert wait_until(converged, 5), (
                kind,
                arg,
                want,
                [{w: h.get_mode(w) for w in want} for h in hosts],
            )
        report = alone.get_status_report().workflows
        local = {w: report[w].window.count for w in ("a", "b") if w in report}
        assert wait_until(
            lambda: (
                {w: n for w, n in store.window_counts().items() if n}
                == {w: n for w, n in local.items() if n}
            )
        ), (store.window_counts(), local)
    finally:
        store.close()
        for m in (*hosts, alone):
            m.close()


def test_a_flushall_without_a_dropped_connection_is_noticed_and_reseeded(
    redis_server: Any, tmp_path: Path
) -> None:
    """Regression: an emptied Redis was noticed only if a reader happened to be blocked; now
    the shipper's epoch check notices it and an operator quarantine is re-seeded."""
    ns = "flushed"
    host = AutoHealManager(fleet_policy(redis_server.url, ns, "h0"), data_dir=tmp_path / "h0")
    link = host.fleet
    assert link is not None
    store = FleetStore(link.policy)
    try:
        assert wait_until(lambda: link.connected)
        host.on_step_result("invoice", "s", POST)
        link.publish_move("invoice", "quarantined", "hold", actor="ann")
        assert wait_until(lambda: host.get_mode("invoice") is S.QUARANTINED)
        store.client.flushall()
        assert wait_until(
            lambda: store.status()["workflows"].get("invoice", {}).get("state") == "quarantined",
            10,
        )
        assert host.get_mode("invoice") is S.QUARANTINED
        assert store.client.get(f"{ns}:epoch") is not None
        assert store.client.sismember(f"{ns}:known", "invoice")
    finally:
        store.close()
        host.close()


# -- hostile fleet entries (a real redis-server; whoever wrote them) ---------------------------


def test_a_malformed_fleet_event_is_recorded_once_and_skipped(
    redis_server: Any, tmp_path: Path
) -> None:
    """Regression: one bad stream entry stopped a host's reader for good (re-read in a tight
    loop); now it is recorded once, counted, and the next legitimate decision is applied."""
    ns = "hostile-stream"
    host = AutoHealManager(fleet_policy(redis_server.url, ns, "h0"), data_dir=tmp_path / "h0")
    link = host.fleet
    assert link is not None
    store = FleetStore(link.policy)
    try:
        assert wait_until(lambda: link.connected)
        host.on_step_result("invoice", "s", POST)
        stream = f"{ns}:events"
        for bad in (
            {"kind": "operator", "wf": "invoice", "target": "bogus"},
            {"kind": "quarantine", "wf": "invoice", "target": "quarantined", "count": "x"},
            {"kind": "pause", "wf": "", "target": "paused", "window": "soon"},
            {"kind": "operator", "wf": "a\x1b[2J", "target": "paused"},
            {"kind": "nonsense", "wf": "invoice"},
        ):
            store.client.xadd(stream, bad)
        link.publish_move("invoice", "paused", "\x1b]0;pwned\x07 after bad entries", actor="ann")
        assert wait_until(lambda: host.get_mode("invoice") is S.PAUSED)
        assert wait_until(lambda: link.rejections.count == 5)
        assert link.status()["rejected"] == 5 and link.connected
        reason = host.get_state_info("invoice").reason
        assert reason.isprintable() and "\x1b" not in reason
    finally:
        store.close()
        host.close()
    recorded = [
        json.loads(line)
        for seg in (tmp_path / "h0" / "audit").glob("audit-*.jsonl")
        for line in seg.read_text().splitlines()
        if '"fleet.event_rejected"' in line
    ]
    assert len(recorded) == 5  # once each, not once per re-read
    assert all("must" in r["details"]["why"] for r in recorded)


def test_a_malformed_state_hash_does_not_stop_a_new_host_connecting(
    redis_server: Any, tmp_path: Path
) -> None:
    """Regression: `HSET <ns>:wf:x count notanumber` kept every new host from connecting."""
    ns = "hostile-hash"
    seed = FleetStore(fleet_policy(redis_server.url, ns, "x").fleet)
    seed.client.sadd(f"{ns}:wfs", "x", "y")
    seed.client.hset(
        f"{ns}:wf:x", mapping={"state": "quarantined", "event": "1-0", "count": "nan?"}
    )
    seed.client.hset(
        f"{ns}:wf:y", mapping={"state": "quarantined", "event": "2-0", "kind": "quarantine"}
    )
    seed.close()
    host = AutoHealManager(fleet_policy(redis_server.url, ns, "h1"), data_dir=tmp_path / "h1")
    try:
        assert host.fleet is not None
        assert wait_until(lambda: host.fleet.connected)  # type: ignore[union-attr]
        assert wait_until(lambda: host.get_mode("y") is S.QUARANTINED)  # the good one applies
        assert host.fleet.rejections.count == 1
    finally:
        host.close()


def test_a_hosts_own_outage_pause_stays_local_after_the_outage(tmp_path: Path) -> None:
    """Regression: after a Redis outage a host pushed the global pause its fallback breakers
    decided alone up to the fleet, pausing every other host (min_hosts bypassed); now the
    fleet decides again from the re-sent failures, with its quorum: the others keep running."""
    import signal

    from .redis_support import RedisServer

    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()  # its own: this test stops it
    limits = {
        "breakers": {"global": {"failure_threshold": 3}, "workflow": {"failure_threshold": 100}}
    }
    hosts = [
        AutoHealManager(
            fleet_policy(server.url, "quorum", name, **limits, fleet={"min_hosts": 2}),
            data_dir=tmp_path / name,
        )
        for name in ("a", "b")
    ]
    a, b = hosts
    assert a.fleet is not None and b.fleet is not None
    try:
        assert wait_until(lambda: a.fleet.connected and b.fleet.connected)  # type: ignore[union-attr]
        b.should_execute_step("w0", "s")
        server.signal(signal.SIGSTOP)
        try:
            assert wait_until(lambda: not a.fleet.connected, 10)  # type: ignore[union-attr]
            for i in range(3):
                a.on_step_result(f"w{i}", "s", POST)
            assert a.get_mode("w0") is S.PAUSED  # decided alone, by its fallback breakers
        finally:
            server.signal(signal.SIGCONT)
        assert wait_until(lambda: a.fleet.connected, 10)  # type: ignore[union-attr]
        store = FleetStore(a.fleet.policy)
        try:
            # The re-sent failures reached the fleet: 3 failures, but from one host only.
            assert wait_until(lambda: store.status()["global"]["window"] == 3, 10)
            assert store.status()["global"]["state"] == "running"
        finally:
            store.close()
        assert b.get_mode("w0") is S.RUNNING and b.should_execute_step("w0", "s")[0]
    finally:
        for m in hosts:
            m.close()
        server.stop()


def test_forged_workflow_ids_cannot_grow_a_host_without_bound(
    redis_server: Any, tmp_path: Path
) -> None:
    """Regression: 20,000 forged workflow ids made 20,002 workflows on a host; past
    fleet.max_workflows a new id now pauses the host (fail closed, recorded) instead."""
    ns = "forged"
    policy = fleet_policy(redis_server.url, ns, "h0", fleet={"max_workflows": 3})
    host = AutoHealManager(policy, data_dir=tmp_path / "h0")
    assert host.fleet is not None
    store = FleetStore(host.fleet.policy)
    try:
        assert wait_until(lambda: host.fleet.connected)  # type: ignore[union-attr]
        for wid in ("w0", "w1", "w2"):
            host.on_step_result(wid, "s", OK)
        for i in range(50):
            store.client.xadd(
                f"{ns}:events", {"kind": "operator", "wf": f"forged{i}", "target": "paused"}
            )
        assert wait_until(lambda: host.get_mode("w0") is S.PAUSED)
        assert wait_until(lambda: link_idle(store, ns, host))
        assert len(host.get_status_report().workflows) == 3
        info = host.get_status_report().global_
        assert info.paused and "fleet.max_workflows" in (info.reason or "")
    finally:
        store.close()
        host.close()


def link_idle(store: FleetStore, ns: str, host: AutoHealManager) -> bool:
    """Return True once the host's reader has read the whole stream."""
    newest = store.last_event_id()
    return host.fleet is not None and host.fleet.status()["last_event"] == newest
