"""A live, read-only view of a data directory: what ``autoheal serve`` reports on.

The view rebuilds the status from the audit log every ``interval`` seconds in a background
thread, with a read-only manager (the same warm restart every manager does, writing nothing),
so decisions of every process sharing the directory — and an operator's ``autoheal force`` —
show up within one interval. Invariants:

- a request never waits for a rebuild: it reads the last complete view;
- a failed rebuild keeps the last good view, is counted and logged, and shows in
  :meth:`LiveView.freshness` (the lag keeps growing, so an alert on it fires);
- ``as_of`` is the instant the view reflects and ``lag_seconds`` how old it is now, in
  ``/health``, ``/status`` and the ``autoheal.view.lag`` gauge;
- a directory with no audit log yet is no healthy one: :attr:`LiveView.has_log` says so, and
  ``/health`` answers 503 naming the directory until the log appears;
- beside a fleet host, the report's ``fleet`` is each running writer's link as its last link
  record says (the robot holds the link; the log tells whether it is up).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from .. import semconv as sc
from ..base._clock import Clock, SystemClock
from ..base._models import ExecutionState
from ..core._report import StatusReport
from ..disk._metrics import register_disk_gauges
from ..policy._config import PolicyConfig
from ..runtime._manager import AutoHealManager
from ..sinks.jsonl import AUDIT_DIR, live_writers, segment_writer

__all__ = ["LiveView"]

_log = logging.getLogger("autoheal_otel")


class LiveView:
    """Follow a data directory's audit log; rebuild its status every ``interval`` seconds.

    Args:
        data_dir: the data directory to follow (read only; nothing is written).
        policy: the thresholds to report against (default: the default policy).
        interval: seconds between rebuilds once :meth:`start` ed.
        clock: the clock ``as_of`` and the lag are read from (default: the system clock).
        meter_provider: where to publish workflows per state, the global pause and the lag.

    Raises:
        InvalidInputError: the first rebuild failed (the directory cannot be read).
    """

    def __init__(
        self,
        data_dir: str | Path,
        policy: PolicyConfig | None = None,
        interval: float = 2.0,
        clock: Clock | None = None,
        meter_provider: Any = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.policy = policy or PolicyConfig()
        self.interval = interval
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0
        #: How long the last rebuild took, in seconds.
        self.build_seconds = 0.0
        self.errors = 0
        self.last_error: str | None = None
        #: Whether the directory holds an audit log yet (``/health`` says 503 until it does).
        self.has_log = False
        self._report, self._as_of = self._build()
        if meter_provider is not None:
            self._register(meter_provider)

    def _build(self) -> tuple[StatusReport, datetime]:
        as_of = self._clock.now()
        self.has_log = has_audit_log(self.data_dir)
        with AutoHealManager(
            policy=self.policy, data_dir=self.data_dir, clock=self._clock, read_only=True
        ) as manager:
            report = manager.get_status_report()
        links = fleet_links(self.data_dir, as_of) if self.has_log else None
        if links is not None:
            glob = report.global_
            if not links["connected"] and glob.health == "ok":  # as the robot's own /health
                reason = f"fleet link down: {links['reason']}"
                glob = glob.model_copy(update={"health": "degraded", "reason": reason})
            report = report.model_copy(update={"fleet": links, "global_": glob})
        return report, as_of

    def refresh(self) -> None:
        """Rebuild the view from the log now (raises what the rebuild raised)."""
        started = self._clock.monotonic()
        report, as_of = self._build()
        with self._lock:
            self._report, self._as_of = report, as_of
            self.refreshes += 1
            self.build_seconds = self._clock.monotonic() - started

    def start(self) -> Self:
        """Rebuild in a background thread every ``interval`` seconds until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="autoheal-view", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        # A rebuild re-reads the live log: on a long one, wait at least twice as long as it
        # took, so following a log never takes more than a third of a core.
        while not self._stop.wait(max(self.interval, 2 * self.build_seconds)):  # allowed: pace
            try:
                self.refresh()
            except Exception as exc:  # contained: keep serving the last good view, and say so
                self.errors += 1
                # What failed inside (SQL, file paths) goes to the log, not to /health.
                self.last_error = f"{type(exc).__name__} (the server log has the details)"
                _log.warning("autoheal view of %s not refreshed: %s", self.data_dir, exc)

    def stop(self) -> None:
        """Stop the background rebuilds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def get_status_report(self) -> StatusReport:
        """Return the status report of the last complete rebuild."""
        with self._lock:
            return self._report

    def lag_seconds(self) -> float:
        """Return how old the view is, in seconds."""
        with self._lock:
            as_of = self._as_of
        return max(0.0, float((self._clock.now() - as_of).total_seconds()))

    def freshness(self) -> dict[str, Any]:
        """Return how fresh the view is: ``as_of``, ``lag_seconds``, the interval, errors."""
        with self._lock:
            as_of = self._as_of
        return {
            "as_of": as_of.isoformat(),
            "lag_seconds": round(max(0.0, (self._clock.now() - as_of).total_seconds()), 3),
            "refresh_interval_seconds": max(self.interval, 2 * self.build_seconds),
            "build_seconds": round(self.build_seconds, 3),
            "refresh_errors": self.errors,
            "last_refresh_error": self.last_error,
        }

    def _register(self, meter_provider: Any) -> None:
        from opentelemetry.metrics import CallbackOptions, Observation

        meter = meter_provider.get_meter(sc.INSTRUMENTATION_SCOPE)

        def lag(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(self.lag_seconds())]

        def states(_options: CallbackOptions) -> Iterable[Observation]:
            counts = self.get_status_report().global_.states
            return [Observation(counts.get(s, 0), {sc.ATTR_STATE: s.value}) for s in ExecutionState]

        def workflow_state(_options: CallbackOptions) -> Iterable[Observation]:
            report = self.get_status_report()
            return [
                Observation(1, {sc.ATTR_WORKFLOW_ID: wid, sc.ATTR_STATE: w.state.value})
                for wid, w in report.workflows.items()
            ]

        def policy(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(1, {sc.ATTR_POLICY_VERSION: self.policy.version})]

        def paused(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(1 if self.get_status_report().global_.paused else 0)]

        def window(value: Callable[[int, int], float]) -> Callable[..., Iterable[Observation]]:
            def observe(_options: CallbackOptions) -> Iterable[Observation]:
                return [
                    Observation(value(count, threshold), {sc.ATTR_WORKFLOW_ID: wid, **labels})
                    for wid, labels, count, threshold in self._windows()
                ]

            return observe

        meter.create_observable_gauge(
            sc.METRIC_VIEW_LAG, [lag], "s", "How old the status served from the log is."
        )
        meter.create_observable_gauge(
            sc.METRIC_WORKFLOWS, [states], "{workflow}", "Workflows per state."
        )
        meter.create_observable_gauge(
            sc.METRIC_WORKFLOW_STATE, [workflow_state], "1", "1 for each workflow's current state."
        )
        meter.create_observable_gauge(
            sc.METRIC_WINDOW_COUNT,
            [window(lambda count, _t: count)],
            "{failure}",
            "Failures inside a sliding window.",
        )
        meter.create_observable_gauge(
            sc.METRIC_WINDOW_THRESHOLD,
            [window(lambda _c, threshold: threshold)],
            "{failure}",
            "The threshold of a sliding window.",
        )
        meter.create_observable_gauge(
            sc.METRIC_WINDOW_FILL,
            [window(lambda count, threshold: count / threshold if threshold else 0.0)],
            "1",
            "Window count over its threshold.",
        )
        register_disk_gauges(meter, lambda: self.get_status_report().disk)
        meter.create_observable_gauge(
            sc.METRIC_POLICY_ACTIVE,
            [policy],
            "1",
            "1, labelled with the version of the policy the view reports against.",
        )
        meter.create_observable_gauge(
            sc.METRIC_GLOBAL_PAUSED,
            [paused],
            "1",
            "1 while the global breaker pauses every workflow.",
        )

    def _windows(self) -> list[tuple[str, dict[str, str], int, int]]:
        """Return (workflow, labels, count, threshold) per window, as the manager's gauges."""
        report = self.get_status_report()
        out = [
            (
                wid,
                {sc.ATTR_SCOPE: "workflow", sc.ATTR_RULE: w.window.rule},
                w.window.count,
                w.window.threshold or 0,
            )
            for wid, w in report.workflows.items()
        ]
        glob = report.global_
        out.append(
            (
                "*",
                {sc.ATTR_SCOPE: "global", sc.ATTR_RULE: glob.window.rule},
                glob.window.count,
                glob.window.threshold or 0,
            )
        )
        out.append(
            (
                "*",
                {sc.ATTR_SCOPE: "global", sc.ATTR_RULE: sc.Rule.GLOBAL_QUARANTINED_WORKFLOWS.value},
                glob.quarantined_workflows,
                glob.quarantined_workflows_threshold,
            )
        )
        return out


