"""The Grafana dashboards, defined with grafanalib (generate the JSON with ``generate.py``).

Metric and label names come from ``autoheal_otel.semconv``: the same module the library
uses to emit them. Datasource uids are the ones the compose stack provisions.
"""

from __future__ import annotations

from grafanalib.core import (
    Dashboard,
    GridPos,
    Stat,
    Template,
    Templating,
    Threshold,
    Time,
    TimeSeries,
)
from grafanalib.core import Target as _Target

from autoheal_otel import semconv as sc

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
TEMPO_UID = "tempo"
P, L = sc.prometheus_name, sc.prometheus_label
WF, STATE, TRIGGER = L(sc.ATTR_WORKFLOW_ID), L(sc.ATTR_STATE), L(sc.ATTR_TRIGGER)

WORKFLOWS = P(sc.METRIC_WORKFLOWS)
WORKFLOW_STATE = P(sc.METRIC_WORKFLOW_STATE)
DECISIONS = P(sc.METRIC_DECISIONS, "counter")
OUTCOMES = P(sc.METRIC_OUTCOMES, "counter")
TRANSITIONS = P(sc.METRIC_TRANSITIONS, "counter")
HOOK = P(sc.METRIC_HOOK_DURATION, unit="s")
STATE_DURATION = P(sc.METRIC_STATE_DURATION, unit="s")
OPERATION = P(sc.METRIC_OPERATION_DURATION, unit="s")
FILL = P(sc.METRIC_WINDOW_FILL)
COUNT = P(sc.METRIC_WINDOW_COUNT)
THRESHOLD = P(sc.METRIC_WINDOW_THRESHOLD)
SINK_ERRORS = P(sc.METRIC_SINK_ERRORS, "counter")
PAUSED = P(sc.METRIC_GLOBAL_PAUSED)
PRECISION = P(sc.METRIC_MATCH_PRECISION)
MATCH_THRESHOLD = P(sc.METRIC_MATCH_THRESHOLD)
FLEET_CONNECTED = P(sc.METRIC_FLEET_CONNECTED)
FLEET_PROPAGATION = P(sc.METRIC_FLEET_PROPAGATION, unit="s")
FLEET_DROPPED = P(sc.METRIC_FLEET_DROPPED, "counter")
HOST = L(sc.ATTR_FLEET_HOST)
DISK_USAGE = P(sc.METRIC_DISK_USAGE, unit="By")
DISK_BUDGET = P(sc.METRIC_DISK_BUDGET, unit="By")
DISK_FREE = P(sc.METRIC_DISK_FREE, unit="By")
DISK_FREE_FLOOR = P(sc.METRIC_DISK_FREE_FLOOR, unit="By")
PART = L(sc.ATTR_DISK_PART)


def target(expr: str, legend: str = "", ref: str = "A") -> _Target:
    """A Prometheus query of a panel."""
    return _Target(expr=expr, legendFormat=legend, refId=ref, datasource=PROMETHEUS)


def traces_link(workflow: str) -> dict[str, object]:
    """A link from a panel to the workflow's hook spans in the trace store (Grafana's link model)."""
    query = f'{{ span.{sc.ATTR_WORKFLOW_ID} = \\"{workflow}\\" }}'
    url = (
        '/explore?left={"datasource":"' + TEMPO_UID + '","queries":[{"refId":"A",'
        '"queryType":"traceql","query":"' + query + '"}]}'
    )
    return {
        "title": "Traces of this workflow",
        "type": "link",
        "url": url,
        "tooltip": "Open in the trace store",
        "icon": "external link",
        "asDropdown": False,
        "includeVars": True,
        "keepTime": True,
        "tags": [],
        "targetBlank": True,
    }


def series(
    title: str,
    targets: list[_Target],
    pos: tuple[int, int, int, int],
    unit: str = "",
    stacked: bool = False,
    links: list[dict[str, object]] | None = None,
    description: str = "",
) -> TimeSeries:
    """A time-series panel at (x, y, w, h)."""
    x, y, w, h = pos
    return TimeSeries(
        title=title,
        description=description,
        dataSource=PROMETHEUS,
        targets=targets,
        gridPos=GridPos(h=h, w=w, x=x, y=y),
        unit=unit,
        maxDataPoints=None,
        stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none"},
        links=links or [],
    )


