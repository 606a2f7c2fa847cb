"""The exception tree.

Every error the library raises on purpose derives from :class:`AutoHealError` and carries
structured attributes next to a message that names the value and the rule::

    AutoHealError
    ├── PolicyError              .field, .value   (bad policy file or object)
    ├── InvalidInputError        .field, .value   (bad StepResult, bad id, unknown outcome)
    ├── IllegalTransitionError   .workflow_id, .state, .target
    ├── StepBlockedError         .workflow_id, .step_id, .state, .reason
    ├── LearningFrozenError      .workflow_id, .state   (a snapshot while learning is off)
    ├── StoreError               (versioning: no such set, nothing active yet)
    ├── ManagerClosedError       (a hook was called after close())
    └── step signals, raised by executor code inside a guarded step (``manager.step``):
        ├── TargetNotFound       -> Outcome.TARGET_NOT_FOUND
        ├── PostconditionFailed  -> Outcome.POSTCONDITION_FAILED
        └── WatchdogTimeout      -> Outcome.WATCHDOG_TIMEOUT (also a TimeoutError)

Every class in the tree is exported from ``autoheal_otel`` (a test keeps the tree, this
docstring and the exports equal).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AutoHealError",
    "IllegalTransitionError",
    "InvalidInputError",
    "LearningFrozenError",
    "ManagerClosedError",
    "PolicyError",
    "PostconditionFailed",
    "StepBlockedError",
    "StoreError",
    "TargetNotFound",
    "WatchdogTimeout",
]


class AutoHealError(Exception):
    """Base class of every error raised by autoheal-otel."""


class PolicyError(AutoHealError):
    """A policy is invalid; ``field`` is the dotted path of the first bad field.

    ``source`` names where the policy came from (a file path, or ``policy`` for one built in
    code); it prefixes the message.
    """

    def __init__(
        self, message: str, *, field: str = "", value: Any = None, source: str = "policy"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


class InvalidInputError(AutoHealError, ValueError):
    """An argument given to the library is invalid; ``field`` names it."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        super().__init__(f"{field} {rule}, but was {value!r}")
        self.field = field
        self.value = value
        self.rule = rule


class IllegalTransitionError(AutoHealError):
    """A transition that the transition table does not allow was requested."""

    def __init__(self, workflow_id: str, state: str, target: str, trigger: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r}: no {trigger!r} transition from {state!r} to {target!r}"
        )
        self.workflow_id = workflow_id
        self.state = state
        self.target = target
        self.trigger = trigger


class StepBlockedError(AutoHealError):
    """The gate refused a step (raised by the step wrapper, never by the hooks)."""

    def __init__(self, workflow_id: str, step_id: str, state: str, reason: str) -> None:
        super().__init__(f"step {step_id!r} of workflow {workflow_id!r} blocked: {reason}")
        self.workflow_id = workflow_id
        self.step_id = step_id
        self.state = state
        self.reason = reason


class LearningFrozenError(AutoHealError):
    """Learned artifacts may not change now: the workflow is not in a learning state."""

    def __init__(self, workflow_id: str, state: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r} is {state}: learning is frozen, no snapshot is taken"
        )
        self.workflow_id = workflow_id
        self.state = state


class ManagerClosedError(AutoHealError):
    """The manager was used after ``close()``."""


class StoreError(AutoHealError):
    """A store operation could not be done (the store is left at the old set)."""


class TargetNotFound(AutoHealError):
    """Raise inside a guarded step when the target is not on screen."""


class PostconditionFailed(AutoHealError):
    """Raise inside a guarded step when the action's postcondition does not hold."""


class WatchdogTimeout(AutoHealError, TimeoutError):
    """Raised by :meth:`StepGuard.check_deadline` once the step's deadline has passed."""