def has_audit_log(data_dir: Path) -> bool:
    """Return True when ``data_dir`` holds an audit log (a segment, or compacted output)."""
    audit = data_dir / AUDIT_DIR
    try:
        with os.scandir(audit) as entries:
            return any(segment_writer(e.name) or e.name == "compacted" for e in entries)
    except OSError:
        return False


def fleet_links(data_dir: Path, as_of: datetime) -> dict[str, Any] | None:
    """Return the fleet link of each running writer, as its last link record says (or None).

    What ``/health`` and ``/status`` of a ``serve`` beside a fleet host show: the robot holds
    the link, the log says whether it is up.
    """
    from ..analytics import AuditAnalytics

    live = live_writers(data_dir / AUDIT_DIR)
    with AuditAnalytics(data_dir) as db:
        rows = db.query("fleet_links", as_of=as_of)
    links = {}
    for row in rows:
        if row["writer"] not in live:
            continue
        details = row["details"]
        if isinstance(details, str):
            details = json.loads(details)
        links[row["writer"]] = {
            "connected": row["reason"] != "fleet.disconnected",
            "since": row["since"].isoformat() if row["since"] is not None else None,
            "host": (details or {}).get("fleet_host"),
            "namespace": (details or {}).get("namespace"),
            "error": (details or {}).get("error"),
        }
    if not links:
        return None
    down = [
        f"{w}: {link['error'] or 'disconnected'}"
        for w, link in links.items()
        if not link["connected"]
    ]
    return {"source": "audit log", "links": links, "connected": not down, "reason": "; ".join(down)}
