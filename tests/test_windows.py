"""SlidingWindow: exact counts against a brute-force model, expiry at exactly one window."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autoheal_otel import Trigger
from autoheal_otel.core._windows import SlidingWindow

steps = st.lists(
    st.tuples(st.floats(0, 50, allow_nan=False), st.sampled_from(Trigger), st.booleans()),
    max_size=80,
)


@given(window=st.floats(0.5, 100), ops=steps)
def test_window_matches_brute_force(window: float, ops: list[tuple[float, Trigger, bool]]) -> None:
    """After any sequence of adds and reads, totals and per-trigger counts equal a recount."""
    w = SlidingWindow(window)
    now = 0.0
    log: list[tuple[float, Trigger]] = []
    for dt, trigger, add in ops:
        now += dt
        if add:
            w.add(now, trigger)
            log.append((now, trigger))
        live = [(t, k) for t, k in log if now - t < window]
        assert w.total(now) == len(live)
        assert w.count(now, trigger) == sum(1 for _, k in live if k is trigger)
        assert w.counts(now) == {k: sum(1 for _, x in live if x is k) for _, k in live}


def test_entry_expires_at_exactly_one_window() -> None:
    """An event counts for window_seconds and not a moment longer."""
    w = SlidingWindow(600)
    w.add(100.0, Trigger.ERROR)
    assert w.total(699.999) == 1
    assert w.total(700.0) == 0


def test_cap_drops_the_oldest_and_keeps_counts_consistent() -> None:
    """Past max_entries the oldest entries go, and per-trigger counts follow."""
    w = SlidingWindow(1000, max_entries=3)
    for i, trigger in enumerate(
        [Trigger.ERROR, Trigger.TARGET_NOT_FOUND, Trigger.ERROR, Trigger.ERROR]
    ):
        w.add(float(i), trigger)
    assert w.total(5) == 3
    assert w.counts(5) == {Trigger.TARGET_NOT_FOUND: 1, Trigger.ERROR: 2}


def test_clear_and_oldest() -> None:
    """oldest() reports the first live entry; clear() forgets everything."""
    w = SlidingWindow(10)
    assert w.oldest(0) is None
    w.add(1.0, Trigger.ERROR)
    w.add(2.0, Trigger.ERROR)
    assert w.oldest(5) == 1.0
    assert w.oldest(11.5) == 2.0
    w.clear()
    assert w.total(3) == 0
    assert w.counts(3) == {}
