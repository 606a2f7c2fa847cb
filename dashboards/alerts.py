"""Write the Prometheus alert rules (``config/prometheus/alerts.yml``) from the semconv names.

``make generate`` runs it; a test regenerates and compares, ``promtool check rules`` checks the
file, and the Prometheus test evaluates the rules against live data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from autoheal_otel import semconv as sc

OUT = Path(__file__).resolve().parent.parent / "config" / "prometheus" / "alerts.yml"
P, L = sc.prometheus_name, sc.prometheus_label
WF, SINK, STATE = L(sc.ATTR_WORKFLOW_ID), L(sc.ATTR_SINK), L(sc.ATTR_STATE)
#: Disk alerts compare figures of one scraped process (its data directory) with each other.
BY_TARGET = "by (job, instance)"
DISK_USAGE = P(sc.METRIC_DISK_USAGE, unit="By")
DISK_BUDGET = P(sc.METRIC_DISK_BUDGET, unit="By")
DISK_FREE = P(sc.METRIC_DISK_FREE, unit="By")
DISK_FREE_FLOOR = P(sc.METRIC_DISK_FREE_FLOOR, unit="By")
#: The share of the budget, and the margin over the free-space floor, that warn.
DISK_BUDGET_WARN = 0.8
DISK_FREE_MARGIN = 1.25


def rules() -> dict[str, Any]:
    """Return the rule groups."""
    return {
        "groups": [
            {
                "name": "autoheal",
                "rules": [
                    {
                        "alert": "AutohealWorkflowQuarantined",
                        "expr": f'max by ({WF}) ({P(sc.METRIC_WORKFLOW_STATE)}{{{STATE}="quarantined"}}) == 1',
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": f"Workflow {{{{ $labels.{WF} }}}} is quarantined",
                            "description": "Its failure window tripped; it stays blocked until an operator releases it"
                            " (autoheal force) or a probe succeeds. The failure case is in"
                            " <data_dir>/failure_cases/.",
                        },
                    },
                    {
                        "alert": "AutohealRollback",
                        "expr": f'sum by ({WF}) (increase({P(sc.METRIC_TRANSITIONS, "counter")}{{{STATE}="rollback"}}[10m])) > 0',
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": f"Learned artifacts of {{{{ $labels.{WF} }}}} were rolled back",
                            "description": "The active version measurably regressed; the known-good set was restored."
                            " See `autoheal query transitions`.",
                        },
                    },
                    {
                        "alert": "AutohealGlobalPause",
                        "expr": f"max({P(sc.METRIC_GLOBAL_PAUSED)}) == 1",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "Every workflow is paused by the global breaker",
                            "description": "Failures across workflows (or quarantines) reached the global limit."
                            " Check the application, then resume (autoheal force).",
                        },
                    },
                    {
                        "alert": "AutohealAuditWriteErrors",
                        "expr": f"sum by ({SINK}) (increase({P(sc.METRIC_SINK_ERRORS, 'counter')}[5m])) > 0",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": f"Decision sink {{{{ $labels.{SINK} }}}} is failing",
                            "description": "Audit lines are kept for retry; a full or read-only disk is the usual cause.",
                        },
                    },
                    {
                        "alert": "AutohealDiskBudget",
                        "expr": f"sum {BY_TARGET} ({DISK_USAGE}) > {DISK_BUDGET_WARN} * max {BY_TARGET} ({DISK_BUDGET})",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "The data directory uses over 80 % of its disk budget",
                            "description": "retention.max_bytes is nearly reached: see `autoheal status` for the"
                            " parts. Lower the keep-days, compact the audit log (autoheal compact), or raise"
                            " the budget.",
                        },
                    },
                    {
                        "alert": "AutohealDiskFreeLow",
                        "expr": f"min {BY_TARGET} ({DISK_FREE}) < {DISK_FREE_MARGIN} * max {BY_TARGET} ({DISK_FREE_FLOOR})",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "Free space on the data directory's device is near its floor",
                            "description": "Less than 125 % of retention.keep_free_bytes is free; under the floor"
                            " /health is degraded. Free space on the device or move the data directory.",
                        },
                    },
                    {
                        "alert": "AutohealDroppedEvents",
                        "expr": f"sum by ({SINK}) (increase({P(sc.METRIC_EVENTS_DROPPED, 'counter')}[15m])) > 0",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "Audit lines were dropped",
                            "description": "The retry buffer overflowed: decisions are missing from the audit log.",
                        },
                    },
                ],
            }
        ]
    }


def render() -> str:
    """Return the committed text of the rule file."""
    header = "# Generated by dashboards/alerts.py from autoheal_otel/semconv.py (make generate).\n"
    return header + yaml.safe_dump(rules(), sort_keys=False, width=100)


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(OUT.parent.parent.parent)}")