def overview() -> Dashboard:
    """Every workflow at a glance: states, decisions, failures, stops, latency, windows."""
    rate = "[$__rate_interval]"
    panels = [
        series(
            "Workflows per state",
            [target(f"sum by ({STATE}) ({WORKFLOWS})", f"{{{{{STATE}}}}}")],
            (0, 0, 12, 8),
            stacked=True,
            description="How many workflows are in each state.",
        ),
        Stat(
            title="Global breaker",
            dataSource=PROMETHEUS,
            targets=[target(f"max({PAUSED})")],
            maxDataPoints=None,
            gridPos=GridPos(h=8, w=4, x=12, y=0),
            reduceCalc="lastNotNull",
            thresholds=[Threshold("green", 0, 0.0), Threshold("red", 1, 1.0)],
            mappings=[
                {"type": "value", "options": {"0": {"text": "running"}, "1": {"text": "PAUSED"}}}
            ],
        ),
        series(
            "Decision rate",
            [
                target(
                    f"sum by ({L(sc.ATTR_KIND)}) (rate({DECISIONS}{rate}))",
                    f"{{{{{L(sc.ATTR_KIND)}}}}}",
                )
            ],
            (16, 0, 8, 8),
            unit="ops",
        ),
        series(
            "Failures by trigger",
            [
                target(
                    f'sum by ({TRIGGER}) (rate({OUTCOMES}{{{L(sc.ATTR_OUTCOME)}!="success"}}{rate}))',
                    f"{{{{{TRIGGER}}}}}",
                )
            ],
            (0, 8, 12, 8),
            unit="ops",
        ),
        series(
            "Quarantines and rollbacks",
            [
                target(
                    f'sum by ({WF}) (increase({TRANSITIONS}{{{STATE}="quarantined"}}{rate}))',
                    f"quarantine {{{{{WF}}}}}",
                    "A",
                ),
                target(
                    f'sum by ({WF}) (increase({TRANSITIONS}{{{STATE}="rollback"}}{rate}))',
                    f"rollback {{{{{WF}}}}}",
                    "B",
                ),
            ],
            (12, 8, 12, 8),
            links=[traces_link("${__field.labels." + WF + "}")],
        ),
        series(
            "Hook latency p50 / p99",
            [
                target(
                    f"histogram_quantile(0.5, sum by (le, {L(sc.ATTR_HOOK)}) (rate({HOOK}_bucket{rate})))",
                    f"p50 {{{{{L(sc.ATTR_HOOK)}}}}}",
                    "A",
                ),
                target(
                    f"histogram_quantile(0.99, sum by (le, {L(sc.ATTR_HOOK)}) (rate({HOOK}_bucket{rate})))",
                    f"p99 {{{{{L(sc.ATTR_HOOK)}}}}}",
                    "B",
                ),
            ],
            (0, 16, 12, 8),
            unit="s",
        ),
        series(
            "Window fill against thresholds (1 = trips)",
            [
                target(
                    f"max by ({WF}, {L(sc.ATTR_RULE)}) ({FILL})",
                    f"{{{{{WF}}}}} {{{{{L(sc.ATTR_RULE)}}}}}",
                )
            ],
            (12, 16, 12, 8),
            unit="percentunit",
        ),
        series(
            "Audit and sink write errors",
            [
                target(
                    f"sum by ({L(sc.ATTR_SINK)}) (rate({SINK_ERRORS}{rate}))",
                    f"{{{{{L(sc.ATTR_SINK)}}}}}",
                )
            ],
            (0, 24, 8, 8),
            unit="ops",
        ),
        series(
            "Time spent in a state before leaving it (p90)",
            [
                target(
                    f"histogram_quantile(0.9, sum by (le, {STATE}) (rate({STATE_DURATION}_bucket{rate})))",
                    f"{{{{{STATE}}}}}",
                )
            ],
            (8, 24, 8, 8),
            unit="s",
        ),
        series(
            "Auto-heal operations p99 (snapshot, rollback, restart)",
            [
                target(
                    f"histogram_quantile(0.99, sum by (le, {L(sc.ATTR_OPERATION)}) (rate({OPERATION}_bucket{rate})))",
                    f"{{{{{L(sc.ATTR_OPERATION)}}}}}",
                )
            ],
            (16, 24, 8, 8),
            unit="s",
        ),
        series(
            "Match precision per method",
            [target(f"max by ({L(sc.ATTR_METHOD)}) ({PRECISION})", f"{{{{{L(sc.ATTR_METHOD)}}}}}")],
            (0, 32, 12, 6),
            unit="percentunit",
        ),
        series(
            "Calibrated threshold per method",
            [
                target(
                    f"max by ({L(sc.ATTR_METHOD)}) ({MATCH_THRESHOLD})",
                    f"{{{{{L(sc.ATTR_METHOD)}}}}}",
                )
            ],
            (12, 32, 12, 6),
        ),
        *fleet_row(rate, 38),
        *disk_row(46),
    ]
    return Dashboard(
        title="autoheal — overview",
        uid="autoheal-overview",
        tags=["autoheal"],
        panels=panels,
        time=Time("now-1h", "now"),
        refresh="10s",
        timezone="utc",
    ).auto_panel_ids()


