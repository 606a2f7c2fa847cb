"""Calibrated per-method thresholds: recorded on change, restored at restart, replayed, in SQL."""

from __future__ import annotations

import json
import random
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, PolicyError, StepResult
from autoheal_otel import semconv as sc
from autoheal_otel.analytics import AuditAnalytics
from autoheal_otel.analytics.compaction import compact
from autoheal_otel.analytics.replay import replay
from autoheal_otel.core._calibrator import threshold_of
from autoheal_otel.integrations import PrecisionTracker
from autoheal_otel.server import AutoHealServer
from autoheal_otel.testing import FakeClock, InMemorySink

ROOT = Path(__file__).resolve().parent.parent
Match = tuple[str | None, float, Outcome, bool]


def matches(seed: int, n: int) -> list[Match]:
    """Return ``n`` results: wrong matches likelier at low confidence, two methods and a default."""
    rng = random.Random(seed)
    out: list[Match] = []
    for _ in range(n):
        confidence = round(rng.uniform(0.6, 1.0), 2)
        correct = rng.random() < (confidence - 0.5) * 2
        outcome = Outcome.SUCCESS if correct else Outcome.POSTCONDITION_FAILED
        out.append((rng.choice(["template", None, "faiss"]), confidence, outcome, correct))
    return out


def feed(manager: AutoHealManager, clock: FakeClock, results: list[Match]) -> None:
    """Report each result as one step of workflow ``w`` (a second apart)."""
    for method, confidence, outcome, validated in results:
        details = {"method": method} if method is not None else {}
        manager.on_step_result(
            "w",
            "s",
            StepResult(
                outcome=outcome, confidence=confidence, validated=validated, details=details
            ),
        )
        clock.advance(1.0)


def changes(events: list[Any]) -> list[dict[str, Any]]:
    """Return the details of every calibration change among ``events``."""
    return [
        dict(e.details)
        for e in events
        if e.kind is sc.EventKind.CALIBRATION and e.reason == sc.Reason.CALIBRATION_CHANGED
    ]


def brute_threshold(window: list[tuple[float, bool]], target: float) -> float:
    """The lowest seen confidence whose matches at or above reach the target (1.0 if none)."""
    for level in sorted({c for c, _ in window}):
        above = [ok for c, ok in window if c >= level]
        if sum(above) / len(above) >= target:
            return level
    return 1.0


def test_threshold_of_equals_brute_force() -> None:
    """The incremental scan picks the same level as checking every level from scratch."""
    rng = random.Random(3)
    for _ in range(200):
        window = [
            (round(rng.uniform(0.5, 1), 1), rng.random() < 0.7) for _ in range(rng.randint(1, 30))
        ]
        target = rng.choice([0.5, 0.7, 0.9, 1.0])
        correct = sum(ok for _, ok in window)
        assert threshold_of(sorted(window), correct, target) == brute_threshold(window, target)


def test_a_record_is_written_only_when_the_value_changes() -> None:
    """Each calibration record moves its method's threshold; none repeats the value in force."""
    clock = FakeClock()
    sink = InMemorySink()
    tracker = PrecisionTracker(target_precision=0.9, min_samples=10, window=40)
    manager = AutoHealManager(clock=clock, sinks=[sink], integrations=[tracker])
    results = matches(1, 300)
    feed(manager, clock, results)
    records = changes(sink.events)
    # The expected records, from brute force after every decided match.
    windows: dict[str, list[tuple[float, bool]]] = {}
    expected = []
    current: dict[str, float] = {}
    for method, confidence, _, correct in results:
        name = method or "faiss"
        window = windows.setdefault(name, [])
        window.append((confidence, correct))
        del window[:-40]
        if len(window) >= 10:
            value = brute_threshold(window, 0.9)
            if value != current.get(name):
                expected.append((name, current.get(name), value))
                current[name] = value
    assert [(r["method"], r["previous"], r["threshold"]) for r in records] == expected
    assert len(records) > 3 and all(r["previous"] != r["threshold"] for r in records)
    assert all(r["target_precision"] == 0.9 and r["samples"] >= 10 for r in records)
    assert tracker.thresholds() == current
    assert (tracker.target_precision, tracker.min_samples, tracker.window) == (0.9, 10, 40)
    manager.close()


