"""The regression rule: is the active artifact version measurably worse than the previous?

Pure statistics over (version, executions, successes) pairs; the state machine applies it to
its in-memory counts and :func:`autoheal_otel.analytics.regression.check_regression` to the
counts the audit log holds, so the two give the same verdict by construction:

- ``inconclusive`` while either side has fewer than ``min_executions`` results;
- ``fail`` when the success rate dropped by at least ``success_rate_drop_points`` percentage
  points *and* a one-sided two-proportion z-test rejects "not worse" at ``confidence_level``
  (a raw difference alone never fails a version: 3/4 against 4/4 is noise);
- ``pass`` otherwise. Wilson intervals of both rates are reported as evidence.

"Previous" and "active" are the last two versions in order of (last) activation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

from ..policy._config import RollbackPolicy

__all__ = [
    "RegressionVerdict",
    "Verdict",
    "evaluate",
    "two_proportion_p_value",
    "wilson_interval",
]

Verdict = Literal["pass", "fail", "inconclusive"]


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion (0..1)."""
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At p = 0 or 1 the bound is exactly 0 or 1; computed, it can round just inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def two_proportion_p_value(s1: int, n1: int, s2: int, n2: int) -> float:
    """Return the one-sided p-value of "rate 2 is lower than rate 1" (pooled z-test)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if s2 / n2 >= s1 / n1 else 0.0
    z = (s1 / n1 - s2 / n2) / se
    return 1 - NormalDist().cdf(z)


@dataclass(frozen=True)
class RegressionVerdict:
    """The evidence and the verdict for one workflow."""

    workflow_id: str
    verdict: Verdict
    reason: str
    active_version: str | None
    previous_version: str | None
    active_executions: int = 0
    active_successes: int = 0
    previous_executions: int = 0
    previous_successes: int = 0
    active_rate: float | None = None
    previous_rate: float | None = None
    drop_points: float | None = None
    p_value: float | None = None
    active_interval: tuple[float, float] | None = None
    previous_interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as JSON-ready data."""
        return asdict(self)


def evaluate(
    workflow_id: str,
    previous: tuple[str, int, int] | None,
    active: tuple[str, int, int] | None,
    policy: RollbackPolicy,
) -> RegressionVerdict:
    """Judge an active version against the previous one: (version, executions, successes) each.

    Pure arithmetic: the manager calls it under its lock on in-memory counts, the SQL path on
    counts read from the log.
    """
    if previous is None or active is None:
        return RegressionVerdict(
            workflow_id,
            "inconclusive",
            "no previous version to compare with",
            active[0] if active else None,
            None,
        )
    (v1, n1, s1), (v2, n2, s2) = previous, active
    evidence: dict[str, Any] = {
        "active_executions": n2,
        "active_successes": s2,
        "previous_executions": n1,
        "previous_successes": s1,
        "active_rate": s2 / n2 if n2 else None,
        "previous_rate": s1 / n1 if n1 else None,
        "active_interval": wilson_interval(s2, n2, policy.confidence_level),
        "previous_interval": wilson_interval(s1, n1, policy.confidence_level),
    }
    if min(n1, n2) < policy.min_executions:
        return RegressionVerdict(
            workflow_id,
            "inconclusive",
            f"need {policy.min_executions} executions per version, have {n2} and {n1}",
            v2,
            v1,
            **evidence,
        )
    drop = 100.0 * (s1 / n1 - s2 / n2)
    p = two_proportion_p_value(s1, n1, s2, n2)
    failed = drop >= policy.success_rate_drop_points and p < 1 - policy.confidence_level
    reason = (
        f"success rate {100 * s2 / n2:.1f}% ({v2}) vs {100 * s1 / n1:.1f}% ({v1}): "
        f"drop {drop:.1f} points (limit {policy.success_rate_drop_points:g}), p={p:.4f}"
    )
    return RegressionVerdict(
        workflow_id,
        "fail" if failed else "pass",
        reason,
        v2,
        v1,
        drop_points=drop,
        p_value=p,
        **evidence,
    )
