"""The ``autoheal`` command.

Exit codes: 0 success; 1 the command ran and found a problem (e.g. an invalid policy);
2 bad usage. Errors are one line saying what was wrong and what to do, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .._errors import AutoHealError, PolicyError
from .._policy import PolicyConfig

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoheal", description="Keep unattended UI-automation robots running safely."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a scripted workflow through every decision")
    demo.add_argument("--json", action="store_true", help="print decisions as JSON lines")
    policy = sub.add_parser("policy", help="validate a policy file or print its JSON Schema")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    validate = psub.add_parser("validate", help="check a policy file")
    validate.add_argument("path", type=Path)
    validate.add_argument("--json", action="store_true")
    psub.add_parser("schema", help="print the policy's JSON Schema")
    psub.add_parser("default", help="print the complete default policy")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from ._demo import run_demo

            return run_demo(as_json=args.json)
        if args.command == "policy":
            return _policy(args)
    except PolicyError as exc:
        print(f"autoheal: invalid policy: {exc}", file=sys.stderr)
        print(
            "  fix the field named above; `autoheal policy schema` lists every setting",
            file=sys.stderr,
        )
        return EXIT_PROBLEM
    except AutoHealError as exc:
        print(f"autoheal: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130
    return EXIT_USAGE


def _policy(args: argparse.Namespace) -> int:
    if args.policy_command == "schema":
        print(json.dumps(PolicyConfig.json_schema(), indent=2))
        return EXIT_OK
    if args.policy_command == "default":
        print(PolicyConfig().dump_json(), end="")
        return EXIT_OK
    policy = PolicyConfig.load(args.path)
    if args.json:
        print(json.dumps({"valid": True, "path": str(args.path), "version": policy.version}))
    else:
        print(f"{args.path}: valid (policy version {policy.version})")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
