"""The global rule is defined once: the machine, the shared-directory upkeep and the fleet's
Redis script reach the same verdict on the same counts."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoheal_otel.core._breakers import GlobalRule
from autoheal_otel.fleet._store import FleetStore

from .fleet_support import fleet_policy


def test_the_rule_fires_at_its_threshold_and_when_forced() -> None:
    rule = GlobalRule(failure_threshold=3, window_seconds=60.0, quarantined_threshold=2)
    assert rule.window_firing(2) is None
    firing = rule.window_firing(3)
    assert firing is not None and (firing.count, firing.threshold) == (3, 3)
    forced = rule.window_firing(1, forced=True)  # another writer paused: its count is shown
    assert forced is not None and forced.count == 3
    assert rule.quarantine_firing(1) is None
    assert rule.quarantine_firing(2) is not None
    assert rule.redis_args() == (3, 60.0)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    threshold=st.integers(1, 8),
    batches=st.lists(st.integers(1, 4), min_size=1, max_size=6),
)
def test_the_fleet_script_and_the_machine_agree(
    redis_server: Any, threshold: int, batches: list[int]
) -> None:
    """Ship random batches of global failures: the script pauses the fleet at exactly the
    batch where the Python rule first fires, with the same count and threshold."""
    ns = f"rule-{uuid.uuid4().hex[:8]}"
    policy = fleet_policy(redis_server.url, ns, "h0", fleet={"min_hosts": 1})
    rule = GlobalRule(threshold, 600.0, 99)
    store = FleetStore(policy.fleet)
    try:
        total, fired_at, python_at = 0, None, None
        for index, size in enumerate(batches):
            items = [
                (f"h0:{index}:{k}", "wf", 0, 600_000, "600", True, "", "") for k in range(size)
            ]
            _, _, ids = store.ship(items, *rule.redis_args(), 1)
            total += size
            if python_at is None and rule.window_firing(total) is not None:
                python_at = (index, total)
            if ids and fired_at is None:
                fired_at = (index, total)
        state = store.client.hgetall(f"{ns}:global")
        state = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in state.items()
        }
        assert fired_at == python_at
        if python_at is None:
            assert state.get("state") != "paused"
        else:
            assert state["state"] == "paused"
            assert int(state["count"]) == python_at[1]
            assert int(state["threshold"]) == threshold
    finally:
        store.client.delete(*(store.client.keys(f"{ns}:*") or [f"{ns}:none"]))
        store.close()
