"""The parameters each packaged query declares, parsed from the query's own header.

A query file declares every ``$name`` it uses in a header line, next to the SQL, so the
declaration has one source::

    -- param as_of timestamp = now: the instant to look from
    -- param limit count = 20: how many steps to list
    -- param writer text: the writer to leave out         (no default: required)

Types: ``text``; ``count`` (a whole number from 0 to 10^9); ``seconds`` (0 to ten years) and
``number`` (finite, at most 10^12 in size); ``timestamp`` (ISO 8601 in UTC from 1970 to 9999, a
date alone, or ``now``); ``triggers`` (a comma-separated list of trigger names, or ``all``).
A declaration may narrow a number's range: ``-- param target_precision number in [0, 1] =
0.95: ...``. Every bound is checked here, so a value DuckDB or Python cannot take is a usage
error naming the parameter, never an internal one. Invariant: the declared names are exactly
the ``$name`` placeholders of the SQL (a test checks every packaged query).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..base._errors import InvalidInputError
from ..base._models import Trigger

__all__ = ["QueryParam", "bind_params", "describe", "expand", "parse_params", "window_predicate"]

_DECL = re.compile(
    r"^-- param (\w+) (\w+)(?: in \[([-\d.e]+), ([-\d.e]+)\])?(?: = (\S*))?: (.+)$", re.M
)
#: The bounds of each number type (what DuckDB and the standard library can take).
_MAX_COUNT = 10**9
_MAX_SECONDS = 10 * 365.25 * 86_400
_MAX_NUMBER = 1e12
_TRIGGERS = [t.value for t in Trigger]
_EXPECTS = {
    "text": "any text",
    "count": f"a whole number from 0 to {_MAX_COUNT} (e.g. 20)",
    "seconds": f"a number of seconds from 0 to {_MAX_SECONDS:.0f} (ten years; e.g. 600)",
    "number": "a number (e.g. 20)",
    "timestamp": "an ISO 8601 UTC time from 1970 to 9999 such as 2026-11-26 or"
    " 2026-11-26T10:00:00, or now",
    "triggers": f"a comma-separated list of {', '.join(_TRIGGERS)} (or all)",
}


@dataclass(frozen=True)
class QueryParam:
    """One declared parameter: its name, type, default (None: required) and help."""

    name: str
    type: str
    default: str | None
    help: str
    #: A declared range for a number (inclusive), or None.
    bounds: tuple[float, float] | None = None

    @property
    def expects(self) -> str:
        """Say in words what a value of this parameter looks like."""
        if self.bounds is not None:
            low, high = self.bounds
            return f"a number from {low:g} to {high:g}"
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
            count = int(text) if text.isdigit() and len(text) <= 12 else -1
            return count if 0 <= count <= _MAX_COUNT else None
        if self.type in ("seconds", "number"):
            try:
                number = float(text)
            except ValueError:
                return None
            low, high = self.bounds or (
                (0.0, _MAX_SECONDS) if self.type == "seconds" else (-_MAX_NUMBER, _MAX_NUMBER)
            )
            if not math.isfinite(number) or not low <= number <= high:
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
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return None
    if not 1970 <= moment.year <= 9999:  # windows reach back from it: no year 1 or 10000
        return None
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
    for name, kind, low, high, default, help_text in _DECL.findall(sql):
        if kind not in _EXPECTS:
            raise ValueError(f"query parameter {name} has an unknown type {kind!r}")
        bounds = (float(low), float(high)) if low else None
        params.append(QueryParam(name, kind, default if default != "" else None, help_text, bounds))
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


def window_predicate(column: str, seconds: str) -> str:
    """Return the SQL that is true where ``column`` lies in a window ``$seconds`` long ending at
    ``$as_of``: the one definition of the sliding window in SQL.

    It mirrors the in-memory window (:class:`~autoheal_otel.core._windows.SlidingWindow`): an
    entry counts while ``as_of - ts < window`` (the bound rounded up to the microsecond, the
    log's resolution) and never from the future.
    """
    return (
        f"({column} <= $as_of::TIMESTAMP AND {column} > $as_of::TIMESTAMP"
        f" - to_microseconds(CAST(ceil(${seconds}::DOUBLE * 1000000) AS BIGINT)))"
    )


_IN_WINDOW = re.compile(r"in_window\((\w+(?:\.\w+)?), \$([a-z_]+)\)")


def expand(text: str) -> str:
    """Return a packaged query's SQL with ``in_window(column, $seconds)`` written out
    (:func:`window_predicate`), so the text runs in any DuckDB."""
    return _IN_WINDOW.sub(lambda m: window_predicate(m.group(1), m.group(2)), text)