def test_restart_mid_run_keeps_the_threshold(tmp_path: Path) -> None:
    """The threshold after a restart equals the one before, and the run goes on as if unbroken."""
    results = matches(2, 400)
    clock = FakeClock()
    first = AutoHealManager(data_dir=tmp_path, clock=clock, integrations=[PrecisionTracker()])
    policy = PolicyConfig(calibration={"min_samples": 20, "window": 100})
    first.update_policy(policy)
    feed(first, clock, results[:250])
    before = first.get_calibration()
    settings_before = first.get_effective_settings("w").method_thresholds
    first.close()
    clock.advance(3600.0)
    sink = InMemorySink()
    second = AutoHealManager(
        policy=policy,
        data_dir=tmp_path,
        clock=clock,
        sinks=[sink],
        integrations=[PrecisionTracker()],
    )
    assert second.get_calibration() == before
    assert second.get_effective_settings("w").method_thresholds == settings_before
    assert settings_before and changes(sink.events) == []  # nothing moved: nothing recorded
    feed(second, clock, results[250:])
    # The same results through one manager that never restarted.
    unbroken_clock = FakeClock()
    unbroken_sink = InMemorySink()
    unbroken = AutoHealManager(
        policy=policy,
        clock=unbroken_clock,
        sinks=[unbroken_sink],
        integrations=[PrecisionTracker()],
    )
    feed(unbroken, unbroken_clock, results[:250])
    done = len(changes(unbroken_sink.events))
    feed(unbroken, unbroken_clock, results[250:])
    after_restart = changes(sink.events)
    assert after_restart and after_restart == changes(unbroken_sink.events)[done:]
    assert second.get_effective_settings("w").method_thresholds == (
        unbroken.get_effective_settings("w").method_thresholds
    )
    second.close()
    unbroken.close()


def test_restart_reads_the_calibration_back_from_compacted_parquet(tmp_path: Path) -> None:
    """After compaction the restart restores the same calibration from the Parquet files."""
    clock = FakeClock()
    first = AutoHealManager(
        data_dir=tmp_path, clock=clock, integrations=[PrecisionTracker(min_samples=20)]
    )
    feed(first, clock, matches(3, 200))
    before = first.get_calibration()
    first.close()
    report = compact(tmp_path)
    assert report.compacted and not list((tmp_path / "audit").glob("*.jsonl"))
    second = AutoHealManager(
        data_dir=tmp_path, clock=clock, integrations=[PrecisionTracker(min_samples=20)]
    )
    assert second.get_calibration() == before and before["faiss"].threshold is not None
    second.close()


def test_replay_reproduces_every_calibration_record_and_the_settings(tmp_path: Path) -> None:
    """Replay over a log with a restart and a policy change repeats each record and the settings."""
    clock = FakeClock()
    live = AutoHealManager(
        data_dir=tmp_path, clock=clock, integrations=[PrecisionTracker(min_samples=15)]
    )
    results = matches(4, 500)
    feed(live, clock, results[:200])
    live.update_policy(PolicyConfig(calibration={"target_precision": 0.8, "window": 120}))
    feed(live, clock, results[200:300])
    live.close()
    clock.advance(60.0)
    live = AutoHealManager(
        policy=PolicyConfig(calibration={"target_precision": 0.8, "window": 120}),
        data_dir=tmp_path,
        clock=clock,
        integrations=[PrecisionTracker(min_samples=15)],
    )
    feed(live, clock, results[300:])
    settings_live = live.get_effective_settings("w")
    live.close()
    with AuditAnalytics(tmp_path) as db:
        recorded = db.sql(
            "SELECT details FROM audit_events WHERE reason = 'calibration.changed' ORDER BY ts, seq"
        )
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert len(report.replayed_calibrations) == len(recorded) > 5
    assert report.replayed_calibrations == [
        (d["method"], d["previous"], d["threshold"])
        for d in (json.loads(r["details"]) for r in recorded)
    ]
    assert report.settings["w"] == settings_live


