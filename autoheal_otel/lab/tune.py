"""Search a space of policies for the one the labelled history favours.

:func:`tune` scores the policy in force and every candidate of the space (grid, a random
sample, or successive halving: all candidates on the first quarter of the history, the
better half on the first half, the better half of those on all of it) with one multi-policy
replay per round, then returns the candidates scored on the whole history, the Pareto front
over (missed, false stops, mean delay, blocked steps), the best candidate and its diff against
the policy in force. Nothing is written here; the caller writes the candidate file.

Invariant: every figure comes from the replay ``autoheal what-if`` runs, over the log plus the
results the labelled stops hid (:mod:`.censor`), which only a candidate that would have let
those steps run sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from ..base._errors import InvalidInputError
from ..policy._config import PolicyConfig
from .censor import assume
from .decoded import DecodedLog
from .labels import Label
from .multi import Candidate, multi_replay
from .objective import Incident, Metrics, Weights, incidents_of, score
from .space import Space

__all__ = ["Evaluation", "TuneResult", "tune"]

Method = Literal["grid", "random", "halving"]
#: The grid may hold at most this many candidates (a larger one: random or halving).
MAX_GRID = 5000


@dataclass
class Evaluation:
    """One policy scored on the history."""

    choice: tuple[Any, ...]
    policy: PolicyConfig
    metrics: Metrics
    candidate: Candidate
    rounds: int = 1

    def to_dict(self, space: Space) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "choice": dict(zip([d.name for d in space.dimensions], self.choice, strict=True)),
            **self.metrics.to_dict(),
        }


@dataclass
class TuneResult:
    """What a search found."""

    space: Space
    current: Evaluation
    evaluated: list[Evaluation]
    incidents: list[Incident]
    records: int
    eliminated: int = 0
    pareto: list[Evaluation] = field(default_factory=list)

    @property
    def best(self) -> Evaluation:
        """Return the best-scored candidate (ties: the first in the space's order)."""
        return min(self.evaluated, key=lambda e: e.metrics.score)

    def diff(self) -> list[tuple[str, Any, Any]]:
        """Return (field, in force, recommended) for each field the recommendation changes."""
        out = []
        for dim, value in zip(self.space.dimensions, self.best.choice, strict=True):
            now = _get(self.current.policy.to_dict(), dim.path)
            if now != value:
                out.append((dim.name, now, value))
        return out


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _prefix(log: DecodedLog, fraction: float) -> tuple[DecodedLog, datetime | None]:
    """Return the log's first ``fraction`` of records (what a shorter history would hold)."""
    if fraction >= 1.0 or not log.rows:
        return log, None
    rows = log.rows[: max(1, int(len(log.rows) * fraction))]
    last: dict[Any, tuple[datetime, int]] = {}
    for row in rows:
        last[row[1]] = (row[5].replace(tzinfo=None), row[2])
    cut = replace(log, rows=rows, records=len(rows), last=last)
    return cut, rows[-1][5]


def _pareto(rows: list[Evaluation]) -> list[Evaluation]:
    def key(e: Evaluation) -> tuple[float, ...]:
        m = e.metrics
        return (m.missed, m.false_stops, m.mean_delay_s, m.blocked)

    front: list[Evaluation] = []
    for e in rows:
        k = key(e)
        dominated = any(
            all(a <= b for a, b in zip(key(o), k, strict=True)) and key(o) != k for o in rows
        )
        if not dominated and all(key(f) != k for f in front):
            front.append(e)
    return sorted(front, key=lambda e: e.metrics.score)


def tune(
    log: DecodedLog,
    labels: list[Label],
    space: Space,
    *,
    method: Method = "grid",
    samples: int = 50,
    seed: int = 0,
    weights: Weights | None = None,
    workers: int | None = None,
    grace_s: float = 600.0,
) -> TuneResult:
    """Score the policy in force (``space.base``) and the space's candidates on ``log``.

    Raises:
        InvalidInputError: the grid is too large, or a candidate is not a valid policy.
    """
    weights = weights or Weights()
    if method == "grid":
        if space.size > MAX_GRID:
            raise InvalidInputError(
                "space",
                space.size,
                f"holds more than {MAX_GRID} candidates for a grid; use --search random or halving",
            )
        choices = list(space.grid())
    else:
        choices = space.sample(samples, seed) if method == "random" else list(space.grid())
        if method == "halving" and len(choices) > MAX_GRID:
            choices = space.sample(MAX_GRID, seed)
    policies = [space.policy(c) for c in choices]  # every candidate validated up front
    incidents = incidents_of(labels, log)
    log = assume(log, incidents)
    alive = list(range(len(choices)))
    fractions = [0.25, 0.5, 1.0] if method == "halving" and len(choices) > 3 else [1.0]
    evaluated: dict[int, Evaluation] = {}
    current: Evaluation | None = None
    for round_no, fraction in enumerate(fractions, start=1):
        part, until = _prefix(log, fraction)
        run = [policies[i] for i in alive]
        last = fraction >= 1.0
        if last:
            run = [space.base, *run]
        got = multi_replay(part, run, workers=workers)
        if last:
            base_candidate, got = got[0], got[1:]
            current = Evaluation(
                (), space.base, score(base_candidate, incidents, weights, grace_s), base_candidate
            )
        for i, candidate in zip(alive, got, strict=True):
            metrics = score(candidate, incidents, weights, grace_s, until)
            evaluated[i] = Evaluation(choices[i], policies[i], metrics, candidate, round_no)
        if not last:
            ranked = sorted(alive, key=lambda i: (evaluated[i].metrics.score, i))
            alive = sorted(ranked[: max(1, (len(ranked) + 1) // 2)])
    assert current is not None
    final = [evaluated[i] for i in alive]
    result = TuneResult(
        space=space,
        current=current,
        evaluated=final,
        incidents=incidents,
        records=log.records,
        eliminated=len(choices) - len(final),
    )
    result.pareto = _pareto(final)
    return result
