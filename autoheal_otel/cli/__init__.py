"""The ``autoheal`` command.

Exit codes: 0 success; 1 the command ran and found a problem (an invalid policy, an illegal
transition, a replay that does not match, a failed verification, nothing to read); 2 bad
usage. Errors are one line saying what was wrong and what to do, never a traceback. Human
output by default, ``--json`` for scripts; long work (replay, compaction) shows progress on
standard error when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._errors import AutoHealError, PolicyError
from .._policy import PolicyConfig

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
DEFAULT_DATA_DIR = os.environ.get("AUTOHEAL_DATA_DIR", "data")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoheal", description="Keep unattended UI-automation robots running safely."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, data_dir: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
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
    demo.add_argument("--data-dir", type=Path, default=Path("demo-data"))
    demo.add_argument(
        "--no-live", action="store_true", help="print each table instead of redrawing"
    )
    status = command("status", "show every workflow's state, counters and global health")
    status.add_argument("--policy", type=Path, help="the policy file in use (default: defaults)")
    force = command("force", "move a workflow to a state by hand (audited)")
    force.add_argument("workflow")
    force.add_argument(
        "state", choices=["running", "degraded", "quarantined", "rollback", "paused"]
    )
    force.add_argument("--reason", required=True)
    force.add_argument("--actor", default=os.environ.get("USER", "operator"))
    force.add_argument("--policy", type=Path)
    versions = command("versions", "list, snapshot, roll back or verify learned artifacts")
    versions.add_argument("action", choices=["list", "snapshot", "rollback", "verify"])
    versions.add_argument("--reason", default="by hand (autoheal versions)")
    versions.add_argument("--to", default="known_good", help="set id, known_good or previous")
    query = command("query", "run a packaged analytics query over the audit log")
    query.add_argument("name", nargs="?", help="query name (omit to list them)")
    query.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    command("replay", "replay the audit log and check that every decision is reproduced")
    whatif = command("what-if", "replay the audit log with another policy")
    whatif.add_argument("--policy", type=Path, required=True)
    command("compact", "compact closed audit segments to Parquet")
    report = command("report", "write a Markdown and HTML report from the audit log")
    report.add_argument("--workflow", default="")
    report.add_argument("--out", type=Path, help="HTML file (default: <data-dir>/report.html)")
    serve = command("serve", "serve /health, /status and /metrics (read-only)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9464)
    serve.add_argument("--policy", type=Path)
    serve.add_argument("--simulate", action="store_true", help="run the simulated executor too")
    serve.add_argument("--pace", type=float, default=0.02, help="seconds between simulated steps")
    serve.add_argument("--duration", type=float, help="stop after this many seconds")
    policy = sub.add_parser("policy", help="validate a policy file or print its JSON Schema")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    validate = psub.add_parser("validate", help="check a policy file")
    validate.add_argument("path", type=Path)
    validate.add_argument("--json", action="store_true")
    psub.add_parser("schema", help="print the policy's JSON Schema")
    psub.add_parser("default", help="print the complete default policy")
    return parser


class _Problem(Exception):
    """A command found a problem: print the message, exit 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = _parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "demo": _demo,
        "status": _status,
        "force": _force,
        "versions": _versions,
        "query": _query,
        "replay": _replay,
        "what-if": _what_if,
        "compact": _compact,
        "report": _report,
        "policy": _policy,
        "serve": _serve,
    }
    try:
        return handlers[args.command](args)
    except PolicyError as exc:
        print(f"autoheal: invalid policy: {exc}", file=sys.stderr)
        print(
            "  fix the field named above; `autoheal policy schema` lists every setting",
            file=sys.stderr,
        )
        return EXIT_PROBLEM
    except (AutoHealError, _Problem) as exc:
        print(f"autoheal: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130


# -- helpers ----------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: Any, human: Callable[[], None]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        human()


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    if not rows:
        print("(no rows)")
        return
    columns = columns or list(rows[0])
    text = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    return str(value)[:70]


def _progress(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        filled = int(30 * done / total) if total else 30
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _need_log(data_dir: Path) -> None:
    if not (data_dir / "audit").is_dir():
        raise _Problem(f"{data_dir} has no audit log; pass --data-dir (or run `autoheal demo`)")


def _load_policy(path: Path | None) -> PolicyConfig:
    return PolicyConfig.load(path) if path is not None else PolicyConfig()


# -- commands -------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(args.data_dir, as_json=args.json, live=False if args.no_live else None)


def _status(args: argparse.Namespace) -> int:
    from .._manager import AutoHealManager

    _need_log(args.data_dir)
    manager = AutoHealManager(
        policy=_load_policy(args.policy), data_dir=args.data_dir, read_only=True
    )
    report = manager.get_status_report()

    def human() -> None:
        rows = [
            {
                "workflow": wid,
                "state": w.state.value,
                "since": w.since,
                "failures": f"{w.window.count}/{w.window.threshold}",
                "reason": w.reason,
            }
            for wid, w in sorted(report.workflows.items())
        ]
        _table(rows)
        g = report.global_
        print(
            f"\nglobal health: {g.health}  (failures {g.window.count}/{g.window.threshold} in "
            f"{g.window.window_seconds:g} s, quarantined {g.quarantined_workflows}/"
            f"{g.quarantined_workflows_threshold}){'  PAUSED: ' + g.reason if g.paused else ''}"
        )

    _emit(args, json.loads(report.to_json()), human)
    return EXIT_OK


def _force(args: argparse.Namespace) -> int:
    from .._manager import AutoHealManager
    from ..versioning import VersionedStore

    store = None
    if args.state == "rollback":
        store = VersionedStore.open(args.data_dir)
    with AutoHealManager(
        policy=_load_policy(args.policy), data_dir=args.data_dir, store=store
    ) as manager:
        info = manager.force_transition(
            args.workflow, args.state, reason=args.reason, actor=args.actor
        )
    _emit(
        args,
        json.loads(info.to_json()),
        lambda: print(
            f"{info.workflow_id}: {info.previous_state} -> {info.state.value} "
            f"(by {info.actor}: {info.reason})"
        ),
    )
    return EXIT_OK


def _versions(args: argparse.Namespace) -> int:
    from ..versioning import VersionedStore

    store = VersionedStore.open(args.data_dir)
    if args.action == "list":
        current, known = store.current(), store.known_good()
        sets: list[dict[str, Any]] = [
            {
                "set": s.label,
                "created_at": s.created_at,
                "reason": s.reason,
                "active": current is not None and s.id == current.id,
                "known_good": known is not None and s.id == known.id,
                "components": {k: v.version for k, v in s.components.items()},
            }
            for s in store.list()
        ]
        _emit(
            args,
            sets,
            lambda: _table(
                [
                    {
                        **s,
                        "components": ", ".join(
                            f"{k}=v{v:02d}" for k, v in s["components"].items()
                        ),
                    }
                    for s in sets
                ]
            ),
        )
        return EXIT_OK
    if args.action == "snapshot":
        vset = store.snapshot(args.reason)
        _emit(
            args,
            json.loads(vset.model_dump_json()),
            lambda: print(f"snapshot {vset.label} is active"),
        )
        return EXIT_OK
    if args.action == "rollback":
        to: Any = int(args.to) if args.to.isdigit() else args.to
        vset = store.rollback(to, reason=args.reason)
        _emit(
            args,
            json.loads(vset.model_dump_json()),
            lambda: print(f"rolled back: {vset.label} is active"),
        )
        return EXIT_OK
    report = store.verify()
    _emit(
        args,
        {"set": report.set_id, "checked": report.checked, "problems": report.problems},
        lambda: print(
            f"set {report.set_id}: {report.checked} files checked, "
            f"{'all match' if report.ok else str(len(report.problems)) + ' problems'}"
        ),
    )
    for problem in report.problems if not args.json else []:
        print(f"  {problem['component']}/{problem['file']}: {problem['problem']}")
    return EXIT_OK if report.ok else EXIT_PROBLEM


def _query(args: argparse.Namespace) -> int:
    from ..analytics import AuditAnalytics, load_query, query_names

    if not args.name:
        _emit(args, query_names(), lambda: print("\n".join(query_names())))
        return EXIT_OK
    _need_log(args.data_dir)
    params: dict[str, Any] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise _Problem(f"--param must be KEY=VALUE, but was {item!r}")
        params[key] = (
            json.loads(value) if value[:1] in "[{" or value.replace(".", "", 1).isdigit() else value
        )
    load_query(args.name)
    with AuditAnalytics(args.data_dir) as db:
        rows = db.query(args.name, **params)
    _emit(args, rows, lambda: _table(rows))
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from ..analytics.replay import replay

    _need_log(args.data_dir)
    report = replay(args.data_dir, progress=_progress("replay"))
    _emit(
        args,
        report.to_dict(),
        lambda: print(
            f"{report.records} records replayed: {'every decision reproduced' if report.matches else 'MISMATCH'}"
            f" ({report.gates} gates, transitions {dict(report.replayed)}, {report.skipped_lines} bad lines skipped)"
        ),
    )
    for m in report.mismatches[:10] if not args.json else []:
        print(f"  {m}")
    return EXIT_OK if report.matches else EXIT_PROBLEM


def _what_if(args: argparse.Namespace) -> int:
    from ..analytics.replay import replay

    _need_log(args.data_dir)
    policy = PolicyConfig.load(args.policy)
    report = replay(args.data_dir, policy=policy, progress=_progress("what-if"))

    def human() -> None:
        states = sorted(set(report.recorded) | set(report.replayed))
        _table(
            [
                {
                    "entered": s,
                    "recorded": report.recorded.get(s, 0),
                    "with this policy": report.replayed.get(s, 0),
                }
                for s in states
            ]
        )
        print(
            f"blocked steps: recorded {report.recorded_blocked_gates}, with this policy "
            f"{report.replayed_blocked_gates}"
        )

    _emit(args, report.to_dict(), human)
    return EXIT_OK


def _compact(args: argparse.Namespace) -> int:
    from ..analytics.compaction import compact

    _need_log(args.data_dir)
    report = compact(args.data_dir, progress=_progress("compact"))
    data = {
        "compacted": report.compacted,
        "skipped_live": report.skipped_live,
        "merged": report.merged,
        "rows": report.rows,
        "bad_lines": report.bad_lines,
        "bytes_in": report.bytes_in,
        "bytes_out": report.bytes_out,
    }
    _emit(
        args,
        data,
        lambda: print(
            f"{len(report.compacted)} segments compacted ({report.rows} rows, "
            f"{report.bytes_in / 2**20:.1f} MiB -> {report.bytes_out / 2**20:.2f} MiB), "
            f"{len(report.skipped_live)} live segments left, {report.bad_lines} bad lines dropped"
        ),
    )
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from ..integrations import render_report

    _need_log(args.data_dir)
    markdown, page = render_report(args.data_dir, args.workflow)
    out = args.out or args.data_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    _emit(
        args,
        {"html": str(out), "markdown": str(out.with_suffix(".md"))},
        lambda: print(f"report written: {out} and {out.with_suffix('.md')}"),
    )
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from ._serve import run_serve

    try:
        return run_serve(
            args.host,
            args.port,
            args.data_dir,
            args.policy,
            args.simulate,
            args.pace,
            args.duration,
        )
    except OSError as exc:
        raise _Problem(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from exc


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
