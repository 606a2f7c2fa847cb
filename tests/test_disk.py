"""Disk accounting: the retention section, use by part, the budget in status, health, metrics."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from autoheal_otel import AutoHealManager, PolicyConfig
from autoheal_otel import semconv as sc
from autoheal_otel.base._errors import PolicyError
from autoheal_otel.disk._usage import PARTS, DiskMeter, measure
from autoheal_otel.server._http import route
from autoheal_otel.testing import FakeClock

from .cli_support import run

MIB = 1024 * 1024
NOW = datetime(2026, 6, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def _layout(data: Path) -> dict[str, int]:
    """Write one file of a known size in every part; return the expected bytes per part."""
    files = {
        "audit/audit-20260601-w.1.a-0001.jsonl": ("audit_raw", 1000),
        "audit/writer.lock": ("audit_raw", 10),
        "audit/compacted/part-0001.parquet": ("audit_compacted", 300),
        "audit/compacted/manifest.json": ("audit_compacted", 20),
        "target_memory.sqlite": ("success_store", 4096),
        "target_memory.sqlite-wal": ("success_store", 50),
        "failure_cases/wf/20260101T000000-00000001.json": ("failure_cases", 70),
        "failure_cases/wf/20260101T000000-00000001/screenshot.png": ("failure_cases", 700),
        "reports/wf/20260101T000000-00000002.md": ("reports", 11),
        "reports/wf/20260101T000000-00000002.html": ("reports", 22),
        "versions/sets.json": ("versions", 5),
        "learning/prototypes/v01/p.npy": ("versions", 600),
        "faiss_index/workflow_wf/v01/index.faiss": ("versions", 900),
        "target_memory/v01/target_memory.sqlite": ("versions", 8192),
        "report.md": ("other", 33),
    }
    expected = dict.fromkeys(PARTS, 0)
    for rel, (part, size) in files.items():
        _write(data / rel, size)
        expected[part] += size
    return expected


def test_shipped_policy_has_the_retention_defaults() -> None:
    """The shipped policy file carries the retention section with its documented defaults."""
    shipped = json.loads((ROOT / "config" / "auto_heal_policy.json").read_text())["retention"]
    assert shipped == PolicyConfig().retention.model_dump()
    assert shipped["keep_days"] == 90 and shipped["max_bytes"] == 10 * 1024**3
    assert shipped["keep_free_bytes"] == 1024**3
    assert shipped["failure_cases_keep_days"] == shipped["reports_keep_days"] == 30
    schema = json.loads((ROOT / "config" / "auto_heal_policy.schema.json").read_text())
    assert "RetentionPolicy" in json.dumps(schema)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("keep_days", 0),
        ("keep_days", 4000),
        ("max_bytes", 1000),
        ("max_bytes", True),
        ("keep_free_bytes", -1),
        ("failure_cases_keep_days", "30"),
        ("reports_keep_days", 0),
        ("check_interval_seconds", 0.0),
    ],
    ids=lambda v: str(v),
)
def test_bad_retention_values_name_the_field(field: str, value: Any) -> None:
    """A value out of range or of the wrong type is an error naming retention.<field>."""
    with pytest.raises(PolicyError) as err:
        PolicyConfig.from_dict({"retention": {field: value}})
    assert err.value.field == f"retention.{field}"
    assert repr(value) in str(err.value) or str(value) in str(err.value)


def test_retention_section_round_trips(tmp_path: Path) -> None:
    """A retention section survives dump and load unchanged."""
    policy = PolicyConfig.from_dict(
        {"retention": {"keep_days": 7, "max_bytes": 5 * MIB, "reports_keep_days": 2}}
    )
    policy.dump(tmp_path / "p.json")
    assert PolicyConfig.load(tmp_path / "p.json") == policy


def test_every_part_is_counted_exactly(tmp_path: Path) -> None:
    """Each file is counted once, in its part, with its size."""
    expected = _layout(tmp_path)
    usage = measure(tmp_path, PolicyConfig().retention, NOW)
    assert usage.parts == expected
    assert usage.total == sum(expected.values())
    assert not usage.truncated and usage.unreadable == 0
    assert usage.free_bytes is not None and usage.free_bytes > 0


def test_symlinks_are_counted_as_links_never_followed(tmp_path: Path) -> None:
    """A link to a big file or folder outside counts as the link itself, never the target."""
    outside = tmp_path / "outside"
    _write(outside / "big.bin", 5 * MIB)
    data = tmp_path / "data"
    expected = _layout(data)
    (data / "reports" / "wf" / "link.bin").symlink_to(outside / "big.bin")
    (data / "failure_cases" / "elsewhere").symlink_to(outside)
    (data / "audit" / "compacted" / "loop").symlink_to(data)
    usage = measure(data, PolicyConfig().retention, NOW)
    assert usage.total < sum(expected.values()) + 1024  # three link entries, no 5 MiB
    assert usage.parts["versions"] == expected["versions"]


def test_walk_is_bounded(tmp_path: Path) -> None:
    """Past its entry bound the walk stops and says its figure is a lower bound."""
    for i in range(50):
        _write(tmp_path / "failure_cases" / "wf" / f"{i}.json", 1)
    usage = measure(tmp_path, PolicyConfig().retention, NOW, max_entries=10)
    assert usage.truncated
    assert usage.files < 10


def test_read_only_meter_walks_again_only_when_stale(tmp_path: Path) -> None:
    """Without a background thread the meter reuses a figure for max_age seconds."""
    clock = FakeClock()
    meter = DiskMeter(tmp_path, lambda: PolicyConfig().retention, clock.monotonic, clock.now)
    first = meter.usage()
    _write(tmp_path / "report.md", 100)
    assert meter.usage() is first and meter.walks == 1
    clock.advance(meter.max_age)
    second = meter.usage()
    assert second is not None and second.parts["other"] == 100 and meter.walks == 2


def _over_budget(tmp_path: Path) -> PolicyConfig:
    _write(tmp_path / "failure_cases" / "wf" / "20260101T000000-00000001.json", 2 * MIB)
    return PolicyConfig.from_dict({"retention": {"max_bytes": MIB, "keep_free_bytes": 0}})


def test_status_and_health_are_degraded_over_the_budget(tmp_path: Path) -> None:
    """Use past max_bytes makes the report and /health degraded, naming the policy field."""
    policy = _over_budget(tmp_path)
    with AutoHealManager(policy=policy, data_dir=tmp_path, clock=FakeClock()) as manager:
        manager.should_execute_step("wf", "s")
        manager.run_background("retention")  # the thread's turn, now
        report = manager.get_status_report()
        assert report.disk is not None and report.disk["within_budget"] is False
        assert report.disk["parts"]["failure_cases"] == 2 * MIB
        assert report.global_.health == "degraded"
        assert "retention.max_bytes" in report.global_.reason
        code, _type, body = route(manager, None, "/health")
    health = json.loads(body)
    assert code == 200 and health["status"] == "degraded"
    assert "retention.max_bytes" in health["reason"]
    assert health["disk"]["total_bytes"] > health["disk"]["max_bytes"]


def test_health_is_degraded_under_the_free_space_floor(tmp_path: Path) -> None:
    """Free space under keep_free_bytes makes /health degraded, naming the floor."""
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    policy = PolicyConfig.from_dict({"retention": {"keep_free_bytes": free * 2 + 2**30}})
    with AutoHealManager(policy=policy, data_dir=tmp_path, read_only=False) as manager:
        manager.run_background("retention")
        code, _type, body = route(manager, None, "/health")
    health = json.loads(body)
    assert code == 200
    assert health["status"] == "degraded" and "retention.keep_free_bytes" in health["reason"]


def test_health_is_ok_within_the_budget(tmp_path: Path) -> None:
    """A directory within its budget leaves an ok report ok, with its disk figures."""
    with AutoHealManager(data_dir=tmp_path, clock=FakeClock()) as manager:
        manager.should_execute_step("wf", "s")
        manager.run_background("retention")
        report = manager.get_status_report()
    assert report.global_.health == "ok"
    assert report.disk is not None and report.disk["within_budget"] is True
    assert report.disk["parts"]["audit_raw"] > 0


def test_disk_gauges_report_every_part_and_the_budget(tmp_path: Path) -> None:
    """The gauges carry bytes per part, the budget, free space and the floor."""
    expected = _layout(tmp_path)
    for name in ("target_memory.sqlite", "target_memory.sqlite-wal"):  # the manager's own
        (tmp_path / name).unlink()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with AutoHealManager(data_dir=tmp_path, clock=FakeClock(), meter_provider=provider) as m:
        m.run_background("retention")
        data = reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    by_part = {p.attributes[sc.ATTR_DISK_PART]: p.value for p in points[sc.METRIC_DISK_USAGE]}
    assert set(by_part) == set(PARTS)
    # The manager's own audit segment and success store add to what the layout wrote.
    assert by_part["versions"] == expected["versions"]
    assert by_part["failure_cases"] == expected["failure_cases"]
    assert by_part["audit_raw"] > expected["audit_raw"]
    assert points[sc.METRIC_DISK_BUDGET][0].value == 10 * 1024**3
    assert points[sc.METRIC_DISK_FREE_FLOOR][0].value == 1024**3
    assert points[sc.METRIC_DISK_FREE][0].value > 0


def test_status_command_shows_disk_use(tmp_path: Path) -> None:
    """`autoheal status` prints the disk line; --json carries the figures by part."""
    with AutoHealManager(data_dir=tmp_path) as manager:
        manager.should_execute_step("wf", "s")
    _write(tmp_path / "reports" / "wf" / "20260101T000000-00000001.md", 1234)
    text = run(["status", "--data-dir", str(tmp_path)])
    assert text.returncode == 0, text.stderr
    assert "disk:" in text.stdout and "budget" in text.stdout
    as_json = run(["status", "--data-dir", str(tmp_path), "--json"])
    disk = json.loads(as_json.stdout)["disk"]
    assert disk["parts"]["reports"] == 1234 and disk["within_budget"] is True


def test_read_only_meters_of_one_directory_share_a_walk(tmp_path: Path) -> None:
    """A new read-only meter (serve's view rebuilds one per refresh) reuses a fresh figure,
    with the budget of its own policy."""
    clock = FakeClock()
    first = DiskMeter(tmp_path, lambda: PolicyConfig().retention, clock.monotonic, clock.now)
    assert first.usage() is not None and first.walks == 1
    tight = PolicyConfig.from_dict({"retention": {"max_bytes": MIB, "keep_free_bytes": 0}})
    second = DiskMeter(tmp_path, lambda: tight.retention, clock.monotonic, clock.now)
    usage = second.usage()
    assert second.walks == 0 and usage is not None and usage.max_bytes == MIB
    clock.advance(second.max_age)
    assert second.usage() is not None and second.walks == 1


def test_audit_history_is_reported_against_keep_days(tmp_path: Path) -> None:
    """How far back the log reaches (raw segments, then compacted Parquet) is measured
    against keep_days and reported, never deleted."""
    from autoheal_otel.analytics.compaction import compact

    start = datetime(2026, 1, 10, tzinfo=UTC)
    clock = FakeClock(start=start)
    with AutoHealManager(data_dir=tmp_path, clock=clock) as manager:
        manager.should_execute_step("wf", "s")
    retention = PolicyConfig().retention
    raw = measure(tmp_path, retention, start + timedelta(days=30)).to_dict()
    assert raw["audit_oldest"] == "2026-01-10T00:00:00+00:00"
    assert raw["audit_past_keep_days"] is False and raw["audit_keep_days"] == 90
    compact(tmp_path)
    later = measure(tmp_path, retention, start + timedelta(days=100))
    assert later.parts["audit_compacted"] > 0
    figures = later.to_dict()
    assert figures["audit_oldest"].startswith("2026-01-10")
    assert figures["audit_past_keep_days"] is True
    assert not later.problems()  # reported, not a budget problem
