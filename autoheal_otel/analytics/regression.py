"""The regression monitor over the audit log: the same rule as the live state machine.

:func:`check_regression` reads executions and successes per artifact version from the log
(``version_outcomes.sql``, versions in order of last activation) and applies the rule of
:mod:`autoheal_otel.core._regression`, the one the manager applies to its in-memory counts: on the
same log the two give the same verdict, also after a rollback re-activated an older set.
"""

from __future__ import annotations

from pathlib import Path

from ..core._regression import RegressionVerdict, evaluate, two_proportion_p_value, wilson_interval
from ..policy._config import RollbackPolicy
from . import AuditAnalytics

__all__ = [
    "RegressionVerdict",
    "check_regression",
    "evaluate",
    "two_proportion_p_value",
    "wilson_interval",
]


def check_regression(
    analytics: AuditAnalytics | str | Path, workflow_id: str, policy: RollbackPolicy
) -> RegressionVerdict:
    """Compare the active artifact version of ``workflow_id`` with the previous one (from SQL)."""
    if isinstance(analytics, AuditAnalytics):
        rows = analytics.query("version_outcomes", workflow_id=workflow_id)
    else:
        with AuditAnalytics(analytics) as db:
            rows = db.query("version_outcomes", workflow_id=workflow_id)
    versions = [
        (r["artifact_version"], int(r["executions"]), int(r["successes"]))
        for r in rows
        if r["artifact_version"]
    ]
    return evaluate(
        workflow_id,
        versions[-2] if len(versions) >= 2 else None,
        versions[-1] if versions else None,
        policy,
    )
