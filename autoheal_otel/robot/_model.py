"""Reading Robot Framework's running model: what is a step, and what failed.

Pure functions over RF's objects, used by :class:`~._listener.AutoHealListener`: a step is a
keyword called from a task body (through FOR/WHILE/IF/TRY/GROUP blocks), never a setup,
teardown or nested keyword, and never one of :class:`AutoHealLibrary`'s own keywords.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from robot import running
from robot.running.context import EXECUTION_CONTEXTS  # type: ignore[import-untyped]
from robot.utils import normalize  # type: ignore[import-untyped]

__all__ = [
    "dry_run",
    "exception_names",
    "first_keyword",
    "is_own_library",
    "is_step",
    "library_of",
    "parent_setup_failed",
]

# Control structures a step may sit in; anything else between a keyword and its task (a user
# keyword, a library keyword running another one) makes it an internal, not a step.
_BLOCK_NAMES = ("For", "ForIteration", "While", "WhileIteration", "If", "IfBranch", "Try")
_BLOCKS = tuple(
    getattr(running.model, name)
    for name in (*_BLOCK_NAMES, "TryBranch", "Group")
    if hasattr(running.model, name)  # Group exists from RF 7.2
)
_OWN_LIBRARY = "AutoHealLibrary"
_OWN_KEYWORDS = frozenset({"reportmatchconfidence", "getautohealsettings"})


def is_step(data: Any) -> bool:
    """Return True for a keyword called from a task body (possibly through control blocks)."""
    if data.type != data.KEYWORD:
        return False  # SETUP, TEARDOWN
    parent = data.parent
    while isinstance(parent, _BLOCKS):
        parent = parent.parent
    return isinstance(parent, running.TestCase)


def is_own_library(implementation: Any) -> bool:
    """Return True for a keyword of :class:`AutoHealLibrary` (whatever name it was imported as)."""
    code = getattr(getattr(implementation, "owner", None), "code", None)
    return getattr(code, "__name__", None) == _OWN_LIBRARY and "autoheal_otel" in str(
        getattr(code, "__module__", "")
    )


def first_keyword(body: Any, skip: Callable[[Any], bool] | None = None) -> Any:
    """Return the first keyword call of a task body (looking into its blocks), or None.

    Calls of AutoHealLibrary's keywords are skipped by name: they are never steps; so are
    the calls ``skip`` says are not steps (bookkeeping).
    """
    for item in body:
        if isinstance(item, running.Keyword):
            own = normalize(str(item.name), ignore="_").rsplit(".", 1)[-1] in _OWN_KEYWORDS
            if not own and not (skip is not None and skip(item)):
                return item
            continue
        inner = getattr(item, "body", None)
        found = first_keyword(inner, skip) if inner is not None else None
        if found is not None:
            return found
    return None


def library_of(name: str) -> str | None:
    """Return the library a keyword call resolves to now (None: a user keyword, or unknown)."""
    ctx = EXECUTION_CONTEXTS.current
    if ctx is None:
        return None
    try:
        runner = ctx.namespace.get_runner(name)
    except Exception:  # RF reports a keyword it cannot resolve when it runs it
        return None
    if type(runner).__name__ != "LibraryKeywordRunner":
        return None
    owner = getattr(getattr(runner, "keyword", None), "owner", None)
    name_of = getattr(owner, "name", None)
    return str(name_of) if name_of else None


def exception_names() -> frozenset[str]:
    """Return the class names (with bases) of the failure RF is reporting right now.

    ``end_keyword`` runs inside RF's ``StatusReporter.__exit__``, while the keyword's exception
    is being handled. A library keyword's exception is the library's own; a user keyword's is
    RF's wrapper, whose inner failures (``get_errors()``) were raised while handling the
    library's exceptions (their ``__context__``).
    """
    names: set[str] = set()
    todo = [sys.exc_info()[1]]
    seen = 0
    while todo and seen < 32:
        exc = todo.pop()
        if exc is None:
            continue
        seen += 1
        names.update(cls.__name__ for cls in type(exc).__mro__)
        if getattr(exc, "timeout", False) or getattr(exc, "keyword_timeout", False):
            names.add("TimeoutExceeded")
        todo.append(exc.__context__)
        get_errors = getattr(exc, "get_errors", None)
        if get_errors is not None:
            todo.extend(e for e in get_errors() if e is not exc)
    return frozenset(names)


def dry_run() -> bool:
    """Return True during RF's dry run (never gated)."""
    ctx = EXECUTION_CONTEXTS.current
    return bool(ctx is not None and ctx.dry_run)


def parent_setup_failed(result: Any) -> bool:
    """Return True when a suite setup above the task failed (RF will not run the task)."""
    suite = getattr(result, "parent", None)
    while suite is not None:
        setup = getattr(suite, "setup", None)
        # An absent setup is a falsy placeholder (whose status is not to be read).
        if setup and getattr(setup, "name", None) and getattr(setup, "status", None) == "FAIL":
            return True
        suite = getattr(suite, "parent", None)
    return False
