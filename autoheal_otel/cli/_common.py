"""What every ``autoheal`` command shares: its errors, output formatting and data-directory checks.

Errors are raised as :class:`Problem` (exit 1: the command ran and found something wrong) or
:class:`Usage` (exit 2: the command line itself is wrong); :func:`autoheal_otel.cli.main`
prints them as one line (or one JSON object with ``--json``), never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..policy._config import PolicyConfig

__all__ = [
    "EXIT_OK",
    "EXIT_PROBLEM",
    "EXIT_USAGE",
    "Problem",
    "Usage",
    "close_matches",
    "command_name",
    "emit",
    "load_policy",
    "need_log",
    "need_writable",
    "progress",
    "table",
]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


class Problem(Exception):
    """A command found a problem: print the message (and the hint), exit 1."""

    exit_code = EXIT_PROBLEM

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class Usage(Problem):
    """The command line is wrong: print the message (and the hint), exit 2."""

    exit_code = EXIT_USAGE


def command_name() -> str:
    """Return ``autoheal`` as the user can type it: the bare name only when it is on PATH.

    After ``make demo`` the command lives in ``.venv/bin`` and is not on PATH until the venv
    is activated, so hints then name it by the path the user ran it with.
    """
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "autoheal"
    if Path(argv0).name != "autoheal":
        return "autoheal"
    found = shutil.which("autoheal")
    if found is not None and Path(found).resolve() == Path(argv0).resolve():
        return "autoheal"
    try:
        shown = os.path.relpath(Path(argv0).resolve())
    except ValueError:
        return argv0
    return shown if not shown.startswith("..") else str(Path(argv0).resolve())


def close_matches(word: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean a, b?"`` for the candidates close to ``word`` (or ``""``)."""
    found = difflib.get_close_matches(word, sorted(set(candidates)), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(found)}?" if found else ""


def plural(count: int, noun: str, many: str | None = None) -> str:
    """Return ``"1 segment"`` / ``"2 segments"`` (``many``: an irregular plural)."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def emit(args: argparse.Namespace, data: Any, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON with ``--json``, else call ``human`` to print it for people."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        human()


def table(
    rows: list[dict[str, Any]],
    columns: list[str] | None = None,
    *,
    width: int | None = None,
    cell: int = 70,
) -> None:
    """Print rows as an aligned text table.

    ``cell`` cuts long cells (with ``…``); with ``width`` the columns that do not fit are left
    out, and a last line names them.
    """
    if not rows:
        print("(no rows)")
        return
    columns = columns or list(rows[0])
    text = [[_cell(r.get(c), cell) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(columns)]
    if width is not None:
        kept, used = 0, 0
        while kept < len(columns) and (kept == 0 or used + 2 + widths[kept] <= width):
            used += widths[kept] + (2 if kept else 0)
            kept += 1
        left_out = columns[kept:]
        columns, widths = columns[:kept], widths[:kept]
        text = [t[:kept] for t in text]
    else:
        left_out = []
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)))
    if left_out:
        note = f"({len(left_out)} more columns: {', '.join(left_out)}; --wide or --json shows them)"
        print("\n".join(textwrap.wrap(note, width or 80)))


def _cell(value: Any, limit: int = 70) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M:%S"))
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress(label: str) -> Callable[[int, int], None] | None:
    """Return a progress callback drawing a bar on standard error (None when not a terminal)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        filled = int(30 * done / total) if total else 30
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def need_log(data_dir: Path) -> None:
    """Refuse (exit 1) when ``data_dir`` has no audit log to read."""
    if data_dir.exists() and not data_dir.is_dir():
        raise Problem(f"--data-dir {data_dir} is a file, not a data directory")
    if not (data_dir / "audit").is_dir():
        raise Problem(
            f"{data_dir} has no audit log",
            f"pass --data-dir (or run `{command_name()} demo` to make one)",
        )


def need_writable(data_dir: Path, command: str, what: str) -> None:
    """Refuse (exit 1) before a write command changes anything in a read-only ``data_dir``."""
    try:
        with tempfile.TemporaryFile(dir=data_dir, prefix=".autoheal-write-check-"):
            pass
    except OSError as exc:
        raise Problem(
            f"{data_dir} is not writable ({exc.strerror}): `autoheal {command}` {what}",
            "run it where the data directory is writable; read commands (status, report, "
            "query, versions list) work on a read-only copy",
        ) from exc


def load_policy(path: Path | None) -> PolicyConfig:
    """Return the policy in ``path`` (the defaults when None)."""
    return PolicyConfig.load(path) if path is not None else PolicyConfig()
