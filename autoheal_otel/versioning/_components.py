"""Versioned components: what a learned artifact is, and how it is frozen and restored.

Each component has a *working* copy (mutable: learning writes there) and immutable version
folders under ``<data_dir>/<root>/vNN/``. Invariants:

- a version folder is never modified after it was published; files in it may be hard links
  shared with other versions and the working copy, so writers must replace files (write a new
  file, rename it into place), never modify them in place — ``FaissIndexComponent.save`` and
  ``DirectoryComponent.write_file`` do that;
- ``freeze(version_dir)`` makes ``version_dir`` equal to the working copy and returns each
  file's SHA-256; ``restore(version_dir)`` makes the working copy equal to ``version_dir``;
  both are idempotent, so an interrupted rollback can simply be redone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ..base._crash import STORE, crash_point
from ..base._errors import InvalidInputError
from ..base._fs import fresh_temp, fsync_path, open_temp
from ._ids import safe_name

__all__ = [
    "ChecksumCache",
    "Component",
    "DirectoryComponent",
    "FaissIndexComponent",
    "FileComponent",
    "PrototypesComponent",
    "SqliteComponent",
    "component_from_spec",
    "sha256_file",
]


def sha256_file(path: Path) -> str:
    """Return the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ChecksumCache:
    """Checksums by inode: a hard link shares its inode, so it is hashed once, ever.

    Keyed by (device, inode, size, mtime_ns): a file replaced by rename has a new inode, and a
    file modified in place (which the components never do) changes size or mtime.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[int, int, int, int], str] = {}

    def get(self, path: Path) -> str:
        """Return the file's SHA-256, hashing it only if this inode was never seen."""
        st = path.stat()
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = sha256_file(path)
        return found

    def remember(self, path: Path, checksum: str) -> None:
        """Record a checksum computed while the file was written."""
        st = path.stat()
        self._known[(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)] = checksum


class Component(Protocol):
    """A learned artifact under version control."""

    name: str  # a unique, path-safe name
    root: str  # the folder, relative to the data directory, that holds vNN/ folders

    def bind(self, data_dir: Path, checksums: ChecksumCache) -> None:
        """Attach the component to a store's data directory."""
        ...

    def freeze(self, version_dir: Path) -> dict[str, str]:
        """Copy the working state into ``version_dir``; return {relative path: sha256}."""
        ...

    def restore(self, version_dir: Path) -> None:
        """Make the working state equal to ``version_dir``."""
        ...


def _link_tree(source: Path, target: Path) -> None:
    """Make ``target`` a tree of hard links to ``source``'s files (copies across devices)."""
    for folder, _dirs, files in os.walk(source):
        rel = Path(folder).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            src, dst = Path(folder) / name, target / rel / name
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


