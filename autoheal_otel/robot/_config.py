"""The listener's arguments, as Robot Framework passes them, parsed and validated.

RF hands listener arguments over as strings (``--listener Class:name=value:name=value``, or
with ``;`` as the separator when a value holds a colon, such as a Windows path). Every
argument is checked here, once, so a typo gives one error naming the argument and the value,
never a run that is silently not gated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..base._errors import InvalidInputError
from ..policy._config import PolicyConfig
from ._mapping import OutcomeMapping
from ._steps import DEFAULT_BOOKKEEPING, StepRules

__all__ = ["ARGUMENTS", "ListenerConfig"]

WorkflowSource = Literal["test", "suite", "tag"]
StepName = Literal["call", "keyword"]
BlockStatus = Literal["FAIL", "SKIP", "NOT RUN"]

#: Every argument the listener takes, with what it means (also the error's list of names).
ARGUMENTS: Mapping[str, str] = {
    "policy": "path of the policy JSON (default: the built-in defaults)",
    "data_dir": "directory of the audit log and state (default: none, memory only)",
    "workflow": "what a workflow is: test (the task's full name), suite, or tag",
    "tag_prefix": "with workflow=tag: the prefix of the tag naming the workflow (default wf-)",
    "step": "a step's id: call (keyword and its arguments as written) or keyword (name only)",
    "on_block": "status of a refused step: FAIL, SKIP or NOT_RUN (default FAIL)",
    "mapping": "path of a JSON file of rules mapping failures to outcomes",
    "steps": "which keywords are steps: app (default: not BuiltIn/Collections bookkeeping) or all",
    "bookkeeping": "with steps=app: comma-separated libraries whose keywords are not steps",
    "record_args": "a step's arguments in the log: resolved (default, secrets masked), written, off",
    "step_delay": "on (default): wait the state's step delay once before each gated step; off",
    "shared": "on (default): decide as one with other robots on data_dir (pabot); off",
}

_BLOCK = {"FAIL": "FAIL", "SKIP": "SKIP", "NOT_RUN": "NOT RUN", "NOT RUN": "NOT RUN"}


@dataclass(frozen=True)
class ListenerConfig:
    """The validated settings of one :class:`AutoHealListener`."""

    policy: Path | None = None
    data_dir: Path | None = None
    workflow: WorkflowSource = "test"
    tag_prefix: str = "wf-"
    step: StepName = "call"
    on_block: BlockStatus = "FAIL"
    mapping: OutcomeMapping = field(default_factory=OutcomeMapping)
    rules: StepRules = field(default_factory=StepRules)
    step_delay: bool = True
    shared: bool = True

    @classmethod
    def from_args(cls, args: tuple[str, ...], kwargs: Mapping[str, str]) -> ListenerConfig:
        """Parse the listener's arguments (all strings) into a config.

        Raises:
            InvalidInputError: an unknown or positional argument, or a bad value; the message
                names the argument and the value and lists what is accepted.
            PolicyError: the policy file is missing or invalid (names the field).
        """
        if args:
            raise InvalidInputError(
                "listener argument",
                args[0],
                f"must be name=value with a name among {', '.join(ARGUMENTS)}",
            )
        unknown = [name for name in kwargs if name not in ARGUMENTS]
        if unknown:
            raise InvalidInputError(
                "listener argument",
                unknown[0],
                f"is not known (known: {', '.join(ARGUMENTS)})",
            )
        values = {name: str(value).strip() for name, value in kwargs.items()}
        for name, value in values.items():
            if not value:
                raise InvalidInputError(name, value, "must not be empty")
        policy: Path | None = None
        if "policy" in values:
            path = Path(values["policy"])
            PolicyConfig.load(path)  # fail now, naming the field, rather than at the first task
            policy = path
        workflow = values.get("workflow", "test").lower()
        if workflow not in ("test", "suite", "tag"):
            raise InvalidInputError("workflow", values["workflow"], "must be test, suite or tag")
        step = values.get("step", "call").lower()
        if step not in ("call", "keyword"):
            raise InvalidInputError("step", values["step"], "must be call or keyword")
        on_block = _BLOCK.get(values.get("on_block", "FAIL").upper().replace("-", "_"))
        if on_block is None:
            raise InvalidInputError("on_block", values["on_block"], "must be FAIL, SKIP or NOT_RUN")
        mapping = (
            OutcomeMapping.load(values["mapping"]) if "mapping" in values else OutcomeMapping()
        )
        return cls(
            rules=_step_rules(values),
            step_delay=_choice(values, "step_delay", ("on", "off"), "on") == "on",
            shared=_choice(values, "shared", ("on", "off"), "on") == "on",
            policy=policy,
            data_dir=Path(values["data_dir"]) if "data_dir" in values else None,
            workflow=workflow,  # type: ignore[arg-type]  # checked above
            tag_prefix=values.get("tag_prefix", "wf-"),
            step=step,  # type: ignore[arg-type]
            on_block=on_block,  # type: ignore[arg-type]
            mapping=mapping,
        )


def _choice(values: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = values.get(name, default).lower()
    if value not in allowed:
        raise InvalidInputError(name, values[name], f"must be {' or '.join(allowed)}")
    return value


def _step_rules(values: Mapping[str, str]) -> StepRules:
    steps = _choice(values, "steps", ("app", "all"), "app")
    record = _choice(values, "record_args", ("resolved", "written", "off"), "resolved")
    libraries = [n.strip() for n in values.get("bookkeeping", "").split(",") if n.strip()]
    if "bookkeeping" in values and not libraries:
        raise InvalidInputError("bookkeeping", values["bookkeeping"], "must name libraries")
    return StepRules(
        steps=steps,  # type: ignore[arg-type]  # checked above
        bookkeeping=frozenset(libraries or DEFAULT_BOOKKEEPING),
        record_args=record,  # type: ignore[arg-type]
    )