def test_replay_mirrors_restarts_with_a_larger_tracker_window_and_without_a_tracker(
    tmp_path: Path,
) -> None:
    """A restart keeps the policy's window and drops the last process's overrides; replay agrees."""
    policy = PolicyConfig(calibration={"window": 30, "min_samples": 10})
    clock = FakeClock()
    results = matches(10, 400)
    for restored, batch in [(0, results[:200]), (30, results[200:300])]:
        live = AutoHealManager(
            policy=policy,
            data_dir=tmp_path,
            clock=clock,
            integrations=[PrecisionTracker(window=100)],
        )
        faiss = live.get_calibration().get("faiss")
        assert (faiss.samples if faiss else 0) == restored  # the policy's window, not 100
        feed(live, clock, batch)
        assert live.get_calibration()["faiss"].window == 100
        live.close()
        clock.advance(60.0)
    sink = InMemorySink()
    plain = AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock, sinks=[sink])
    feed(plain, clock, results[300:])
    assert plain.get_effective_settings("w").method_thresholds == {}  # calibration off here
    assert changes(sink.events) == []
    plain.close()
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.replayed_calibrations == report.recorded_calibrations != []
    assert report.method_thresholds == {}


@pytest.mark.parametrize("smaller", ["override", "older-policy"])
def test_replay_refills_the_windows_a_restart_reads_back_larger(
    tmp_path: Path, smaller: str
) -> None:
    """The last process kept a smaller window than the restarted one reads back from the log.

    An override (``configure_calibration(window=...)``) or an older policy's window held fewer
    matches than the new process's policy window, which a warm restart fills from the log:
    replay refills its windows from the log at the restart too, so the thresholds recorded
    after it are reproduced.
    """
    on = {"enabled": True, "min_samples": 2, "target_precision": 0.9}
    policy = PolicyConfig(calibration={**on, "window": 10})
    clock = FakeClock()
    first = policy if smaller == "override" else PolicyConfig(calibration={**on, "window": 2})
    live = AutoHealManager(policy=first, data_dir=tmp_path, clock=clock)
    ok, wrong = Outcome.SUCCESS, Outcome.POSTCONDITION_FAILED
    before = [(0.95, ok), (0.9, ok), (0.5, wrong), (0.85, ok), (0.6, wrong), (0.8, ok)]
    feed(live, clock, [(None, c, o, o is ok) for c, o in before])
    if smaller == "override":
        live.configure_calibration(window=2)
    assert live.get_calibration()["faiss"].samples == 2
    live.close()
    live = AutoHealManager(policy=policy, data_dir=tmp_path, clock=clock)
    assert live.get_calibration()["faiss"].samples == 6  # read back from the log
    feed(live, clock, [(None, 0.85, wrong, False), (None, 0.99, ok, True)])
    live.close()
    report = replay(tmp_path)
    assert report.matches, report.mismatches
    assert report.replayed_calibrations == report.recorded_calibrations
    assert report.recorded_calibrations[-1][0] == "faiss"


def test_what_if_varies_target_precision_and_min_samples(tmp_path: Path) -> None:
    """A what-if policy's target and minimum sample count change the thresholds it reports."""
    clock = FakeClock()
    live = AutoHealManager(data_dir=tmp_path, clock=clock, integrations=[PrecisionTracker()])
    feed(live, clock, matches(5, 300))
    thresholds = live.get_effective_settings("w").method_thresholds
    live.close()
    recorded = replay(tmp_path)
    assert recorded.method_thresholds == thresholds
    lenient = replay(tmp_path, policy=PolicyConfig(calibration={"target_precision": 0.5}))
    assert lenient.what_if and lenient.replayed_calibrations
    assert all(lenient.method_thresholds[m] <= t for m, t in recorded.method_thresholds.items())
    assert lenient.method_thresholds != recorded.method_thresholds
    patient = replay(tmp_path, policy=PolicyConfig(calibration={"min_samples": 10_000}))
    assert patient.method_thresholds == {} and patient.replayed_calibrations == []