def fleet_row(rate: str, y: int) -> list[TimeSeries]:
    """The fleet row: which hosts' links are up, how fast decisions spread, what was dropped."""
    return [
        series(
            "Fleet link up, per host",
            [target(f"max by ({HOST}) ({FLEET_CONNECTED})", f"{{{{{HOST}}}}}")],
            (0, y, 8, 8),
            description="1 while the host's link to the fleet's Redis is up; 0: local breakers.",
        ),
        series(
            "Fleet propagation p50 / p99",
            [
                target(
                    f"histogram_quantile(0.5, sum by (le) (rate({FLEET_PROPAGATION}_bucket{rate})))",
                    "p50",
                    "A",
                ),
                target(
                    f"histogram_quantile(0.99, sum by (le) (rate({FLEET_PROPAGATION}_bucket{rate})))",
                    "p99",
                    "B",
                ),
            ],
            (8, y, 8, 8),
            unit="s",
            description="From a fleet decision in Redis to a host applying it.",
        ),
        series(
            "Fleet results dropped (full queue)",
            [target(f"sum by ({HOST}) (rate({FLEET_DROPPED}{rate}))", f"{{{{{HOST}}}}}")],
            (16, y, 8, 8),
            unit="ops",
        ),
    ]


def disk_row(y: int) -> list[TimeSeries]:
    """The disk row: the data directory by part against its budget, and free space."""
    return [
        series(
            "Data directory by part, against the budget",
            [
                target(f"sum by ({PART}) ({DISK_USAGE})", f"{{{{{PART}}}}}", "A"),
                target(f"max({DISK_BUDGET})", "budget (retention.max_bytes)", "B"),
            ],
            (0, y, 12, 8),
            unit="bytes",
            stacked=False,
            description="Bytes per part (audit log raw and compacted, success store, failure"
            " cases, reports, artifact versions, other) and the budget; the disk alert fires"
            " at 80 % of it.",
        ),
        series(
            "Free space on the device, against the floor",
            [
                target(f"min({DISK_FREE})", "free", "A"),
                target(f"max({DISK_FREE_FLOOR})", "floor (retention.keep_free_bytes)", "B"),
            ],
            (12, y, 12, 8),
            unit="bytes",
            description="Free bytes on the data directory's device; below the floor /health"
            " is degraded.",
        ),
    ]


def workflow() -> Dashboard:
    """One workflow in detail (templated by workflow), with links to its traces."""
    rate = "[$__rate_interval]"
    sel = f'{WF}=~"$workflow"'
    link = [traces_link("$workflow")]
    panels = [
        series(
            "State",
            [target(f"max by ({STATE}) ({WORKFLOW_STATE}{{{sel}}})", f"{{{{{STATE}}}}}")],
            (0, 0, 24, 6),
            links=link,
        ),
        series(
            "Outcomes",
            [
                target(
                    f"sum by ({L(sc.ATTR_OUTCOME)}, {TRIGGER}) (rate({OUTCOMES}{{{sel}}}{rate}))",
                    f"{{{{{L(sc.ATTR_OUTCOME)}}}}} {{{{{TRIGGER}}}}}",
                )
            ],
            (0, 6, 12, 8),
            unit="ops",
            links=link,
        ),
        series(
            "Failure window against its threshold",
            [
                target(
                    f'max({COUNT}{{{sel}, {L(sc.ATTR_SCOPE)}="workflow"}})',
                    "failures in window",
                    "A",
                ),
                target(
                    f'max({THRESHOLD}{{{sel}, {L(sc.ATTR_SCOPE)}="workflow"}})', "threshold", "B"
                ),
            ],
            (12, 6, 12, 8),
        ),
        series(
            "Transitions",
            [
                target(
                    f"sum by ({L(sc.ATTR_PREVIOUS_STATE)}, {STATE}, {L(sc.ATTR_CAUSE)}) (increase({TRANSITIONS}{{{sel}}}{rate}))",
                    f"{{{{{L(sc.ATTR_PREVIOUS_STATE)}}}}} -> {{{{{STATE}}}}} ({{{{{L(sc.ATTR_CAUSE)}}}}})",
                )
            ],
            (0, 14, 12, 8),
            links=link,
        ),
        series(
            "Decisions",
            [
                target(
                    f"sum by ({L(sc.ATTR_KIND)}) (rate({DECISIONS}{{{sel}}}{rate}))",
                    f"{{{{{L(sc.ATTR_KIND)}}}}}",
                )
            ],
            (12, 14, 12, 8),
            unit="ops",
            links=link,
        ),
    ]
    variable = Template(
        name="workflow",
        label="Workflow",
        query=f"label_values({WORKFLOW_STATE}, {WF})",
        dataSource=PROMETHEUS,
        includeAll=True,
        multi=True,
        default="$__all",
        refresh=2,
    )
    return Dashboard(
        title="autoheal — workflow",
        uid="autoheal-workflow",
        tags=["autoheal"],
        panels=panels,
        templating=Templating(list=[variable]),
        time=Time("now-1h", "now"),
        refresh="10s",
        timezone="utc",
    ).auto_panel_ids()


DASHBOARDS = {"overview": overview, "workflow": workflow}
