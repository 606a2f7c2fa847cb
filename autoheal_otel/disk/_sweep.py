"""Deleting what is past its keep-days: failure cases and mini reports, by whole units.

A *unit* is one failure case (``failure_cases/<workflow>/<stamp>-<seq>.json`` and its
attachments folder ``<stamp>-<seq>/``) or one mini report (``reports/<workflow>/<stamp>-<seq>``
``.md`` and ``.html``): the entries of one workflow folder sharing a stem. Its age is the UTC
instant its name starts with (``20261206T025337``), else its newest ``lstat`` mtime.

Invariants:

- nothing is followed: an area or workflow folder that is a symlink is skipped, every
  deletion is relative to a descriptor of its real folder opened with ``O_NOFOLLOW``
  (``unlink`` / ``rmtree`` with ``dir_fd``), and a symlink member is unlinked itself, so
  nothing outside the data directory is ever deleted;
- whole units, oldest first, at most ``limit`` per run (the rest is left for the next run);
- a run is journalled: the plan is written atomically to :data:`JOURNAL` before the first
  deletion and removed after the run is recorded; a run killed part-way is finished by the
  next one (:func:`resume`), which deletes the rest of the journal's units — a unit half
  deleted never stays so;
- within a unit the file readers look for goes first (the case's ``.json``, the report's
  ``.md``), so a unit being deleted is never seen by them with parts missing;
- entries whose name starts with a dot (a writer's temporary file) are never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..base._crash import RETENTION, crash_point
from ..base._fs import fsync_path, read_regular_file, write_atomic

__all__ = [
    "AREAS",
    "JOURNAL",
    "Unit",
    "clear_journal",
    "delete_units",
    "plan",
    "read_journal",
    "resume",
]

#: Each area and the suffix its readers look for (deleted first).
AREAS = {"failure_cases": ".json", "reports": ".md"}
#: The plan of a run under way, in the data directory.
JOURNAL = ".retention-journal.json"
#: The most units one run deletes (and one journal lists).
MAX_UNITS = 10_000
_MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class Unit:
    """One failure case or report: ``names`` in ``<area>/<folder>/``, ``primary`` first."""

    area: str
    folder: str
    names: tuple[str, ...]
    bytes: int
    stamp: datetime

    @property
    def path(self) -> str:
        """Return the unit's path relative to the data directory (its stem)."""
        return f"{self.area}/{self.folder}/{_stem(self.names[0])}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "folder": self.folder,
            "names": list(self.names),
            "bytes": self.bytes,
            "stamp": self.stamp.isoformat(),
        }


def _stem(name: str) -> str:
    return name.split(".", 1)[0]


def _stamp_of(stem: str) -> datetime | None:
    try:
        return datetime.strptime(stem[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _size(st: os.stat_result, path: str) -> int:
    """Return the bytes under ``path`` (a real folder's files, or the entry itself)."""
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    total = 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _units_in(area: str, primary: str, folder: Path) -> Iterator[Unit]:
    groups: dict[str, list[tuple[str, os.stat_result, str]]] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # a writer's temporary file
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    groups.setdefault(_stem(entry.name), []).append((entry.name, st, entry.path))
    except OSError:
        return
    for stem, members in groups.items():
        members.sort(key=lambda m: (not m[0].endswith(primary), m[0]))  # primary first
        stamp = _stamp_of(stem) or datetime.fromtimestamp(
            max(st.st_mtime for _n, st, _p in members), UTC
        )
        size = sum(_size(st, path) for _n, st, path in members)
        yield Unit(area, folder.name, tuple(n for n, _s, _p in members), size, stamp)


def plan(
    data_dir: Path, keep_days: dict[str, int], now: datetime, limit: int = MAX_UNITS
) -> list[Unit]:
    """Return the units past their area's keep-days, oldest first, at most ``limit``."""
    found: list[Unit] = []
    for area, days in keep_days.items():
        root = data_dir / area
        if area not in AREAS or not _real_dir(root):
            continue
        cut = now - timedelta(days=days)
        try:
            with os.scandir(root) as folders:
                names = [f.name for f in folders if f.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for name in names:
            found.extend(u for u in _units_in(area, AREAS[area], root / name) if u.stamp < cut)
    found.sort(key=lambda u: (u.stamp, u.path))
    return found[:limit]


def _delete_unit(data_dir: Path, unit: Unit) -> int:
    """Delete one unit's entries (missing ones are fine); return how many were deleted."""
    area = data_dir / unit.area
    if not _real_dir(area):
        return 0
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        area_fd = os.open(area, flags)
    except OSError:
        return 0
    try:
        try:
            fd = os.open(unit.folder, flags, dir_fd=area_fd)
        except OSError:  # gone, or replaced by a link: nothing of ours is there
            return 0
        try:
            deleted = 0
            for name in unit.names:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(name, dir_fd=fd)  # fd-based: never follows a link
                else:
                    os.unlink(name, dir_fd=fd)
                deleted += 1
                crash_point(RETENTION)
            os.fsync(fd)
            return deleted
        finally:
            os.close(fd)
    finally:
        os.close(area_fd)


def delete_units(
    data_dir: Path,
    units: list[Unit],
    stopping: Callable[[], bool] | None = None,
) -> bool:
    """Journal ``units`` and delete them in order; return False if ``stopping()`` cut it short.

    ``stopping`` is asked between units (a closing manager). Either way the journal stays:
    the caller records a complete run, then calls :func:`clear_journal`; a run cut short is
    finished and recorded by the next one, as after a crash (the journal and each entry
    deleted are a :func:`~autoheal_otel.base._crash.crash_point`).
    """
    if not units:
        return True
    write_atomic(data_dir / JOURNAL, json.dumps([u.to_dict() for u in units]))
    crash_point(RETENTION)
    for unit in units:
        if stopping is not None and stopping():
            return False
        _delete_unit(data_dir, unit)
    return True


def clear_journal(data_dir: Path) -> None:
    """Remove the journal of a run that was recorded."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(data_dir / JOURNAL)
        fsync_path(data_dir)


def _plain(name: object) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= _MAX_NAME
        and "/" not in name
        and "\0" not in name
        and not name.startswith(".")
    )


def read_journal(data_dir: Path) -> list[Unit] | None:
    """Return the units of an interrupted run (None: no journal; [] one that is unreadable).

    The journal is input like any file in the directory: only plain names in the known
    areas are taken, at most :data:`MAX_UNITS`.
    """
    path = data_dir / JOURNAL
    try:
        raw = json.loads(read_regular_file(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return []
    units = []
    for item in raw[:MAX_UNITS] if isinstance(raw, list) else []:
        if not isinstance(item, dict) or item.get("area") not in AREAS:
            continue
        names = item.get("names")
        if not _plain(item.get("folder")) or not isinstance(names, list) or not names:
            continue
        if not all(_plain(n) for n in names[:64]) or len(names) > 64:
            continue
        size = item.get("bytes")
        try:
            stamp = datetime.fromisoformat(str(item.get("stamp")))
        except ValueError:
            stamp = datetime.fromtimestamp(0, UTC)
        units.append(
            Unit(
                item["area"],
                item["folder"],
                tuple(names),
                size if isinstance(size, int) and size >= 0 else 0,
                stamp,
            )
        )
    return units


def resume(data_dir: Path) -> list[Unit] | None:
    """Finish an interrupted run: delete what its journal lists (None: there was none)."""
    units = read_journal(data_dir)
    if units is None:
        return None
    for unit in units:
        _delete_unit(data_dir, unit)
    return units