# -- the same calibration in memory and in SQL ---------------------------------------------

decisions = st.lists(
    st.tuples(
        st.sampled_from(["faiss", "template", None]),
        st.sampled_from([0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]),
        st.sampled_from(
            [
                (Outcome.SUCCESS, True),
                (Outcome.SUCCESS, False),
                (Outcome.POSTCONDITION_FAILED, False),
                (Outcome.TARGET_NOT_FOUND, False),
            ]
        ),
    ),
    max_size=80,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    decisions,
    st.sampled_from([0.5, 0.8, 0.9, 1.0]),
    st.integers(1, 12),
    st.integers(1, 30),
)
def test_in_memory_calibration_equals_the_sql(
    steps: list[tuple[str | None, float, tuple[Outcome, bool]]],
    target: float,
    min_samples: int,
    window: int,
) -> None:
    """The live calibration equals the packaged ``precision`` query over the same log."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock()
        policy = PolicyConfig(
            calibration={
                "enabled": True,
                "target_precision": target,
                "min_samples": min_samples,
                "window": window,
            }
        )
        manager = AutoHealManager(policy=policy, data_dir=tmp, clock=clock)
        feed(manager, clock, [(m, c, o, v) for m, c, (o, v) in steps])
        live = manager.get_calibration()
        manager.close()
        with AuditAnalytics(tmp) as db:
            rows = db.query(
                "precision",
                as_of=clock.now(),
                target_precision=target,
                min_samples=min_samples,
                window=window,
            )
    sql = {r["method"]: r for r in rows}
    assert set(sql) == set(live)
    for method, cal in live.items():
        row = sql[method]
        assert (row["samples"], row["correct"]) == (cal.samples, cal.correct)
        assert row["precision"] == cal.precision
        assert row["threshold"] == cal.threshold == row["recorded_threshold"]


# -- the policy, the telemetry, the status ---------------------------------------------------


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"target_precision": 1.5}, "calibration.target_precision"),
        ({"target_precision": 0}, "calibration.target_precision"),
        ({"min_samples": 0}, "calibration.min_samples"),
        ({"window": 10**6}, "calibration.window"),
        ({"window": "200"}, "calibration.window"),
        ({"windows": 200}, "calibration.windows"),
    ],
    ids=["target-above-1", "target-zero", "no-samples", "huge-window", "text-window", "typo"],
)
def test_policy_section_is_validated_naming_the_field(section: dict[str, Any], field: str) -> None:
    """A bad calibration setting is a PolicyError that names its field."""
    with pytest.raises(PolicyError) as info:
        PolicyConfig.from_dict({"calibration": section})
    assert info.value.field == field


def test_tracker_overrides_are_checked_against_the_policy_bounds() -> None:
    """A tracker whose override is out of bounds cannot turn calibration on."""
    manager = AutoHealManager(clock=FakeClock())
    with pytest.raises(PolicyError) as info:
        manager.add_integration(PrecisionTracker(min_samples=0))
    assert info.value.field == "calibration.min_samples"
    with pytest.raises(PolicyError) as info:
        manager.configure_calibration(enabled=False)
    assert info.value.field == "calibration.enabled"
    assert manager.get_effective_settings("w").method_thresholds == {}
    manager.close()


def test_policy_alone_turns_calibration_on() -> None:
    """With ``calibration.enabled`` in the policy, no tracker is needed for the settings."""
    clock = FakeClock()
    policy = PolicyConfig(calibration={"enabled": True, "min_samples": 10, "target_precision": 0.9})
    manager = AutoHealManager(policy=policy, clock=clock)
    feed(manager, clock, matches(6, 100))
    thresholds = manager.get_effective_settings("w").method_thresholds
    assert set(thresholds) == {"faiss", "template"}
    assert all(t >= 0.75 for t in thresholds.values())  # never below the state's own threshold
    manager.close()


def test_calibration_change_is_an_otel_log_event() -> None:
    """Each change is a log record naming the method, the old and new value and the evidence."""
    logs = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    clock = FakeClock()
    sink = InMemorySink()
    manager = AutoHealManager(
        clock=clock,
        logger_provider=provider,
        sinks=[sink],
        integrations=[PrecisionTracker(min_samples=10)],
    )
    feed(manager, clock, matches(7, 150))
    manager.close()
    logged = [
        r.log_record
        for r in logs.get_finished_logs()
        if r.log_record.event_name == sc.EVENT_CALIBRATION
    ]
    reasons = [(r.attributes or {})[sc.ATTR_REASON] for r in logged]
    assert reasons[0] == sc.Reason.CALIBRATION_CONFIGURED  # the tracker turned it on
    records = [r for r in logged if (r.attributes or {})[sc.ATTR_REASON] == "calibration.changed"]
    expected = changes(sink.events)
    assert len(records) == len(expected) == len(logged) - 1 > 0
    first = records[0].attributes or {}
    assert first[sc.ATTR_METHOD] == expected[0]["method"]
    assert first[sc.ATTR_CALIBRATION_THRESHOLD] == expected[0]["threshold"]
    assert sc.ATTR_CALIBRATION_PREVIOUS not in first  # the first value had none before it
    assert first[sc.ATTR_CALIBRATION_SAMPLES] == 10
    assert first[sc.ATTR_CALIBRATION_TARGET] == 0.95
    provider.shutdown()


def test_status_report_and_endpoint_show_the_calibration() -> None:
    """``get_status_report()`` and ``/status`` give each method's threshold with its evidence."""
    clock = FakeClock()
    manager = AutoHealManager(clock=clock, integrations=[PrecisionTracker(min_samples=10)])
    feed(manager, clock, matches(8, 120))
    report = manager.get_status_report()
    faiss = report.calibration["faiss"]
    assert faiss.applied and faiss.threshold == manager.get_calibration()["faiss"].threshold
    assert faiss.samples == manager.get_calibration()["faiss"].samples > 10
    assert faiss.since is not None and faiss.target_precision == 0.95
    assert report.workflows["w"].settings.method_thresholds["faiss"] == max(0.75, faiss.threshold)
    with AutoHealServer(manager, port=0).start() as server:
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/status", timeout=10) as response:
            body = json.loads(response.read())
    assert body["calibration"]["faiss"]["threshold"] == faiss.threshold
    assert body["calibration"]["template"]["samples"] == report.calibration["template"].samples
    manager.close()


