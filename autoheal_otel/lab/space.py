"""A search space of policies: ``field=a..b`` and ``field=a,b,c`` over a base policy.

Each dimension names a policy field by its dotted path as the policy file spells it
(``breakers.workflow.failure_threshold``) and lists its values: ``a,b,c`` as given, ``a..b``
every whole number from a to b when both are whole (at most :data:`MAX_VALUES`), else
:data:`FLOAT_POINTS` evenly spaced numbers. Every candidate is validated by
:class:`~autoheal_otel.PolicyConfig` itself, so a value out of a field's bounds is an error
naming the field and the value, before anything is replayed.

Invariant: a candidate differs from the base policy only in the space's fields.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..base._errors import InvalidInputError, PolicyError
from ..policy._config import PolicyConfig

__all__ = ["Dimension", "Space", "parse_dimension"]

MAX_VALUES = 1000
FLOAT_POINTS = 5


@dataclass(frozen=True)
class Dimension:
    """One policy field and the values to try."""

    path: tuple[str, ...]
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        """Return the field's dotted path."""
        return ".".join(self.path)


def _number(text: str, spec: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError("space", spec, f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInputError("space", spec, f"{text!r} is not a finite number")
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def _scalar(text: str, spec: str) -> Any:
    """Return a list item as JSON would read it (numbers, true/false), else as text."""
    text = text.strip()
    if not text:
        raise InvalidInputError("space", spec, "has an empty value")
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_dimension(spec: str, base: PolicyConfig) -> Dimension:
    """Parse ``field=a..b`` or ``field=a,b,c`` against ``base`` (the field must exist).

    Raises:
        InvalidInputError: the spec is malformed, names no policy field, or a range is empty
            or too large; the error names the spec.
    """
    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise InvalidInputError("space", spec, "must be FIELD=A..B or FIELD=A,B,C")
    path = tuple(name.split("."))
    node: Any = base.to_dict()
    for part in path:
        if not isinstance(node, dict) or part not in node:
            raise InvalidInputError("space", spec, f"{name} is not a policy field")
        node = node[part]
    if isinstance(node, dict | list):
        raise InvalidInputError("space", spec, f"{name} is a section, not a field")
    low_text, dots, high_text = values.partition("..")
    if dots:
        low, high = _number(low_text.strip(), spec), _number(high_text.strip(), spec)
        if high < low:
            raise InvalidInputError("space", spec, f"the range {low}..{high} is empty")
        if isinstance(low, int) and isinstance(high, int):
            if high - low + 1 > MAX_VALUES:
                raise InvalidInputError("space", spec, f"spans more than {MAX_VALUES} values")
            items: tuple[Any, ...] = tuple(range(low, high + 1))
        else:
            step = (high - low) / (FLOAT_POINTS - 1)
            items = tuple(round(low + i * step, 6) for i in range(FLOAT_POINTS))
    else:
        items = tuple(dict.fromkeys(_scalar(v, spec) for v in values.split(",")))
    return Dimension(path, items)


def _with(data: dict[str, Any], path: Sequence[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@dataclass(frozen=True)
class Space:
    """Policies around a base: the cartesian product of the dimensions' values."""

    base: PolicyConfig
    dimensions: tuple[Dimension, ...]

    @property
    def size(self) -> int:
        """Return how many candidates the full grid holds."""
        size = 1
        for d in self.dimensions:
            size *= len(d.values)
        return size

    def policy(self, choice: Sequence[Any]) -> PolicyConfig:
        """Return the base with one value per dimension.

        Raises:
            InvalidInputError: the policy refuses a value (the field and value are named).
        """
        data = copy.deepcopy(self.base.to_dict())
        for dim, value in zip(self.dimensions, choice, strict=True):
            _with(data, dim.path, value)
        try:
            return PolicyConfig.from_dict(data)
        except PolicyError as exc:
            raise InvalidInputError("space", _describe(self.dimensions, choice), str(exc)) from exc

    def grid(self) -> Iterator[tuple[Any, ...]]:
        """Yield every choice, in order."""
        return itertools.product(*(d.values for d in self.dimensions))

    def sample(self, count: int, seed: int) -> list[tuple[Any, ...]]:
        """Return ``count`` distinct choices drawn at random (all of them if fewer)."""
        if count >= self.size:
            return list(self.grid())
        rng = random.Random(seed)
        seen: dict[tuple[Any, ...], None] = {}
        while len(seen) < count:
            seen[tuple(rng.choice(d.values) for d in self.dimensions)] = None
        return list(seen)

    def describe(self, choice: Sequence[Any]) -> str:
        """Return a choice as ``field=value`` pairs."""
        return _describe(self.dimensions, choice)


def _describe(dimensions: Sequence[Dimension], choice: Sequence[Any]) -> str:
    return " ".join(f"{d.name}={v}" for d, v in zip(dimensions, choice, strict=True))
