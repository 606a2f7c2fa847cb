"""The parameters each packaged query declares, parsed from the query's own header.

A query file declares every ``$name`` it uses in a header line, next to the SQL, so the
declaration has one source::

    -- param as_of timestamp = now: the instant to look from
    -- param limit count = 20: how many steps to list
    -- param writer text: the writer to leave out         (no default: required)

Types: ``text``; ``count`` (a whole number >= 0); ``seconds`` and ``number`` (a number, >= 0
for seconds); ``timestamp`` (ISO 8601 in UTC, a date alone, or ``now``); ``triggers`` (a
comma-separated list of trigger names, or ``all``). Invariant: the declared names are exactly
the ``$name`` placeholders of the SQL (a test checks every packaged query).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._errors import InvalidInputError
from .._models import Trigger

__all__ = ["QueryParam", "bind_params", "describe", "parse_params"]

_DECL = re.compile(r"^-- param (\w+) (\w+)(?: = (\S*))?: (.+)$", re.M)
_TRIGGERS = [t.value for t in Trigger]
_EXPECTS = {
    "text": "any text",
    "count": "a whole number >= 0 (e.g. 20)",
    "seconds": "a number of seconds >= 0 (e.g. 600)",
    "number": "a number (e.g. 20)",
    "timestamp": "an ISO 8601 UTC time such as 2026-11-26 or 2026-11-26T10:00:00, or now",
    "triggers": f"a comma-separated list of {', '.join(_TRIGGERS)} (or all)",
}


@dataclass(frozen=True)
class QueryParam:
    """One declared parameter: its name, type, default (None: required) and help."""

    name: str
    type: str
    default: str | None
    help: str

    @property
    def expects(self) -> str:
        """Say in words what a value of this parameter looks like."""
        return _EXPECTS[self.type]

    def parse(self, text: str) -> Any:
        """Return the value the query binds for ``text``.

        Raises:
            InvalidInputError: ``text`` is not a value of this type (the message names the
                parameter and what it expects).
        """
        value = self._convert(text.strip())
        if value is None:
            raise InvalidInputError(self.name, text, f"must be {self.expects}")
        return value

    def _convert(self, text: str) -> Any:
        if self.type == "text":
            return "" if text in ("''", '""') else text
        if self.type == "count":
            return int(text) if text.isdigit() else None
        if self.type in ("seconds", "number"):
            try:
                number = float(text)
            except ValueError:
                return None
            if not math.isfinite(number) or (self.type == "seconds" and number < 0):
                return None
            return number
        if self.type == "timestamp":
            return _timestamp(text)
        return _triggers(text)


def _timestamp(text: str) -> str | None:
    if text.lower() == "now":
        moment = datetime.now(UTC)
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ")


def _triggers(text: str) -> list[str] | None:
    if text.lower() == "all":
        return list(_TRIGGERS)
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or any(name not in _TRIGGERS for name in names):
        return None
    return names


def parse_params(sql: str) -> list[QueryParam]:
    """Return the parameters a query's header declares, in order."""
    params = []
    for name, kind, default, help_text in _DECL.findall(sql):
        if kind not in _EXPECTS:
            raise ValueError(f"query parameter {name} has an unknown type {kind!r}")
        params.append(QueryParam(name, kind, default if default != "" else None, help_text))
    return params


def bind_params(sql: str, given: dict[str, str]) -> dict[str, Any]:
    """Return every declared parameter's value: ``given`` (text) parsed, else its default.

    Raises:
        InvalidInputError: an undeclared name, a missing required parameter, or a value that
            is not of the parameter's type.
    """
    declared = {p.name: p for p in parse_params(sql)}
    for name in given:
        if name not in declared:
            known = ", ".join(declared) or "no parameters"
            raise InvalidInputError(
                name, given[name], f"is not a parameter of this query ({known})"
            )
    bound = {}
    for name, param in declared.items():
        if name in given:
            bound[name] = param.parse(given[name])
        elif param.default is not None:
            bound[name] = param.parse(param.default)
        else:
            raise InvalidInputError(name, None, f"is required: pass --param {name}=VALUE")
    return bound


def describe(sql: str) -> str:
    """Return the description at the top of a query (its header comment, params left out)."""
    lines = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        if line.startswith(("-- param ", "-- lookback:")):
            continue
        lines.append(line[2:].strip())
    return re.sub(r"\$(\w)", r"\1", " ".join(lines))
