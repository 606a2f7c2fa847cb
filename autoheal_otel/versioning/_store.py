"""The versioned store: snapshot, list, roll back, verify and prune learned artifacts.

Layout under the data directory::

    versions/sets/000007.json     one version set: component -> version, with VersionInfo each
    versions/CURRENT              the active set's id (replaced by an atomic rename)
    versions/KNOWN_GOOD           the last known-good set's id
    versions/ROLLBACK             a rollback in progress (its target), until it is complete
    <component root>/vNN/         immutable component versions (hard links where possible)

Invariants:
- readers resolve ``CURRENT`` once and read immutable version folders, so they see the old
  set or the new one, never a mix; switching sets is one rename, whatever the artifact size;
- a snapshot publishes its component versions, then its set file (the commit point), then
  switches ``CURRENT``; a crash before the set file leaves orphan folders that the next open
  deletes; the set file is written before the pointer, so the active set is always complete;
- a rollback writes its intent, restores every working copy, switches ``CURRENT``, then
  removes the intent; the next open redoes an unfinished intent (every step is idempotent);
- retention keeps the newest ``keep`` sets and never deletes the active or the last
  known-good set, nor any component version one of the kept sets uses;
- mutations take an exclusive ``flock`` on ``versions/LOCK``: processes sharing the data
  directory never interleave them.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from ..base._clock import Clock, SystemClock
from ..base._crash import STORE, crash_point
from ..base._errors import InvalidInputError, StoreError
from ..base._fs import fsync_path, write_atomic
from ..base._models import VersionInfo
from ._components import (
    ChecksumCache,
    Component,
)
from ._sets import VerifyReport, VersionSet, verify_set

__all__ = ["StoreError", "VerifyReport", "VersionSet", "VersionedStore"]

Target = int | Literal["known_good", "previous"]


def _write_atomic(path: Path, text: str) -> None:
    write_atomic(path, text, step=partial(crash_point, STORE))


def _vdir(n: int) -> str:
    return f"v{n:02d}"


class VersionedStore:
    """Version a set of components under ``data_dir`` (see the module docstring).

    Args:
        data_dir: the data directory (shared with the manager).
        components: the artifacts to version; names must be unique.
        keep: how many sets retention keeps (the active and known-good ones come on top).
        clock: the time source for ``created_at``.
    """

    def __init__(
        self,
        data_dir: str | Path,
        components: Sequence[Component],
        keep: int = 5,
        clock: Clock | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        if keep < 1:
            raise InvalidInputError("keep", keep, "must be >= 1")
        names = [c.name for c in components]
        if len(set(names)) != len(names) or not names:
            raise InvalidInputError("components", names, "must be a non-empty list of unique names")
        self.data_dir = Path(data_dir)
        self.dir = self.data_dir / "versions"
        if not read_only:
            (self.dir / "sets").mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.clock = clock or SystemClock()
        self.checksums = ChecksumCache()
        self.components = {c.name: c for c in components}
        inside = self.data_dir.resolve()
        for component in components:
            root = (self.data_dir / component.root).resolve()
            if not root.is_relative_to(inside) or root == inside:
                raise InvalidInputError(
                    "components", component.name, f"must keep its versions under {data_dir}"
                )
            component.bind(self.data_dir, self.checksums)
        self._lock = threading.Lock()
        self.recovered: dict[str, Any] = {}
        if read_only:  # for readers of a read-only copy: no recovery, no lock file
            return
        with self._locked():
            self.recovered = self._recover()
            specs = [getattr(c, "spec")() for c in components if callable(getattr(c, "spec", None))]  # noqa: B009
            if len(specs) == len(components):
                _write_atomic(self.dir / "components.json", json.dumps(specs, indent=2))

    @classmethod
    def open(
        cls,
        data_dir: str | Path,
        keep: int = 5,
        clock: Clock | None = None,
        *,
        read_only: bool = False,
    ) -> VersionedStore:
        """Reopen a store with the components it was created with (built-in ones only).

        ``read_only`` opens it for reading only (list, current, verify): nothing is
        recovered or written, so it works on a read-only data directory.

        Raises:
            StoreError: the data directory has no store, or it uses custom components.
        """
        from ._components import component_from_spec

        path = Path(data_dir) / "versions" / "components.json"
        try:
            specs = json.loads(path.read_text(encoding="utf-8"))
            components = [component_from_spec(spec) for spec in specs]
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"no versioned store to open in {data_dir} ({exc})") from exc
        return cls(data_dir, components, keep=keep, clock=clock, read_only=read_only)

    # -- reading -------------------------------------------------------------------------

    def list(self) -> builtins.list[VersionSet]:
        """Return every set, oldest first."""
        out = []
        for path in sorted((self.dir / "sets").glob("[0-9]*.json")):
            try:
                out.append(VersionSet.model_validate_json(path.read_bytes()))
            except (OSError, ValueError):
                continue  # written by a crashed snapshot: cleaned on the next open
        return out

    def get(self, set_id: int) -> VersionSet:
        """Return one set."""
        path = self.dir / "sets" / f"{set_id:06d}.json"
        try:
            return VersionSet.model_validate_json(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise InvalidInputError("set_id", set_id, "must name an existing version set") from exc

    def _pointer(self, name: str) -> int | None:
        try:
            return int((self.dir / name).read_text().strip())
        except (OSError, ValueError):
            return None

    def current(self) -> VersionSet | None:
        """Return the active set (None before the first snapshot)."""
        set_id = self._pointer("CURRENT")
        return self.get(set_id) if set_id is not None else None

    def known_good(self) -> VersionSet | None:
        """Return the last known-good set."""
        set_id = self._pointer("KNOWN_GOOD")
        return self.get(set_id) if set_id is not None else None

    def versions(self, component: str) -> builtins.list[VersionInfo]:
        """Return the versions of one component that kept sets use, oldest first."""
        seen: dict[int, VersionInfo] = {}
        for vset in self.list():
            info = vset.components.get(component)
            if info is not None:
                seen.setdefault(info.version, info)
        return [seen[v] for v in sorted(seen)]

    def active_path(self, component: str) -> Path:
        """Return the immutable folder of ``component`` in the active set."""
        vset = self.current()
        if vset is None:
            raise StoreError("no version is active yet: take a snapshot first")
        return self._version_dir(component, vset.version_of(component))

    def _version_dir(self, component: str, version: int) -> Path:
        return self.data_dir / self.components[component].root / _vdir(version)

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fd = os.open(self.dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def snapshot(
        self,
        reason: str,
        metrics_baseline: dict[str, float] | None = None,
        *,
        activate: bool = True,
        known_good: bool = False,
    ) -> VersionSet:
        """Freeze every component's working state as a new set (and make it active).

        A component whose content did not change keeps its version (no new folder). The
        first set is known-good by definition.
        """
        with self._locked():
            sets = self.list()
            current = self.current()
            set_id = (sets[-1].id if sets else 0) + 1
            now = self.clock.now()
            infos: dict[str, VersionInfo] = {}
            for name, component in self.components.items():
                infos[name] = self._freeze(name, component, current, reason, now, metrics_baseline)
            vset = VersionSet(
                id=set_id,
                created_at=now,
                reason=reason,
                parent=current.id if current else None,
                components=infos,
            )
            _write_atomic(self.dir / "sets" / f"{set_id:06d}.json", vset.model_dump_json(indent=2))
            if activate:
                _write_atomic(self.dir / "CURRENT", str(set_id))
            if known_good or self._pointer("KNOWN_GOOD") is None:
                _write_atomic(self.dir / "KNOWN_GOOD", str(set_id))
            self._retain()
            return vset

    def _freeze(
        self,
        name: str,
        component: Component,
        current: VersionSet | None,
        reason: str,
        now: datetime,
        baseline: dict[str, float] | None,
    ) -> VersionInfo:
        root = self.data_dir / component.root
        root.mkdir(parents=True, exist_ok=True)
        existing = [int(p.name[1:]) for p in root.glob("v[0-9]*") if p.name[1:].isdigit()]
        number = max(existing, default=0) + 1
        tmp = root / f".{_vdir(number)}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        checksums = component.freeze(tmp)
        crash_point(STORE)
        previous = current.components.get(name) if current else None
        if previous is not None and previous.checksums == checksums:
            shutil.rmtree(tmp)  # unchanged: keep the version the active set already has
            return previous
        os.replace(tmp, root / _vdir(number))
        fsync_path(root)
        crash_point(STORE)
        return VersionInfo(
            component=name,
            version=number,
            created_at=now,
            reason=reason,
            checksums=checksums,
            metrics_baseline=baseline or {},
            parent=previous.version if previous else None,
        )

    def rollback(self, to: Target = "known_good", reason: str = "") -> VersionSet:
        """Restore every component to a set, all or nothing, and make it active.

        Args:
            to: a set id, ``"known_good"`` (default) or ``"previous"`` (the active set's parent).

        Raises:
            StoreError: there is no such set (nothing changed).
        """
        with self._locked():
            target = self._resolve(to)
            _write_atomic(
                self.dir / "ROLLBACK", json.dumps({"target": target.id, "reason": reason})
            )
            self._apply(target)
            return target

    def _resolve(self, to: Target) -> VersionSet:
        if to == "known_good":
            found = self.known_good()
            if found is None:
                raise StoreError("no known-good set to roll back to")
            return found
        if to == "previous":
            current = self.current()
            if current is None or current.parent is None:
                raise StoreError("the active set has no previous set")
            return self.get(current.parent)
        if isinstance(to, int) and not isinstance(to, bool):
            try:
                return self.get(to)
            except InvalidInputError as exc:
                ids = ", ".join(s.label for s in self.list()[-10:]) or "none"
                raise StoreError(f"no version set s{to:06d} (the sets: {ids})") from exc
        raise InvalidInputError("to", to, "must be a set id, 'known_good' or 'previous'")

    def _apply(self, target: VersionSet) -> None:
        """Restore the working copies from ``target``, switch the pointer, drop the intent."""
        for name, component in self.components.items():
            info = target.components.get(name)
            if info is not None:
                component.restore(self._version_dir(name, info.version))
                crash_point(STORE)
        _write_atomic(self.dir / "CURRENT", str(target.id))
        (self.dir / "ROLLBACK").unlink(missing_ok=True)
        fsync_path(self.dir)

    def mark_known_good(self, set_id: int | None = None) -> VersionSet:
        """Record a set (default: the active one) as the last known-good set."""
        with self._locked():
            vset = self.get(set_id) if set_id is not None else self.current()
            if vset is None:
                raise StoreError("no version is active yet")
            _write_atomic(self.dir / "KNOWN_GOOD", str(vset.id))
            return vset

    def retain(self, keep: int | None = None) -> builtins.list[int]:
        """Apply retention now; return the ids of the deleted sets."""
        with self._locked():
            return self._retain(keep)

    def _retain(self, keep: int | None = None) -> builtins.list[int]:
        keep = keep or self.keep
        sets = self.list()
        protected = {self._pointer("CURRENT"), self._pointer("KNOWN_GOOD")}
        newest = {s.id for s in sets[-keep:]}
        doomed = [s for s in sets if s.id not in newest and s.id not in protected]
        for vset in doomed:
            (self.dir / "sets" / f"{vset.id:06d}.json").unlink(missing_ok=True)
        self._delete_unreferenced()
        return [s.id for s in doomed]

    def _delete_unreferenced(self) -> builtins.list[str]:
        used = {(name, info.version) for s in self.list() for name, info in s.components.items()}
        deleted = []
        for name, component in self.components.items():
            root = self.data_dir / component.root
            if not root.exists():
                continue
            for folder in root.iterdir():
                if folder.name.startswith(".v") and folder.name.endswith(".tmp"):
                    shutil.rmtree(folder, ignore_errors=True)  # a crashed freeze
                    deleted.append(str(folder))
                elif (
                    folder.name.startswith("v")
                    and folder.name[1:].isdigit()
                    and (name, int(folder.name[1:])) not in used
                ):
                    shutil.rmtree(folder, ignore_errors=True)
                    deleted.append(str(folder))
        return deleted

    def _recover(self) -> dict[str, Any]:
        """Finish or undo what a crashed process left (called on open, under the lock)."""
        report: dict[str, Any] = {"redone_rollback": None, "deleted": []}
        for tmp in (self.dir / "sets").glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        for tmp in self.dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        intent = self.dir / "ROLLBACK"
        if intent.exists():
            try:
                target = self.get(int(json.loads(intent.read_text())["target"]))
            except (ValueError, KeyError, InvalidInputError, OSError):
                intent.unlink(missing_ok=True)  # a torn intent: the rollback never started
            else:
                self._apply(target)
                report["redone_rollback"] = target.id
        current = self._pointer("CURRENT")
        if current is not None and not (self.dir / "sets" / f"{current:06d}.json").exists():
            raise StoreError(f"CURRENT names set {current}, which does not exist")
        report["deleted"] = self._delete_unreferenced()
        return report

    def verify(self, set_id: int | None = None) -> VerifyReport:
        """Recompute every file's checksum in a set (default: the active one)."""
        vset = self.get(set_id) if set_id is not None else self.current()
        if vset is None:
            raise StoreError("no version is active yet")
        return verify_set(vset, self._version_dir, self.components)
