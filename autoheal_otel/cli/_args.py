"""The command line of ``autoheal``: every command, its arguments and their checks.

A bad command line exits 2 with one line naming the argument and what it expects (one JSON
object with ``--json``), never argparse's usage dump or a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .._version import __version__
from ..base._errors import InvalidInputError
from ..base._models import check_text
from ._common import EXIT_USAGE
from ._lab_args import add_lab_commands
from ._pin import add_pin_command

__all__ = ["DEFAULT_DATA_DIR", "build_parser"]

DEFAULT_DATA_DIR = os.environ.get("AUTOHEAL_DATA_DIR", "data")
STATES = ["running", "degraded", "quarantined", "rollback", "paused"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (or JSON), exit 2."""

    wants_json = False

    def error(self, message: str) -> NoReturn:
        hint = f"`{self.prog} --help` shows the usage"
        if _Parser.wants_json:
            print(json.dumps({"error": f"{self.prog}: {message}", "hint": hint, "exit_code": 2}))
        else:
            print(f"{self.prog}: {message}; {hint}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, but was {text!r}")
    return port


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, but was {text!r}")
    return value


def _text(text: str) -> str:
    """An operator's --reason or --actor, under the API's one rule (:func:`check_text`)."""
    try:
        check_text(value=text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(exc.rule) from exc
    return text


def _wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        type=_positive,
        default=3.0,
        metavar="SECONDS",
        help="how long to wait for every running robot to acknowledge the move (default 3)",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="record the move and return without waiting for acknowledgements",
    )


def _fleet_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the fleet's Redis URL (default: fleet.url of --policy)")
    p.add_argument("--namespace", help="the fleet's namespace (default: fleet.namespace)")


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Return the parser of every command (``argv`` only decides the error format)."""
    _Parser.wants_json = "--json" in argv
    parser = _Parser(
        prog="autoheal", description="Keep unattended UI-automation robots running safely."
    )
    parser.add_argument("--version", action="version", version=f"autoheal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help_text: str, data_dir: bool = True, add_help: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, add_help=add_help)
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
        if data_dir:
            p.add_argument(
                "--data-dir",
                type=Path,
                default=Path(DEFAULT_DATA_DIR),
                help=f"the data directory (default: $AUTOHEAL_DATA_DIR or {DEFAULT_DATA_DIR})",
            )
        return p

    demo = command("demo", "run the simulated executor through every state", data_dir=False)
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=Path("demo-data"),
        help="where to leave the outputs (default demo-data; replaced on each run)",
    )
    demo.add_argument(
        "--no-live",
        action="store_true",
        help="print each phase's table one after another instead of redrawing one live table "
        "(the default when the output is not a terminal)",
    )
    status = command("status", "show every workflow's state, counters and global health")
    status.add_argument("--policy", type=Path, help="the policy file in use (default: defaults)")
    force = command("force", "move a workflow to a state by hand (audited)")
    force.add_argument("workflow")
    force.add_argument("state", choices=STATES)
    force.add_argument("--reason", required=True, type=_text)
    force.add_argument("--actor", default=os.environ.get("USER", "operator"), type=_text)
    force.add_argument("--policy", type=Path)
    force.add_argument(
        "--create", action="store_true", help="allow a workflow id the log has never seen"
    )
    force.add_argument(
        "--fleet",
        action="store_true",
        help="move the workflow on every host of the fleet (the fleet section of --policy)",
    )
    _fleet_options(force)
    _wait_options(force)
    resume = command("resume", "release every paused workflow and lift the global pause")
    resume.add_argument("--reason", required=True, type=_text)
    resume.add_argument("--actor", default=os.environ.get("USER", "operator"), type=_text)
    resume.add_argument("--state", choices=["running", "degraded"], default="running")
    resume.add_argument("--policy", type=Path)
    _wait_options(resume)
    versions = command("versions", "list, snapshot, roll back or verify learned artifacts")
    versions.add_argument("action", choices=["list", "snapshot", "rollback", "verify"])
    versions.add_argument(
        "--reason", type=_text, help="why (required by snapshot and rollback: it is recorded)"
    )
    versions.add_argument(
        "--to", default="known_good", help="a set id as listed (s000002), known_good or previous"
    )
    versions.add_argument("--actor", default=os.environ.get("USER", "operator"), type=_text)
    _wait_options(versions)
    query = command(
        "query",
        "run a packaged analytics query over the audit log "
        "(`autoheal query NAME --help` lists its parameters)",
        add_help=False,
    )
    query.add_argument("-h", "--help", action="store_true", help="show this help (or a query's)")
    query.add_argument("name", nargs="?", help="query name (omit to list them)")
    query.add_argument(
        "--wide", action="store_true", help="every column, cells uncut (default: fit the terminal)"
    )
    query.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a query parameter (lists as a,b); left-out parameters take their default",
    )
    query.set_defaults(query_help=query.format_help())
    command("replay", "replay the audit log and check that every decision is reproduced")
    whatif = command("what-if", "replay the audit log with another policy")
    whatif.add_argument("--policy", type=Path, required=True)
    command("compact", "compact closed audit segments to Parquet")
    report = command("report", "write a Markdown and HTML report from the audit log")
    report.add_argument("--workflow", default="", help="one workflow (default: every workflow)")
    report.add_argument(
        "--out",
        type=Path,
        action="append",
        help="a .md or .html file to write (twice for both; default: <data-dir>/report.md "
        "and report.html)",
    )
    serve = command("serve", "serve /health, /status and /metrics (read-only)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=9464, help="port (default 9464; 0: any)")
    serve.add_argument("--policy", type=Path)
    serve.add_argument("--simulate", action="store_true", help="run the simulated executor too")
    serve.add_argument(
        "--pace", type=_positive, default=0.02, help="seconds between simulated steps"
    )
    serve.add_argument("--duration", type=_positive, help="stop after this many seconds")
    serve.add_argument(
        "--web-config",
        type=Path,
        help="TLS and basic auth, in the Prometheus exporters' web config format (YAML)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without --web-config (plain HTTP, no login)",
    )
    fleet = command("fleet", "show the fleet of hosts sharing breakers, or resume it", False)
    fleet.add_argument("fleet_command", choices=["status", "resume"])
    fleet.add_argument("--policy", type=Path, help="the policy whose fleet section to use")
    fleet.add_argument("--reason", default="resumed by hand (autoheal fleet resume)", type=_text)
    fleet.add_argument("--actor", default=os.environ.get("USER", "operator"), type=_text)
    fleet.add_argument("--state", choices=["running", "degraded"], default="running")
    _fleet_options(fleet)
    add_lab_commands(command, _text)
    add_pin_command(command, _text)
    policy = sub.add_parser("policy", help="validate a policy file or print its JSON Schema")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    validate = psub.add_parser("validate", help="check a policy file")
    validate.add_argument("path", type=Path)
    validate.add_argument("--json", action="store_true")
    psub.add_parser("schema", help="print the policy's JSON Schema")
    psub.add_parser("default", help="print the complete default policy")
    return parser
