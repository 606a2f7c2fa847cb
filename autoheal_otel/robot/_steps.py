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
:data:`MAX_ARG_CHARS` characters each. An argument whose text names a secret (a variable
``${PASSWORD}``, an item ``${LOGIN}[password]``, a named ``password=${PIN}``; see
:data:`SECRET_NAMES`), or whose value is an RF ``Secret``, is recorded as ``***``, and its
value is kept out of the step's failure message too; the credentials of a URL
(``//user:pass@``) are masked wherever they appear. Inline Python (``${{ … }}``) is recorded
as written, never evaluated twice. ``record_args=written`` records the arguments as written,
``off`` none. BuiltIn's ``Call Method`` and ``Evaluate`` can act: they are steps.

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
    "ACTING_BUILTIN",
    "DEFAULT_BOOKKEEPING",
    "MAX_ARGS",
    "MAX_ARG_CHARS",
    "SECRET_NAMES",
    "StepRules",
    "redact",
    "runs_keywords",
]

StepsMode = Literal["app", "all"]
ArgsMode = Literal["resolved", "written", "off"]

#: Libraries whose keywords are bookkeeping, not steps, under ``steps=app``.
DEFAULT_BOOKKEEPING = ("BuiltIn", "Collections", "String", "DateTime")
#: A step records at most this many arguments ...
MAX_ARGS = 8
#: ... of at most this many characters each (longer ones end with ``…``).
MAX_ARG_CHARS = 80
#: An argument is never recorded with its values when its text names one of these (a
#: variable ``${PASSWORD}``, an item ``${LOGIN}[password]``, a named ``password=${PIN}``).
SECRET_NAMES = re.compile(r"(?i)pass|pwd|secret|token|key|credential|auth|cookie|session|pin\b")
#: Keywords of BuiltIn that can act on the application: always steps.
ACTING_BUILTIN = frozenset(
    {"callmethod", "evaluate", "importlibrary", "importresource", "importvariables",
     "setlibrarysearchorder", "reloadlibrary"}
)  # fmt: skip
_MASK = "***"
#: ``scheme://user:password@host``: the credentials of a URL.
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")


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
        if library == "BuiltIn" and _normal(name) in ACTING_BUILTIN:
            return False  # Call Method, Evaluate: they can act
        # A keyword that runs another keyword is a step: its inner keyword is never gated.
        return not runs_keywords(library, name)

    def arguments(self, args: Sequence[Any]) -> tuple[list[str] | None, list[str]]:
        """Return a step's arguments as the log records them (None with ``record_args=off``),
        and the secret values among them (to be kept out of its failure message too)."""
        if self.record_args == "off":
            return None, []
        recorded: list[str] = []
        secrets: list[str] = []
        for index, arg in enumerate(args):
            if index == MAX_ARGS:
                recorded.append(f"… ({len(args)} arguments)")
                break
            text = str(arg)
            if self.record_args == "resolved":
                text = _resolve(text, secrets)
            recorded.append(text if len(text) <= MAX_ARG_CHARS else text[: MAX_ARG_CHARS - 1] + "…")
        return recorded, secrets


def runs_keywords(library: str, name: str) -> bool:
    """Return True for a keyword that runs other keywords (``Run Keyword If``, ``Wait Until
    Keyword Succeeds``)."""
    return bool(RUN_KW_REGISTER.is_run_keyword(library, name))


def redact(text: str, secrets: Sequence[str]) -> str:
    """Return ``text`` without the given secret values and without URL credentials."""
    for secret in secrets:
        if len(secret) >= 3:
            text = text.replace(secret, _MASK)
    return _URL_CREDENTIALS.sub(f"{_MASK}:{_MASK}@", text)


def _normal(name: str) -> str:
    return name.lower().replace(" ", "").replace("_", "")


def _resolve(written: str, secrets: list[str]) -> str:
    """Return one argument with its variables' values, or ``***`` when it names a secret
    (the value then goes to ``secrets``)."""
    if "${{" in written:
        return written  # inline Python: evaluating it again could act twice
    uses = search_variable(written, ignore_errors=True)
    ctx = EXECUTION_CONTEXTS.current
    if not uses or ctx is None:
        return redact(written, ())
    try:
        value = ctx.variables.replace_scalar(written)
    except Exception:  # an unresolvable variable: RF reports it; the log keeps what was written
        return redact(written, ())
    if SECRET_NAMES.search(written) or type(value).__name__ == "Secret":
        secrets.extend(_texts(value))
        return _MASK
    return redact(str(value), ())


def _texts(value: Any) -> list[str]:
    """Return the text of a secret value, and of each item of a list or dict value."""
    if isinstance(value, dict):
        return [str(v) for v in value.values()] + [str(value)]
    if isinstance(value, list | tuple):
        return [str(v) for v in value] + [str(value)]
    return [str(value)]
