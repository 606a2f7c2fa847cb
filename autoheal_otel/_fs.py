"""Durable file operations shared by the audit log, compaction and the versioned store."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["fsync_path", "write_atomic"]


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, step: Callable[[], None] | None = None) -> None:
    """Replace ``path`` with ``data``: a reader sees the old content or the new, never half.

    The data is written to a temporary name, fsynced and renamed, then the folder is fsynced.
    ``step`` is called at both durable points (after the fsync, after the rename): the
    versioned store's crash-safety test uses it.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    if step is not None:
        step()
    os.replace(tmp, path)
    fsync_path(path.parent)
    if step is not None:
        step()
