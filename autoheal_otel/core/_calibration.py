"""Calibrated per-method thresholds: the machine's inputs that feed a :class:`Calibrator`.

Every result with a match feeds its method's window (``Calibrator.offer``, from
:meth:`Machine.result`); while calibration is on, :func:`evaluate` records the threshold (kind
``calibration``) when it moves or first appears. :func:`configure` turns calibration on
with overrides, :func:`retune` follows a policy change, :func:`restore` reads the windows back
at a warm restart. The data and the threshold rule are in :mod:`~._calibrator`.

Pure like the ledger: no clock reads, no I/O, no locks, no telemetry. Inputs take the
machine's trailing ``(at)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..base._errors import PolicyError
from ..semconv import EventKind, Reason
from ._ledger import At, Events, Ledger, Trace

if TYPE_CHECKING:
    from ..policy._config import PolicyConfig

__all__ = ["check_overrides", "configure", "evaluate", "restore", "retune"]

#: Keys a :func:`configure` input may override in the policy's ``calibration`` section.
OVERRIDABLE = ("target_precision", "min_samples", "window")


def check_overrides(policy: PolicyConfig, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``overrides`` validated against the ``calibration`` section's bounds.

    Raises:
        PolicyError: a key is not overridable, or a value is out of its bounds (the error
            names ``calibration.<field>``).
    """
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise PolicyError(
                f"calibration.{key} is not overridable (allowed: {', '.join(OVERRIDABLE)}),"
                f" but was {value!r}",
                field=f"calibration.{key}",
                value=value,
            )
    section = {**policy.calibration.model_dump(mode="json"), **overrides}
    type(policy)(calibration=section)  # raises PolicyError naming the field
    return dict(overrides)


def evaluate(
    ledger: Ledger, method: str, now: float, ts: datetime | None, trace: Trace, events: Events
) -> None:
    """Record a method's threshold when it moved or first appeared.

    Called on every result with a match while calibration is on: it takes the hook's four
    context values, and builds the :class:`~._ledger.At` only to record a move."""
    cal = ledger.calibration
    new = cal.compute(method)
    old = cal.recorded.get(method)
    if new is None or new == old:
        return
    cal.recorded[method] = new
    cal.since[method] = ledger.wall(now, ts)
    if events is None:
        return
    at = At(now, ts, trace, events)
    evidence = cal.evidence(method)
    s = cal.settings
    ledger.record(
        at,
        EventKind.CALIBRATION,
        reason=Reason.CALIBRATION_CHANGED.value,
        message=(
            f"{method} threshold {'none' if old is None else f'{old:g}'} -> {new:g}"
            f" ({evidence.samples} matches, precision {evidence.precision:.3f},"
            f" target {s.target_precision:g})"
        ),
        details={
            "method": method,
            "previous": old,
            "threshold": new,
            "samples": evidence.samples,
            "correct": evidence.correct,
            "precision": evidence.precision,
            "target_precision": s.target_precision,
            "min_samples": s.min_samples,
            "window": s.window,
        },
    )


def _evaluate_all(ledger: Ledger, at: At) -> None:
    if ledger.calibration.settings.enabled:
        for method in sorted(ledger.calibration.samples):
            evaluate(ledger, method, *at)


def configure(
    ledger: Ledger,
    overrides: Mapping[str, Any],
    at: At,
) -> None:
    """Input: turn calibration on, with ``overrides`` of the policy's section (recorded).

    Every method is evaluated at once under the new settings, so a threshold that the new
    target moves is recorded now, not at the method's next match.
    """
    cal = ledger.calibration
    cal.overrides = {**{k: v for k, v in overrides.items() if k in OVERRIDABLE}, "enabled": True}
    cal.retune(ledger.policy.calibration)
    if at.events is not None:
        shown = {k: v for k, v in cal.overrides.items() if k != "enabled"}
        ledger.record(
            at,
            EventKind.CALIBRATION,
            reason=Reason.CALIBRATION_CONFIGURED.value,
            message=f"calibration on ({', '.join(f'{k}={v}' for k, v in shown.items()) or 'policy'})",
            details={"overrides": shown, **cal.settings.model_dump(mode="json")},
        )
    _evaluate_all(ledger, at)


def retune(ledger: Ledger, at: At) -> None:
    """Input (after a policy change): apply the new section and re-evaluate every method."""
    ledger.calibration.retune(ledger.policy.calibration)
    _evaluate_all(ledger, at)


def restore(
    ledger: Ledger,
    samples: Iterable[tuple[str, float, bool]],
    recorded: Iterable[tuple[str, float, datetime | None]],
) -> int:
    """Input (warm restart): the decided matches of each window, oldest first, and the
    thresholds last recorded; return how many matches were restored."""
    cal = ledger.calibration
    count = 0
    for method, confidence, ok in samples:
        cal.add(method, float(confidence), bool(ok))
        count += 1
    for method, threshold, since in recorded:
        cal.recorded[method] = float(threshold)
        if since is not None:
            cal.since[method] = since
    return count
