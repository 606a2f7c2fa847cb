"""Durable file operations shared by the audit log, compaction and the versioned store."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "MAX_READ_BYTES",
    "folder_inside",
    "fresh_temp",
    "fsync_path",
    "open_temp",
    "read_regular_file",
    "write_atomic",
]

#: The largest file :func:`read_regular_file` reads (a policy is a few kilobytes).
MAX_READ_BYTES = 16 * 1024 * 1024


def read_regular_file(path: Path, limit: int = MAX_READ_BYTES) -> bytes:
    """Return a regular file's bytes without ever blocking on what the path turned out to be.

    A FIFO, a device or a socket would block a plain ``open``/``read`` (a FIFO until a writer
    comes): the file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open
    descriptor (no window between the check and the read), and refused unless it is a
    regular file of at most ``limit`` bytes.

    Raises:
        OSError: the file cannot be read, is not a regular file (``EINVAL``), or is too large
            (``EFBIG``); ``strerror`` says which.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def folder_inside(base: Path, folder: Path) -> Path:
    """Create ``folder`` (and its parents) and return it, if it resolves under ``base``.

    Raises:
        OSError: the folder (or a parent: a planted symlink) leads outside ``base``; nothing
            was written there.
    """
    inside = base.resolve()
    for check in (False, True):  # before creating anything, and after (in case of a race)
        if not folder.resolve().is_relative_to(inside):
            raise OSError(errno.EXDEV, f"leads outside {base} (a symlink?)", str(folder))
        if not check:
            folder.mkdir(parents=True, exist_ok=True)
    return folder


def fresh_temp(tmp: Path) -> Path:
    """Clear the way for a temporary file at ``tmp``: whatever is there goes, never followed.

    A leftover of a crash, or something planted (a symlink out of the data directory, a
    FIFO), is unlinked — a symlink itself, never its target — so what is written next lands
    in a new file here. Returns ``tmp``.
    """
    # (A directory in the way raises IsADirectoryError: nothing is written.)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    return tmp


def open_temp(tmp: Path) -> int:
    """Return a descriptor of a new file at ``tmp`` (see :func:`fresh_temp`): ``O_EXCL`` and
    ``O_NOFOLLOW``, so a file planted in between fails the write instead of redirecting it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(fresh_temp(tmp), flags, 0o644)


def write_atomic(path: Path, data: str | bytes, step: Callable[[], None] | None = None) -> None:
    """Replace ``path`` with ``data``: a reader sees the old content or the new, never half.

    The data is written to a temporary name, fsynced and renamed, then the folder is fsynced.
    ``step`` is called at both durable points (after the fsync, after the rename): the
    versioned store's crash-safety test uses it.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with os.fdopen(open_temp(tmp), "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    if step is not None:
        step()
    os.replace(tmp, path)
    fsync_path(path.parent)
    if step is not None:
        step()