def test_threshold_gauge_equals_the_precision_query(tmp_path: Path) -> None:
    """The overview's calibrated-threshold panel reads a gauge equal to the SQL on the same log."""
    overview = json.loads((ROOT / "dashboards" / "overview.json").read_text())
    exprs = [t["expr"] for p in overview["panels"] for t in p.get("targets", [])]
    gauge = sc.prometheus_name(sc.METRIC_MATCH_THRESHOLD)
    assert any(gauge in e for e in exprs) and any(
        sc.prometheus_name(sc.METRIC_MATCH_PRECISION) in e for e in exprs
    )
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    clock = FakeClock()
    manager = AutoHealManager(
        data_dir=tmp_path,
        clock=clock,
        meter_provider=meter_provider,
        integrations=[PrecisionTracker(min_samples=25, target_precision=0.9)],
    )
    feed(manager, clock, matches(9, 400))
    manager.flush()
    points: dict[str, dict[str, float]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name not in (sc.METRIC_MATCH_THRESHOLD, sc.METRIC_MATCH_PRECISION):
                    continue
                for p in metric.data.data_points:
                    points.setdefault(metric.name, {})[str(p.attributes[sc.ATTR_METHOD])] = p.value
    with AuditAnalytics(tmp_path) as db:
        rows = db.query(
            "precision", as_of=clock.now(), target_precision=0.9, min_samples=25, window=2000
        )
    assert points[sc.METRIC_MATCH_THRESHOLD] == {r["method"]: r["threshold"] for r in rows}
    assert points[sc.METRIC_MATCH_PRECISION] == {r["method"]: r["precision"] for r in rows}
    manager.close()
    meter_provider.shutdown()


# -- the window's bookkeeping -----------------------------------------------------------------


_MATCHES = st.lists(
    st.tuples(
        st.sampled_from(["faiss", "template"]),
        st.sampled_from([0.5, 0.7, 0.8, 0.9, 1.0]),
        st.booleans(),
    ),
    max_size=12,
)
#: A change of settings: a policy (enabled, window, min_samples) or a restart (None).
_CHANGE = st.one_of(st.none(), st.tuples(st.booleans(), st.integers(1, 5), st.integers(1, 3)))


@settings(max_examples=200, deadline=None)
@given(_MATCHES, st.lists(st.tuples(_CHANGE, _MATCHES), max_size=6))
def test_the_calibrator_equals_a_window_recomputed_from_scratch(
    first: list[tuple[str, float, bool]],
    phases: list[tuple[tuple[bool, int, int] | None, list[tuple[str, float, bool]]]],
) -> None:
    """Matches added while off, on, across resizes and restarts: every figure is the window's.

    The calibrator keeps its sorted copy and its count only while calibration is on; the model
    keeps nothing but the last ``window`` matches and recomputes everything on each check. A
    restart refills each window from every match so far, as a warm restart reads the log.
    """
    from collections import deque

    from autoheal_otel.core._calibrator import Calibrator
    from autoheal_otel.policy._calibration import CalibrationPolicy

    base = CalibrationPolicy()
    cal = Calibrator(base)
    model: dict[str, deque[tuple[float, bool]]] = {}
    log: dict[str, list[tuple[float, bool]]] = {}  # every match added, oldest first

    def check() -> None:
        for method, window in model.items():
            pairs = list(window)
            evidence = cal.evidence(method)
            assert (evidence.samples, evidence.correct) == (len(pairs), sum(k for _, k in pairs))
            want = None
            if base.enabled and len(pairs) >= base.min_samples:
                want = brute_threshold(pairs, base.target_precision)
            assert cal.compute(method) == want

    for change, matches in [(None, first), *phases]:
        if change is not None:
            enabled, window, min_samples = change
            base = CalibrationPolicy(
                enabled=enabled, window=window, min_samples=min_samples, target_precision=0.8
            )
            cal.retune(base)
            model = {m: deque(w, maxlen=base.window) for m, w in model.items()}
        elif matches is not first:  # a restart reads each window back from the whole log
            cal.restart(base, [(m, c, k) for m, pairs in log.items() for c, k in pairs])
            model = {m: deque(pairs, maxlen=base.window) for m, pairs in log.items()}
        check()
        for method, confidence, ok in matches:
            assert cal.add(method, confidence, ok) is base.enabled
            model.setdefault(method, deque(maxlen=base.window)).append((confidence, ok))
            log.setdefault(method, []).append((confidence, ok))
            check()


@pytest.mark.parametrize("outcome", list(Outcome))
@pytest.mark.parametrize("validated", [True, False])
@pytest.mark.parametrize("confidence", [None, 0.95])
def test_what_feeds_the_window_is_decided(
    outcome: Outcome, validated: bool, confidence: float | None
) -> None:
    """The machine's inline test of a decided match equals :func:`decided`, case by case."""
    from autoheal_otel.core._calibrator import decided

    result = StepResult(outcome=outcome, confidence=confidence, validated=validated)
    manager = AutoHealManager(clock=FakeClock())
    manager.on_step_result("w", "s", result)
    evidence = manager.get_calibration()
    manager.close()
    ok = decided(result)
    if ok is None:
        assert evidence == {}
    else:
        assert (evidence["faiss"].samples, evidence["faiss"].correct) == (1, int(ok))