class DirectoryComponent:
    """A folder of files (the generic component; prototypes and FAISS build on it)."""

    def __init__(self, name: str, root: str, working: str | None = None) -> None:
        self.name = name
        self.root = root
        self._working_rel = working or f"{root}/work"
        self.data_dir: Path | None = None
        self.checksums = ChecksumCache()

    def bind(self, data_dir: Path, checksums: ChecksumCache) -> None:
        """Attach to a store: create the working folder if needed."""
        self.data_dir = data_dir
        self.checksums = checksums
        self.working.mkdir(parents=True, exist_ok=True)

    @property
    def working(self) -> Path:
        """Return the working folder (mutable; learning writes here)."""
        assert self.data_dir is not None, "component not attached to a store"
        return self.data_dir / self._working_rel

    def write_file(self, relative: str, data: bytes) -> Path:
        """Replace one working file atomically (write, fsync, rename); return its path.

        Raises:
            InvalidInputError: ``relative`` is not a relative path that stays inside the
                working folder (empty, absolute, ``..``, a NUL, or a symlink out of it).
        """
        target = self._contained(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        with os.fdopen(open_temp(tmp), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        self.checksums.remember(target, hashlib.sha256(data).hexdigest())
        return target

    def _contained(self, relative: str) -> Path:
        """Return the working path of a file name, refusing any that would leave the folder."""
        parts = PurePosixPath(relative).parts if isinstance(relative, str) else ()
        if (
            not parts
            or "\x00" in relative
            or PurePosixPath(relative).is_absolute()
            or any(part in ("..", ".") for part in relative.split("/"))
        ):
            raise InvalidInputError(
                "relative",
                relative,
                "must be a relative file path inside the component (no '..', '.', NUL,"
                " absolute path or empty name)",
            )
        target = self.working / relative
        root = self.working.resolve()
        if not target.parent.resolve().is_relative_to(root) or target.resolve() == root:
            raise InvalidInputError("relative", relative, "must stay inside the component folder")
        return target

    def freeze(self, version_dir: Path) -> dict[str, str]:
        """Hard-link the working files into ``version_dir``; return their checksums."""
        _link_tree(self.working, version_dir)
        return {
            str(p.relative_to(version_dir)): self.checksums.get(p)
            for p in sorted(version_dir.rglob("*"))
            if p.is_file()
        }

    def restore(self, version_dir: Path) -> None:
        """Swap in a working folder of hard links to ``version_dir``."""
        fresh = self.working.with_name(f".{self.working.name}.restore")
        old = self.working.with_name(f".{self.working.name}.old")
        for leftover in (fresh, old):
            if leftover.exists():
                shutil.rmtree(leftover)
        _link_tree(version_dir, fresh)
        crash_point(STORE)
        if self.working.exists():
            os.replace(self.working, old)
        crash_point(STORE)
        os.replace(fresh, self.working)
        crash_point(STORE)
        shutil.rmtree(old, ignore_errors=True)


class PrototypesComponent(DirectoryComponent):
    """The UI-element prototypes (``learning/prototypes/vNN/``)."""

    def __init__(self) -> None:
        super().__init__("prototypes", "learning/prototypes")

    def spec(self) -> dict[str, str]:
        """Describe the component so a store can be reopened without code."""
        return {"type": "prototypes"}


class FileComponent(DirectoryComponent):
    """Any folder of files a user wants versioned (``artifacts/<safe name>/vNN/``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"file:{safe_name(name)}", f"artifacts/{safe_name(name)}")
        self.label = name

    def spec(self) -> dict[str, str]:
        """Describe the component so a store can be reopened without code."""
        return {"type": "file", "name": self.label}


class FaissIndexComponent(DirectoryComponent):
    """A workflow's FAISS index (``faiss_index/workflow_<safe id>/vNN/index.faiss``)."""

    FILENAME = "index.faiss"

    def __init__(self, workflow_id: str) -> None:
        folder = f"faiss_index/workflow_{safe_name(workflow_id)}"
        super().__init__(f"faiss:{safe_name(workflow_id)}", folder)
        self.workflow_id = workflow_id

    def spec(self) -> dict[str, str]:
        """Describe the component so a store can be reopened without code."""
        return {"type": "faiss", "workflow_id": self.workflow_id}

    def save(self, index: Any) -> Path:
        """Write a faiss index as the working copy (a new file, renamed into place)."""
        import faiss

        target = self.working / self.FILENAME
        tmp = fresh_temp(target.with_name(f".{self.FILENAME}.tmp"))
        faiss.write_index(index, str(tmp))
        fsync_path(tmp)
        checksum = sha256_file(tmp)  # hashed once, here; snapshots reuse it through the inode
        os.replace(tmp, target)
        self.checksums.remember(target, checksum)
        return target

    @staticmethod
    def load(folder: Path, mmap: bool = True) -> Any:
        """Read the index of a version (or working) folder; mmap pages load on first search."""
        import faiss

        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        return faiss.read_index(str(folder / FaissIndexComponent.FILENAME), flags)


class SqliteComponent:
    """The target-memory SQLite database, snapshotted with SQLite's online backup API.

    The live database (``target_memory.sqlite``) stays in use by its writers; a snapshot is a
    consistent copy taken while they continue, and a restore copies a snapshot back into the
    live database in one backup step (readers see the old or the new content).
    """

    FILENAME = "target_memory.sqlite"

    def __init__(
        self, name: str = "target_memory", root: str = "target_memory", live: str = FILENAME
    ) -> None:
        self.name = name
        self.root = root
        self._live_rel = live
        self.data_dir: Path | None = None

    def bind(self, data_dir: Path, checksums: ChecksumCache) -> None:
        """Attach to a store."""
        self.data_dir = data_dir

    def spec(self) -> dict[str, str]:
        """Describe the component so a store can be reopened without code."""
        return {"type": "sqlite", "name": self.name, "root": self.root, "live": self._live_rel}

    @property
    def live(self) -> Path:
        """Return the live database file."""
        assert self.data_dir is not None, "component not attached to a store"
        return self.data_dir / self._live_rel

    def freeze(self, version_dir: Path) -> dict[str, str]:
        """Back the live database up into ``version_dir``; return its checksum."""
        version_dir.mkdir(parents=True, exist_ok=True)
        target = version_dir / self.FILENAME
        source = sqlite3.connect(self.live)
        try:
            dest = sqlite3.connect(target)
            try:
                source.backup(dest)
            finally:
                dest.close()
        finally:
            source.close()
        return {self.FILENAME: _sqlite_content_digest(target)}

    def restore(self, version_dir: Path) -> None:
        """Copy a snapshot back into the live database (one backup step)."""
        source = sqlite3.connect(version_dir / self.FILENAME)
        try:
            dest = sqlite3.connect(self.live)
            try:
                source.backup(dest)
            finally:
                dest.close()
        finally:
            source.close()


def _sqlite_content_digest(path: Path) -> str:
    """Return a digest of a database's logical content (stable across page layouts)."""
    digest = hashlib.sha256()
    # A frozen copy never changes: open it immutable, so a read-only medium can be verified.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        for table in tables:
            digest.update(table.encode())
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                digest.update(repr(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()


_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _relative(spec: dict[str, str], key: str) -> str:
    """Return ``spec[key]`` if it is a plain relative path (``components.json`` is input)."""
    value = spec[key]
    parts = value.split("/") if isinstance(value, str) else [""]
    if not all(_PART.fullmatch(p) and p != ".." for p in parts):
        raise ValueError(f"{key} must be a relative path of plain names, but was {value!r:.80}")
    return value


def component_from_spec(spec: dict[str, str]) -> Component:
    """Rebuild a built-in component from its ``spec()`` (read back: every path is checked).

    Raises:
        ValueError: an unknown type, or a name or path that is not plain and relative.
    """
    kind = spec.get("type")
    if kind == "prototypes":
        return PrototypesComponent()
    if kind == "faiss":
        return FaissIndexComponent(spec["workflow_id"])  # hashed into a safe folder name
    if kind == "file":
        return FileComponent(str(spec["name"]))  # hashed into a safe folder name
    if kind == "sqlite":
        name, root, live = (_relative(spec, k) for k in ("name", "root", "live"))
        return SqliteComponent(name, root, live)
    raise ValueError(f"unknown component type {kind!r}")
