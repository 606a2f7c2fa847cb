"""Score a candidate's stops against the labelled history.

An *incident* is a stop labelled right (``true_stop``) or a ``missed_incident``; it starts at
the workflow's first failure in the ``lookback`` before its recorded stop (after any earlier
stop of that workflow), or at the stop itself when no failure preceded it. A candidate
*catches* it when it stops that workflow (QUARANTINED, PAUSED or ROLLBACK, by its own rules)
between the start and ``grace`` seconds after the recorded stop; its delay is the time from
the start to its first such stop. Every other stop a candidate makes is a *false stop*. The
objective is the weighted sum ``missed * w.missed + false_stops * w.false + mean delay in
minutes * w.delay + blocked steps * w.blocked``: lower is better, and the default weights
make it lexicographic in practice (catch every incident, then fewest false stops, then the
shortest delay, then fewest blocked steps).

Invariant: a candidate is judged only on its automatic stops; operator moves replayed as
inputs are never counted for or against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..base._errors import InvalidInputError
from .decoded import RESULT, DecodedLog
from .labels import Label
from .multi import Candidate

__all__ = ["Incident", "Metrics", "Weights", "incidents_of", "score"]

_STOPS = frozenset({"quarantined", "paused", "rollback"})
_RIGHT = frozenset({"true_stop", "missed_incident"})
_WRONG = frozenset({"false_stop", "no_incident"})


@dataclass(frozen=True)
class Weights:
    """How much each part of the objective costs (see the module docstring)."""

    missed: float = 1000.0
    false: float = 10.0
    delay: float = 1.0
    blocked: float = 0.001

    @classmethod
    def parse(cls, text: str) -> Weights:
        """Parse ``missed=1000,false=10,delay=1,blocked=0.001`` (any subset).

        Raises:
            InvalidInputError: an unknown name, or a value that is not a number >= 0.
        """
        values: dict[str, float] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = item.partition("=")
            if not sep or name.strip() not in cls.__dataclass_fields__:
                raise InvalidInputError(
                    "weights", item, "must be NAME=NUMBER with NAME missed, false, delay or blocked"
                )
            try:
                number = float(value)
            except ValueError:
                raise InvalidInputError("weights", item, "needs a number") from None
            if not number >= 0 or number == float("inf"):
                raise InvalidInputError("weights", item, "must be a finite number >= 0")
            values[name.strip()] = number
        return cls(**values)


@dataclass(frozen=True)
class Incident:
    """A labelled stop (right or wrong) with the span a candidate is judged on."""

    label: Label
    start: datetime
    stop: datetime

    @property
    def right(self) -> bool:
        """Return whether stopping here was right."""
        return self.label.label in _RIGHT


@dataclass
class Metrics:
    """One candidate's figures: what it caught, missed and stopped wrongly."""

    missed: int = 0
    false_stops: int = 0
    mean_delay_s: float = 0.0
    blocked: int = 0
    score: float = 0.0
    #: Per labelled stop (by its ref): the candidate's first stop in its span, or None.
    verdicts: dict[str, datetime | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "missed": self.missed,
            "false_stops": self.false_stops,
            "mean_delay_s": round(self.mean_delay_s, 3),
            "blocked": self.blocked,
            "score": round(self.score, 6),
            "verdicts": {k: v.isoformat() if v else None for k, v in self.verdicts.items()},
        }


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def incidents_of(
    labels: Iterable[Label], log: DecodedLog, lookback_s: float = 3600.0
) -> list[Incident]:
    """Return the labelled stops (right and wrong) with their starts, oldest first."""
    judged = [lab for lab in labels if lab.label in _RIGHT | _WRONG]
    failures: dict[str, list[datetime]] = {}
    for row in log.rows:
        if (
            row[0] == RESULT
            and not isinstance(row[7], Exception)
            and row[7][0].outcome != "success"
        ):
            failures.setdefault(row[3], []).append(row[5])
    out: list[Incident] = []
    previous: dict[str, datetime] = {}
    for lab in sorted(judged, key=lambda x: (x.ts, x.seq)):
        stop = _aware(lab.ts)
        since = max(
            previous.get(lab.workflow_id, stop - timedelta(seconds=lookback_s)),
            stop - timedelta(seconds=lookback_s),
        )
        first = next((t for t in failures.get(lab.workflow_id, []) if since < t <= stop), stop)
        out.append(Incident(lab, first, stop))
        previous[lab.workflow_id] = stop
    return out


def _stops(candidate: Candidate) -> list[tuple[str, datetime]]:
    return [
        (wid, datetime.fromisoformat(ts))
        for wid, _prev, state, _cause, ts in candidate.transitions
        if state in _STOPS
    ]


def score(
    candidate: Candidate,
    incidents: Sequence[Incident],
    weights: Weights,
    grace_s: float = 600.0,
    until: datetime | None = None,
) -> Metrics:
    """Return the candidate's metrics over the incidents (those before ``until`` only)."""
    grace = timedelta(seconds=grace_s)
    stops = _stops(candidate)
    judged = [i for i in incidents if until is None or i.stop <= until]
    used: set[int] = set()
    metrics = Metrics(blocked=candidate.report.replayed_blocked_gates)
    delays: list[float] = []
    for incident in judged:
        wid = incident.label.workflow_id
        hit = next(
            (
                (n, t)
                for n, (w, t) in enumerate(stops)
                if w == wid and incident.start <= t <= incident.stop + grace
            ),
            None,
        )
        metrics.verdicts[incident.label.ref] = hit[1] if hit else None
        if incident.right:
            if hit is None:
                metrics.missed += 1
            else:
                delays.append((hit[1] - incident.start).total_seconds())
        if hit is not None and incident.right:
            used.update(
                n
                for n, (w, t) in enumerate(stops)
                if w == wid and incident.start <= t <= incident.stop + grace
            )
    metrics.false_stops = sum(
        1 for n, (_w, t) in enumerate(stops) if n not in used and (until is None or t <= until)
    )
    metrics.mean_delay_s = sum(delays) / len(delays) if delays else 0.0
    metrics.score = (
        weights.missed * metrics.missed
        + weights.false * metrics.false_stops
        + weights.delay * metrics.mean_delay_s / 60.0
        + weights.blocked * metrics.blocked
    )
    return metrics
