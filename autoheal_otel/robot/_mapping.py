"""How a failed Robot Framework keyword becomes an auto-heal outcome.

A failure is described by the keyword's name, the failure message and the names of the
exception classes behind it (with their base classes). Rules are tried in order: the user's
rules from a mapping file first, then the built-in ones; the first rule whose every condition
matches gives the outcome; nothing matching gives ``error``.

Built-in rules (``DEFAULT_RULES``):

- RF timeouts (``Test timeout 5 seconds exceeded.``, ``Keyword timeout ...``) → watchdog_timeout;
- element not found or not visible: SeleniumLibrary's ``ElementNotFound`` and its
  ``... not found.`` / ``... not visible after ...`` / ``... did not appear in ...`` messages,
  Selenium's ``NoSuchElementException`` family, the Browser library's ``waiting for locator``
  timeouts → target_not_found;
- an assertion keyword (name matching ``assertion_keywords``, default ``Should``) failing
  after an action step of the same task, or a step failing with an ``AssertionError`` raised
  inside it (a user keyword that acts and then verifies) → postcondition_failed.

Invariant: ``classify`` is a pure function of its arguments and the loaded rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base._errors import InvalidInputError
from ..base._models import Outcome

__all__ = ["DEFAULT_ASSERTION_KEYWORDS", "DEFAULT_RULES", "OutcomeMapping", "OutcomeRule"]

#: Keyword names that verify rather than act (``Should Be Equal``, ``Title Should Be``, ...).
DEFAULT_ASSERTION_KEYWORDS = r"(?i)\bshould\b"

_FAILING = tuple(o for o in Outcome if o is not Outcome.SUCCESS)
_RULE_KEYS = frozenset({"exception", "message", "keyword", "outcome"})
_FILE_KEYS = frozenset({"rules", "assertion_keywords", "validating_keywords", "defaults"})


@dataclass(frozen=True)
class OutcomeRule:
    """One row of the mapping: conditions (all must match) and the outcome they give.

    Args:
        outcome: the failing outcome to report.
        exception: an exception class name (matched against the class and its bases).
        message: a regular expression searched in the failure message.
        keyword: a regular expression searched in the keyword's name.
    """

    outcome: Outcome
    exception: str | None = None
    message: re.Pattern[str] | None = None
    keyword: re.Pattern[str] | None = None

    def matches(self, keyword: str, message: str, exceptions: frozenset[str]) -> bool:
        """Return True when every condition of the rule holds for this failure."""
        if self.exception is not None and self.exception not in exceptions:
            return False
        if self.message is not None and not self.message.search(message):
            return False
        return self.keyword is None or bool(self.keyword.search(keyword))


def _rule(outcome: Outcome, *, exception: str | None = None, message: str | None = None) -> Any:
    return OutcomeRule(outcome, exception, re.compile(message, re.S) if message else None)


_NOT_FOUND_EXCEPTIONS = (
    "ElementNotFound",  # SeleniumLibrary
    "NoSuchElementException",  # Selenium
    "ElementNotVisibleException",
    "ElementNotInteractableException",
    "StaleElementReferenceException",
)

DEFAULT_RULES: tuple[OutcomeRule, ...] = (
    _rule(Outcome.WATCHDOG_TIMEOUT, exception="TimeoutExceeded"),
    _rule(Outcome.WATCHDOG_TIMEOUT, message=r"^(Test|Task|Keyword) timeout .+ exceeded\.$"),
    *(_rule(Outcome.TARGET_NOT_FOUND, exception=name) for name in _NOT_FOUND_EXCEPTIONS),
    _rule(Outcome.TARGET_NOT_FOUND, message=r"(?i)\bnot (found|visible)\b"),
    _rule(Outcome.TARGET_NOT_FOUND, message=r"(?i)\bdid not (appear|become visible)\b"),
    _rule(Outcome.TARGET_NOT_FOUND, message=r"waiting for (selector|locator|get_by)"),  # Browser
)


def _pattern(field: str, value: Any) -> re.Pattern[str]:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(field, value, "must be a non-empty regular expression")
    try:
        return re.compile(value, re.S)
    except re.error as exc:
        raise InvalidInputError(
            field, value, f"must be a valid regular expression ({exc})"
        ) from None


@dataclass(frozen=True)
class OutcomeMapping:
    """The ordered rules that turn a keyword failure into an outcome.

    Args:
        rules: the user's rules, tried before the built-in ones.
        assertion_keywords: a regular expression naming the keywords that verify.
        use_defaults: False to try the user's rules only.
        validating_keywords: a regular expression naming the steps that check their own
            work (a passing run is a validated success), or None.
    """

    rules: tuple[OutcomeRule, ...] = ()
    assertion_keywords: re.Pattern[str] = re.compile(DEFAULT_ASSERTION_KEYWORDS)
    use_defaults: bool = True
    validating_keywords: re.Pattern[str] | None = None

    def validates_itself(self, keyword: str) -> bool:
        """Return True when the mapping declares ``keyword`` a step that checks its own work."""
        return self.validating_keywords is not None and bool(
            self.validating_keywords.search(keyword)
        )

    def is_assertion(self, keyword: str) -> bool:
        """Return True when ``keyword`` verifies a postcondition rather than acting."""
        return bool(self.assertion_keywords.search(keyword))

    def classify(
        self, keyword: str, message: str, exceptions: Iterable[str], after_action: bool
    ) -> Outcome:
        """Return the outcome of a failed keyword.

        Args:
            keyword: the keyword's name as called (``Click Button``).
            message: the failure message RF reports.
            exceptions: class names of the exception and of its base classes.
            after_action: True when an action step of the same task ran before this one.
        """
        names = frozenset(exceptions)
        for rule in self.rules:
            if rule.matches(keyword, message, names):
                return rule.outcome
        if self.use_defaults:
            for rule in DEFAULT_RULES:
                if rule.matches(keyword, message, names):
                    return rule.outcome
            assertion = self.is_assertion(keyword)
            # An assertion step verifies the action before it; a composite step (a user
            # keyword) whose own assertion failed has acted first by itself.
            if (assertion or "AssertionError" in names) and (after_action or not assertion):
                return Outcome.POSTCONDITION_FAILED
        return Outcome.ERROR

    @classmethod
    def load(cls, path: str | Path) -> OutcomeMapping:
        """Read a mapping file (JSON) and validate it.

        The file holds ``{"rules": [{"exception"|"message"|"keyword": ..., "outcome": ...}],
        "assertion_keywords": "<regex>", "validating_keywords": "<regex>", "defaults": true}``;
        every key is optional.

        Raises:
            InvalidInputError: the file cannot be read, is not JSON, or a field is invalid;
                the error names the field (``mapping.rules[2].outcome``) and the value.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInputError(
                "mapping", str(path), f"must be a readable file ({exc.strerror})"
            ) from None
        except json.JSONDecodeError as exc:
            raise InvalidInputError("mapping", str(path), f"must be JSON ({exc})") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> OutcomeMapping:
        """Build a mapping from the parsed JSON of a mapping file (see :meth:`load`)."""
        if not isinstance(data, dict):
            raise InvalidInputError("mapping", data, "must be a JSON object")
        unknown = sorted(set(data) - _FILE_KEYS)
        if unknown:
            raise InvalidInputError(
                f"mapping.{unknown[0]}",
                data[unknown[0]],
                f"is not a known key (known: {', '.join(sorted(_FILE_KEYS))})",
            )
        rules_data = data.get("rules", [])
        if not isinstance(rules_data, list):
            raise InvalidInputError("mapping.rules", rules_data, "must be a list")
        rules = tuple(_parse_rule(f"mapping.rules[{i}]", r) for i, r in enumerate(rules_data))
        defaults = data.get("defaults", True)
        if not isinstance(defaults, bool):
            raise InvalidInputError("mapping.defaults", defaults, "must be true or false")
        assertion = _pattern(
            "mapping.assertion_keywords", data.get("assertion_keywords", DEFAULT_ASSERTION_KEYWORDS)
        )
        validating = (
            _pattern("mapping.validating_keywords", data["validating_keywords"])
            if "validating_keywords" in data
            else None
        )
        return cls(rules, assertion, defaults, validating)


def _parse_rule(field: str, data: Any) -> OutcomeRule:
    if not isinstance(data, dict):
        raise InvalidInputError(field, data, "must be a JSON object")
    unknown = sorted(set(data) - _RULE_KEYS)
    if unknown:
        raise InvalidInputError(
            f"{field}.{unknown[0]}",
            data[unknown[0]],
            f"is not a known key (known: {', '.join(sorted(_RULE_KEYS))})",
        )
    outcome = data.get("outcome")
    if outcome not in {o.value for o in _FAILING}:
        raise InvalidInputError(
            f"{field}.outcome", outcome, f"must be one of {', '.join(o.value for o in _FAILING)}"
        )
    if not {"exception", "message", "keyword"} & set(data):
        raise InvalidInputError(
            field, data, "must have at least one of exception, message, keyword"
        )
    exception = data.get("exception")
    if exception is not None and (not isinstance(exception, str) or not exception.isidentifier()):
        raise InvalidInputError(f"{field}.exception", exception, "must be an exception class name")
    return OutcomeRule(
        Outcome(outcome),
        exception,
        _pattern(f"{field}.message", data["message"]) if "message" in data else None,
        _pattern(f"{field}.keyword", data["keyword"]) if "keyword" in data else None,
    )
