"""Which keywords are steps, and what a step records besides its id.

A robot's task body mixes keywords that act on the application (``Click Button``, the suite's
own ``Enter Invoice``) with bookkeeping (``Create List``, ``Log``, ``Append To List``,
``Set Variable``). Only the first kind is a step by default (``steps=app``): a keyword of a
*bookkeeping library* (``BuiltIn``, ``Collections``, ``String``, ``DateTime``; configurable)
is not gated, not counted, and does not end the wait of an action for its assertion. Two
kinds of bookkeeping-library keywords stay steps, because they decide what happens to the
application: assertions (``Should Be Equal`` verifies the action before it) and keywords that
run other keywords (``Wait Until Keyword Succeeds  …  Click Button``, ``Run Keyword If``),
whose inner keyword would otherwise run ungated. ``steps=all`` gates every keyword.

A step's arguments are recorded resolved (``record_args=resolved``, the default), so the log
says *which* invoice failed: at most :data:`MAX_ARGS` arguments of at most
:data:`MAX_ARG_CHARS` characters each. An argument that uses a variable whose name looks like
a secret (``${PASSWORD}``, ``${api_token}``; :data:`SECRET_NAMES`), or whose value is an RF
``Secret``, is recorded as ``***``; inline Python (``${{ … }}``) is recorded as written, never
evaluated twice. ``record_args=written`` records the arguments as written, ``off`` none.

Invariant: a keyword that can act on the application is never left ungated by ``steps=app``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from robot.running import RUN_KW_REGISTER  # type: ignore[import-untyped]
from robot.running.context import EXECUTION_CONTEXTS  # type: ignore[import-untyped]
from robot.variables import search_variable  # type: ignore[import-untyped]

from ._mapping import OutcomeMapping

__all__ = [
    "DEFAULT_BOOKKEEPING",
    "MAX_ARGS",
    "MAX_ARG_CHARS",
    "SECRET_NAMES",
    "StepRules",
]

StepsMode = Literal["app", "all"]
ArgsMode = Literal["resolved", "written", "off"]

#: Libraries whose keywords are bookkeeping, not steps, under ``steps=app``.
DEFAULT_BOOKKEEPING = ("BuiltIn", "Collections", "String", "DateTime")
#: A step records at most this many arguments ...
MAX_ARGS = 8
#: ... of at most this many characters each (longer ones end with ``…``).
MAX_ARG_CHARS = 80
#: Variable names whose values are never recorded.
SECRET_NAMES = re.compile(r"(?i)pass|pwd|secret|token|key|credential|auth|cookie|session")
_MASK = "***"


@dataclass(frozen=True)
class StepRules:
    """What a step is (``steps``, ``bookkeeping``) and what it records (``record_args``)."""

    steps: StepsMode = "app"
    bookkeeping: frozenset[str] = frozenset(DEFAULT_BOOKKEEPING)
    record_args: ArgsMode = "resolved"

    def is_bookkeeping(self, library: str | None, name: str, mapping: OutcomeMapping) -> bool:
        """Return True for a library keyword that is neither gated nor counted.

        Args:
            library: the name of the keyword's library (None for a user keyword).
            name: the keyword's name as called.
            mapping: the outcome mapping (which names are assertions).
        """
        if self.steps == "all" or library is None or library not in self.bookkeeping:
            return False
        if mapping.is_assertion(name):
            return False  # verifies the action before it: a step
        # A keyword that runs another keyword is a step: its inner keyword is never gated.
        return not RUN_KW_REGISTER.is_run_keyword(library, name)

    def arguments(self, args: Sequence[Any]) -> list[str] | None:
        """Return a step's arguments as the log records them (None with ``record_args=off``)."""
        if self.record_args == "off":
            return None
        recorded = []
        for index, arg in enumerate(args):
            if index == MAX_ARGS:
                recorded.append(f"… ({len(args)} arguments)")
                break
            text = str(arg)
            if self.record_args == "resolved":
                text = _resolve(text)
            recorded.append(text if len(text) <= MAX_ARG_CHARS else text[: MAX_ARG_CHARS - 1] + "…")
        return recorded


def _resolve(written: str) -> str:
    """Return one argument with its variables' values, or ``***`` when one is a secret."""
    if "${{" in written:
        return written  # inline Python: evaluating it again could act twice
    names = []
    rest = written
    for _ in range(16):  # a bounded look at the variables an argument uses
        match = search_variable(rest, ignore_errors=True)
        if not match:
            break
        names.append(str(match.base))
        rest = str(match.after)
    if any(SECRET_NAMES.search(name) for name in names):
        return _MASK
    if not names:
        return written
    ctx = EXECUTION_CONTEXTS.current
    if ctx is None:
        return written
    try:
        value = ctx.variables.replace_scalar(written)
    except Exception:  # an unresolvable variable: RF reports it; the log keeps what was written
        return written
    if type(value).__name__ == "Secret":
        return _MASK
    return str(value)
