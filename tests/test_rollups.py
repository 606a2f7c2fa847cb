"""Hourly rollups: the regression query and the calibration lookback read whole hours from them."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from autoheal_otel import AutoHealManager, Outcome, StepResult
from autoheal_otel.analytics import AuditAnalytics, load_query, ts_param
from autoheal_otel.analytics._view import read_manifest, sources
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


def test_a_later_run_keeps_the_rollups_of_earlier_outputs(tmp_path: Path, clock: FakeClock) -> None:
    """A second compaction does not take an earlier output's rollups for orphans."""
    folder = tmp_path / "audit" / "compacted"
    _log(tmp_path, clock, 40, seed=6)
    compact(tmp_path)
    _log(tmp_path, clock, 40, seed=7)
    report = compact(tmp_path)
    outputs = read_manifest(folder)
    assert len(outputs) == 2
    assert (report.cleaned, report.repaired) == ([], [])
    for output in outputs:
        assert output.rollup and output.hourly
        assert (folder / output.rollup).exists() and (folder / output.hourly).exists()
    assert sources(tmp_path).hourly_complete


@pytest.mark.parametrize("older", [False, True])
def test_an_output_without_its_rollups_is_rewritten_with_them(
    tmp_path: Path, clock: FakeClock, older: bool
) -> None:
    """An output missing its rollup files (deleted, or compacted before they existed) is
    rewritten by the next run, with the same records: every query answers the same."""
    folder = tmp_path / "audit" / "compacted"
    _log(tmp_path, clock, 60, seed=8)
    compact(tmp_path)
    (damaged,) = read_manifest(folder)
    assert damaged.hourly and damaged.rollup
    (folder / damaged.hourly).unlink()
    if older:  # a manifest line from before the rollups: it names none
        (folder / damaged.rollup).unlink()
        line = json.loads((folder / "manifest.jsonl").read_text())
        del line["rollup"], line["hourly"]
        (folder / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    _log(tmp_path, clock, 30, seed=9)  # a later segment, compacted by the same run
    assert not sources(tmp_path).hourly_complete
    as_of = ts_param(clock.now())
    queries = {
        "success_rate_drop": {
            "as_of": as_of,
            "recent_seconds": 7200,
            "baseline_seconds": 20_000,
            "min_executions": 10,
            "drop_points": 20,
        },
        "calibration_horizon": {"as_of": as_of, "window": 10},
        "version_outcomes": {"workflow_id": "*"},
        "summary": {},
    }
    with AuditAnalytics(tmp_path) as db:
        before = {name: db.query(name, **params) for name, params in queries.items()}
    report = compact(tmp_path)
    assert report.repaired == [damaged.id]
    (repaired,) = [o for o in read_manifest(folder) if o.replaces]
    assert (repaired.replaces, repaired.segments) == ((damaged.id,), damaged.segments)
    assert sources(tmp_path).hourly_complete
    assert not any(name.startswith(damaged.id) for name in (p.name for p in folder.iterdir()))
    with AuditAnalytics(tmp_path) as db:
        assert {name: db.query(name, **params) for name, params in queries.items()} == before
    assert any(r["baseline_executions"] for r in before["success_rate_drop"])
