"""The ``autoheal`` command.

Exit codes: 0 success; 1 the command ran and found a problem (an invalid policy, an illegal
transition, a replay that does not match, a failed verification, nothing to read, a
read-only data directory for a command that writes); 2 bad usage; 141 when the reader of the
output went away (``autoheal query ... | head``). Errors are one line on standard error saying
what was wrong and what to do, never a traceback; with ``--json`` they are one JSON object
``{"error", "hint", "exit_code"}`` on standard output instead. Human output by default,
``--json`` for scripts; long work (replay, compaction) shows progress on standard error when
it is a terminal.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence

from ..base._errors import AutoHealError, PolicyError
from ._args import build_parser
from ._common import EXIT_PROBLEM, Problem, Usage, command_name
from ._terminal import SafeText

__all__ = ["main"]

EXIT_PIPE = 141  # what a shell reports for a command stopped by SIGPIPE
#: The optional modules, by the extra that installs them.
_EXTRA_OF = {
    "faiss": "faiss",
    "numpy": "faiss",
    "opentelemetry.sdk": "otel",
    "opentelemetry.exporter": "otel",
    "prometheus_client": "otel",
    "redis": "fleet",
    "bcrypt": "serve",
    "yaml": "serve",
}
_OPTIONAL = tuple(_EXTRA_OF)


def _handlers() -> dict[str, Callable[[argparse.Namespace], int]]:
    from ._commands import run_compact, run_policy, run_replay, run_status, run_what_if
    from ._fleet import run_fleet
    from ._lab import run_label, run_shadow, run_tune
    from ._operator import run_force, run_resume, run_versions
    from ._pin import run_pin
    from ._query import run_query
    from ._reporting import run_report

    return {
        "demo": _demo,
        "status": run_status,
        "force": run_force,
        "resume": run_resume,
        "versions": run_versions,
        "query": run_query,
        "replay": run_replay,
        "what-if": run_what_if,
        "compact": run_compact,
        "report": run_report,
        "policy": run_policy,
        "serve": _serve,
        "fleet": run_fleet,
        "label": run_label,
        "tune": run_tune,
        "shadow": run_shadow,
        "pin": run_pin,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        # argparse would only say a COMMAND is required, never naming what it was given.
        parser.error(f"unrecognized option {argv[0]!r}: a command comes first")
    args = parser.parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    streams = sys.stdout, sys.stderr
    if args.command != "demo":  # the demo's live view writes its own escapes, and only those
        sys.stdout, sys.stderr = SafeText(streams[0]), SafeText(streams[1])
    try:
        return _run(args, as_json)
    finally:
        sys.stdout, sys.stderr = streams


def _run(args: argparse.Namespace, as_json: bool) -> int:
    """Run the command; turn whatever reaches the top level into one line and an exit code."""
    try:
        code = _handlers()[args.command](args)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush of
        # the dead pipe from printing a warning.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI's top level: whatever happens, one line, no traceback
        message, hint, code = _describe(exc, args)
        _report_error(message, hint, code, as_json)
        return code


def _describe(exc: Exception, args: argparse.Namespace) -> tuple[str, str, int]:
    """Return (message, what to do, exit code) for an error that reached the top level."""
    command = f"autoheal {args.command}"
    if isinstance(exc, Problem):
        return str(exc), exc.hint, exc.exit_code
    if isinstance(exc, PolicyError):
        return (
            f"invalid policy: {exc}",
            f"fix the file or field named above; `{command_name()} policy schema` lists every setting",
            EXIT_PROBLEM,
        )
    if isinstance(exc, AutoHealError):
        return str(exc), "", EXIT_PROBLEM
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith(_OPTIONAL):
        return (
            f"{command} needs the optional extras ({exc.name} is not installed)",
            "pip install 'autoheal-otel[" + _extra(str(exc.name)) + "]'",
            EXIT_PROBLEM,
        )
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return (
                f"cannot write{where}: {exc.strerror}",
                "run it where the data directory is writable"
                + (" (or pass --out elsewhere)" if args.command == "report" else ""),
                EXIT_PROBLEM,
            )
        return f"{command}:{where}: {exc.strerror or exc}", "", EXIT_PROBLEM
    return (
        f"{command} failed: {type(exc).__name__}: {exc}",
        "please report this with the command you ran",
        EXIT_PROBLEM,
    )


def _extra(module: str) -> str:
    """Return the extra that installs ``module`` (the one missing, not every extra)."""
    return next((extra for name, extra in _EXTRA_OF.items() if module.startswith(name)), "otel")


def _report_error(message: str, hint: str, code: int, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": message, "hint": hint, "exit_code": code}))
        return
    print(f"autoheal: {message}{' — ' + hint if hint else ''}", file=sys.stderr)


# -- the commands that start long-running work ------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    # The optional extras first, so a plain install fails before it writes anything.
    import faiss  # noqa: F401
    import numpy  # noqa: F401

    from ._demo import run_demo

    return run_demo(args.data_dir, as_json=args.json, live=False if args.no_live else None)


def _serve(args: argparse.Namespace) -> int:
    # The otel extra first, so a plain install gets one line naming it.
    import opentelemetry.exporter.prometheus
    import opentelemetry.sdk.metrics  # noqa: F401

    from ..server._http import is_loopback
    from ..server._web_config import WebConfigError, load_web_config
    from ._serve import run_serve

    if args.web_config is None and not args.insecure and not is_loopback(args.host):
        raise Usage(
            f"refusing to serve {args.host} in plain HTTP without a login",
            "pass --web-config FILE (TLS and basic auth), or --insecure to accept that",
        )
    try:
        web = load_web_config(args.web_config) if args.web_config is not None else None
    except WebConfigError as exc:
        raise Usage(str(exc), "fix the key named above") from exc
    try:
        return run_serve(
            args.host,
            args.port,
            args.data_dir,
            args.policy,
            args.simulate,
            args.pace,
            args.duration,
            web=web,
        )
    except OSError as exc:
        raise Problem(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror}",
            "check --host, and choose another --port if that one is in use",
        ) from exc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
