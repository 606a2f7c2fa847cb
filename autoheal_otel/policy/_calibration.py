"""The ``calibration`` section of the policy: how per-method thresholds are learned.

Invariants: every number is bounded (a typo such as ``min_samples: 3e9`` is an error naming
the field, like every other section); the section is global, not overridable per workflow,
because matches are calibrated per matching method across every workflow.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from ._sections import _Section  # the one config every policy section shares

__all__ = ["CalibrationPolicy"]


#: The largest ``calibration.window`` a policy may set.
MAX_WINDOW = 100_000


class CalibrationPolicy(_Section):
    """Per-method confidence thresholds learned from validated outcomes.

    A validated success after a match is a correct match, a failed postcondition a wrong one.
    Per matching method (``StepResult.details["method"]``, default ``faiss``) the last
    ``window`` decided matches give the observed precision and the calibrated threshold: the
    lowest confidence at or above which the precision reaches ``target_precision`` (1.0 when
    none does), once ``min_samples`` matches were seen. The executor's effective
    ``min_confidence_for(method)`` is the larger of it and the state's own threshold.
    """

    enabled: Annotated[bool, Strict()] = Field(
        False,
        description="Calibrate and apply per-method thresholds (a PrecisionTracker turns it"
        " on for its manager).",
    )
    target_precision: Annotated[float, Strict()] = Field(
        0.95,
        gt=0.0,
        le=1.0,
        description="The precision matches at or above the calibrated threshold must reach.",
    )
    min_samples: Annotated[int, Strict()] = Field(
        30,
        ge=1,
        le=100_000,
        description="Decided matches a method needs before it has a calibrated threshold.",
    )
    window: Annotated[int, Strict()] = Field(
        2000,
        ge=1,
        le=MAX_WINDOW,
        description="How many of a method's most recent decided matches count.",
    )
