"""``autoheal report``: write the report as Markdown, HTML or both, each path printed once.

``--out`` picks the format by its suffix (``.md`` Markdown, ``.html`` HTML) and may be given
twice for both; without it both go to the data directory. An unknown ``--workflow`` is
refused with the close matches, never answered with an empty report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..base._fs import write_atomic
from ._common import EXIT_OK, Problem, Usage, close_matches, emit, need_log

__all__ = ["run_report"]

_FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def _outputs(args: argparse.Namespace) -> dict[Path, str]:
    """Return {path: format} for the files to write, checked before anything is rendered."""
    if not args.out:
        return {args.data_dir / "report.md": "markdown", args.data_dir / "report.html": "html"}
    outputs: dict[Path, str] = {}
    for out in args.out:
        kind = _FORMATS.get(out.suffix.lower())
        if kind is None:
            raise Usage(
                f"--out must end in .md (Markdown) or .html (HTML), but was {str(out)!r}",
                "give --out twice for both",
            )
        if out.is_dir():
            raise Usage(f"--out {out} is a folder; name the file to write")
        folder = out.parent
        if not folder.is_dir():
            raise Problem(
                f"cannot write {out}: the folder {folder} does not exist",
                "create it first, or choose another --out",
            )
        outputs[out] = kind
    return outputs


def run_report(args: argparse.Namespace) -> int:
    """Write the report files; return the exit code."""
    from ..analytics import AuditAnalytics
    from ..integrations import render_report

    need_log(args.data_dir)
    outputs = _outputs(args)
    if args.workflow:
        with AuditAnalytics(args.data_dir) as db:
            known = [r["workflow_id"] for r in db.query("summary")]
        if args.workflow not in known:
            raise Problem(
                f"no workflow {args.workflow!r} in {args.data_dir}'s audit log"
                f"{close_matches(args.workflow, known)}",
                "leave out --workflow for every workflow",
            )
    written: list[str] = []
    rendered: dict[Path, tuple[str, str]] = {}
    for path, kind in outputs.items():
        if path.parent not in rendered:  # links to the per-trip reports are relative
            rendered[path.parent] = render_report(
                args.data_dir, args.workflow, link_from=path.parent
            )
        markdown, page = rendered[path.parent]
        try:
            write_atomic(path, markdown if kind == "markdown" else page)
        except OSError as exc:
            raise Problem(
                f"cannot write {path}: {exc.strerror}",
                "pass --out with a writable place (e.g. --out /tmp/report.html)",
            ) from exc
        written.append(str(path))
    emit(
        args,
        {kind: str(path) for path, kind in outputs.items()},
        lambda: print("report written: " + " and ".join(written)),
    )
    return EXIT_OK
