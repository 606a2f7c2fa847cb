"""What a replay found (:func:`~autoheal_otel.analytics.replay.replay` returns it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..base._models import EffectiveSettings

__all__ = ["ReplayReport"]


@dataclass
class ReplayReport:
    """What a replay found."""

    records: int = 0
    skipped_lines: int = 0
    what_if: bool = False
    policy_version: str = ""
    gates: int = 0
    gate_mismatches: int = 0
    recorded: Counter[str] = field(default_factory=Counter)
    replayed: Counter[str] = field(default_factory=Counter)
    recorded_blocked_gates: int = 0
    replayed_blocked_gates: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    #: Calibration changes (method, previous, threshold) recorded in the log and replayed.
    recorded_calibrations: list[tuple[Any, ...]] = field(default_factory=list)
    replayed_calibrations: list[tuple[Any, ...]] = field(default_factory=list)
    #: The calibrated thresholds in force at the end, per method.
    method_thresholds: dict[str, float] = field(default_factory=dict)
    #: Each workflow's effective settings at the end of the log (calibration applied).
    settings: dict[str, EffectiveSettings] = field(default_factory=dict)
    #: When the log's head was deleted: the checkpoint replay started from (its time), and
    #: the records before it, which no machine state explains.
    from_checkpoint: str | None = None
    before_checkpoint: int = 0
    #: Pairs of writers that decided at the same time without shared decisions: each decided
    #: from its own records only, and replay, which feeds one machine, cannot say what each
    #: knew (run them with ``audit.shared_decisions``).
    unshared_writers: list[list[str]] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Return True when every automatic transition and gate answer was reproduced."""
        return not self.mismatches and self.gate_mismatches == 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "records": self.records,
            "skipped_lines": self.skipped_lines,
            "what_if": self.what_if,
            "policy_version": self.policy_version,
            "matches": self.matches,
            "gates": self.gates,
            "gate_mismatches": self.gate_mismatches,
            "transitions": {"recorded": dict(self.recorded), "replayed": dict(self.replayed)},
            "blocked_gates": {
                "recorded": self.recorded_blocked_gates,
                "replayed": self.replayed_blocked_gates,
            },
            "mismatches": self.mismatches[:50],
            "calibration": {
                "recorded": len(self.recorded_calibrations),
                "replayed": len(self.replayed_calibrations),
                "thresholds": dict(self.method_thresholds),
            },
            "settings": {w: s.model_dump(mode="json") for w, s in self.settings.items()},
            "from_checkpoint": self.from_checkpoint,
            "before_checkpoint": self.before_checkpoint,
            "unshared_writers": self.unshared_writers,
        }

    def mismatch(self, entry: dict[str, Any]) -> None:
        """Keep the first 50 mismatches (the count of gate mismatches is kept apart)."""
        if len(self.mismatches) < 50:
            self.mismatches.append(entry)
