"""autoheal-otel: keep unattended UI-automation robots running safely.

Continue when safe, degrade when uncertain, stop when dangerous — and prove every decision.
The public API is what ``__all__`` lists; every other module is private.
"""

from ._version import __version__
from .base._clock import Clock, SystemClock
from .base._errors import (
    AutoHealError,
    IllegalTransitionError,
    InvalidInputError,
    LearningFrozenError,
    ManagerClosedError,
    PolicyError,
    PostconditionFailed,
    StepBlockedError,
    StoreError,
    TargetNotFound,
    WatchdogTimeout,
)
from .base._events import DecisionEvent, EventSink, RuleFiring
from .base._models import (
    EffectiveSettings,
    ExecutionState,
    ExecutionStateInfo,
    FailureWindow,
    Outcome,
    StepResult,
    Trigger,
    VersionInfo,
)
from .core._report import StatusReport
from .core._transitions import Edge
from .policy._config import PolicyConfig
from .runtime._manager import AutoHealManager
from .runtime._step import StepGuard
from .semconv import Cause, EventKind, Reason, Rule

__all__ = [
    "AutoHealError",
    "AutoHealManager",
    "Cause",
    "Clock",
    "DecisionEvent",
    "Edge",
    "EffectiveSettings",
    "EventKind",
    "EventSink",
    "ExecutionState",
    "ExecutionStateInfo",
    "FailureWindow",
    "IllegalTransitionError",
    "InvalidInputError",
    "LearningFrozenError",
    "ManagerClosedError",
    "Outcome",
    "PolicyConfig",
    "PolicyError",
    "PostconditionFailed",
    "Reason",
    "Rule",
    "RuleFiring",
    "StatusReport",
    "StepBlockedError",
    "StepGuard",
    "StepResult",
    "StoreError",
    "SystemClock",
    "TargetNotFound",
    "Trigger",
    "VersionInfo",
    "WatchdogTimeout",
    "__version__",
]
