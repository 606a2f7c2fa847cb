"""``autoheal query``: run a packaged query, its parameters typed from the query's header.

``--param KEY=VALUE`` values are text on the command line and parsed by the type the query
declares (lists as ``a,b``); parameters left out take their declared default, so most queries
run with none. ``autoheal query NAME --help`` lists a query's parameters.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from typing import Any

from ..analytics import AuditAnalytics, load_query, query_names, query_params
from ..analytics._params import bind_params, describe
from ..base._errors import InvalidInputError
from ._common import EXIT_OK, Usage, close_matches, command_name, emit, need_log, table

__all__ = ["run_query"]


def _check_name(name: str) -> str:
    if name not in query_names():
        raise Usage(
            f"no query named {name!r}{close_matches(name, query_names())}",
            f"`{command_name()} query` lists them",
        )
    return load_query(name)


def _help(name: str) -> list[str]:
    sql = _check_name(name)
    lines = [f"usage: autoheal query {name} [--param KEY=VALUE ...] [--json] [--data-dir D]", ""]
    lines.append(describe(sql))
    params = query_params(name)
    lines.append("")
    lines.append("parameters:" if params else "parameters: none")
    for p in params:
        default = "required" if p.default is None else f"default {p.default}"
        lines.append(f"  {p.name} ({p.type}, {default}): {p.help}")
        lines.append(f"      expects {p.expects}")
    return lines


def run_query(args: argparse.Namespace) -> int:
    """Run ``autoheal query`` (list, help or a query); return the exit code."""
    if args.help:
        print("\n".join(_help(args.name)) if args.name else args.query_help.rstrip())
        return EXIT_OK
    if not args.name:
        listing = [{"query": n, "description": describe(load_query(n))} for n in query_names()]
        emit(
            args,
            listing,
            lambda: print(
                "\n".join(
                    f"{q['query']:<25} {textwrap.shorten(q['description'], 53, placeholder='...')}"
                    for q in listing
                )
            ),
        )
        return EXIT_OK
    sql = _check_name(args.name)
    given: dict[str, str] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise Usage(
                f"--param must be KEY=VALUE, but was {item!r}",
                f"`{command_name()} query {args.name} --help` lists the parameters",
            )
        given[key.strip()] = value
    try:
        params: dict[str, Any] = bind_params(sql, given)
    except InvalidInputError as exc:
        raise Usage(
            f"query {args.name}: --param {exc}",
            f"`{command_name()} query {args.name} --help` lists the parameters",
        ) from exc
    need_log(args.data_dir)
    with AuditAnalytics(args.data_dir) as db:
        rows = db.query(args.name, **params)
    if args.wide:
        emit(args, rows, lambda: table(rows, cell=10_000))
    else:  # fit the terminal (80 columns when it is not one)
        fit = shutil.get_terminal_size((80, 24)).columns
        emit(args, rows, lambda: table(rows, width=fit, cell=40))
    return EXIT_OK
