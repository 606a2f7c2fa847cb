"""Run the installed ``autoheal`` entry point in subprocesses, several at once, for the CLI tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EXE = shutil.which("autoheal", path=str(Path(sys.executable).parent))


def run(
    args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``autoheal ARGS`` and return what it printed and its exit code."""
    assert EXE is not None, "the autoheal console script is not installed"
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def run_many(cases: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Run many command lines in parallel (each is mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(run, cases))


def read_only(data_dir: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str] | None:
    """Run ``autoheal ARGS`` with ``data_dir`` mounted read-only (a private mount namespace).

    Returns None where mount namespaces are not available (not root, no ``unshare``).
    """
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return None
    assert EXE is not None
    script = 'mount --bind -o ro "$1" "$1" || exit 97; shift; exec "$@"'
    proc = subprocess.run(
        [unshare, "-m", "sh", "-c", script, "sh", str(data_dir), EXE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return None if proc.returncode == 97 or "unshare:" in proc.stderr else proc
