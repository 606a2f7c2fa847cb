"""Hourly rollups: the regression query and the calibration lookback read whole hours from them."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, Outcome, StepResult
from autoheal_otel.analytics import AuditAnalytics, load_query, ts_param
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.testing import FakeClock

from .conftest import policy_with

# The regression query as it read every row of the range, before the hourly rollups.
ROW_BY_ROW = """
WITH r AS (
    SELECT workflow_id,
           ts > $as_of::TIMESTAMP - to_microseconds(CAST(ceil($recent_seconds::DOUBLE * 1000000) AS BIGINT)) AS recent,
           outcome = 'success' AS ok
    FROM audit
    WHERE kind = 'result' AND ts <= $as_of::TIMESTAMP
      AND ts > $as_of::TIMESTAMP - to_microseconds(CAST(ceil(($recent_seconds::DOUBLE + $baseline_seconds::DOUBLE) * 1000000) AS BIGINT))
)
SELECT workflow_id,
       count(*) FILTER (WHERE NOT recent) AS baseline_executions,
       count(*) FILTER (WHERE NOT recent AND ok) AS baseline_successes,
       count(*) FILTER (WHERE recent) AS recent_executions,
       count(*) FILTER (WHERE recent AND ok) AS recent_successes
FROM r GROUP BY workflow_id ORDER BY workflow_id
"""
COUNTS = ("baseline_executions", "baseline_successes", "recent_executions", "recent_successes")


def _log(data_dir: Path, clock: FakeClock, steps: int, seed: int) -> None:
    """Write results over many hours with irregular gaps, two matching methods, some failures."""
    rng = random.Random(seed)
    quiet = policy_with(audit={"compact_interval_seconds": 0})
    with AutoHealManager(data_dir=data_dir, clock=clock, policy=quiet) as m:
        for i in range(steps):
            outcome = rng.choice([Outcome.SUCCESS] * 3 + [Outcome.POSTCONDITION_FAILED])
            result = StepResult(
                outcome=outcome,
                confidence=round(rng.random(), 3),
                validated=outcome is Outcome.SUCCESS,
                details={"method": rng.choice(["faiss", "ocr"])},
            )
            m.on_step_result(f"w{i % 3}", "s", result)
            clock.advance(rng.uniform(1, 900))


@pytest.mark.parametrize("compacted", [False, True])
def test_regression_query_from_rollups_equals_the_row_by_row_one(
    tmp_path: Path, clock: FakeClock, compacted: bool
) -> None:
    """Whole hours from the rollups plus the boundary hours' rows give the row-by-row counts."""
    _log(tmp_path, clock, 300, seed=1)
    if compacted:
        compact(tmp_path)
        _log(tmp_path, clock, 60, seed=2)  # and a live part on top
    rng = random.Random(3)
    end = clock.now()
    with AuditAnalytics(tmp_path) as db:
        for _ in range(25):
            params = {
                "as_of": ts_param(end - timedelta(seconds=rng.uniform(0, 30_000))),
                "recent_seconds": rng.choice([600, 3600, 5000.5, 7200]),
                "baseline_seconds": rng.choice([1800, 3600, 21_600, 13_333.3]),
            }
            expected = db.sql(ROW_BY_ROW, params)
            got = db.query("success_rate_drop", min_executions=10, drop_points=20, **params)
            assert [{k: r[k] for k in ("workflow_id", *COUNTS)} for r in got] == expected
            assert sum(r["baseline_executions"] + r["recent_executions"] for r in got) > 0


def test_calibration_lookback_keeps_every_method_window(tmp_path: Path, clock: FakeClock) -> None:
    """The samples read from the hours the horizon names equal those read from the whole log."""
    _log(tmp_path, clock, 400, seed=4)
    compact(tmp_path)
    _log(tmp_path, clock, 40, seed=5)
    whole = load_query("precision_samples")
    with AuditAnalytics(tmp_path) as db:
        for window, hours_back in ((5, 0), (30, 3), (2000, 0), (1, 20)):
            as_of = ts_param(clock.now() - timedelta(hours=hours_back))
            since = db.rows("calibration_horizon", as_of=as_of, window=window)[0][0]
            scoped = db.rows("precision_samples", as_of=as_of, window=window, since=since)
            everything = db.sql(whole, {"as_of": as_of, "window": window, "since": "1970-01-01"})
            assert scoped == [tuple(r.values()) for r in everything]
            assert {r[0] for r in scoped} == {"faiss", "ocr"}
            if window == 5:
                assert since.year > 1970  # a short window does not read the whole log
