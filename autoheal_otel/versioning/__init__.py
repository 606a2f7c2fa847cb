"""Versioned learned artifacts: prototypes, FAISS indexes, target memory, any files."""

from ._components import (
    ChecksumCache,
    Component,
    DirectoryComponent,
    FaissIndexComponent,
    FileComponent,
    PrototypesComponent,
    SqliteComponent,
)
from ._ids import safe_name
from ._store import StoreError, VerifyReport, VersionedStore, VersionSet

__all__ = [
    "ChecksumCache",
    "Component",
    "DirectoryComponent",
    "FaissIndexComponent",
    "FileComponent",
    "PrototypesComponent",
    "SqliteComponent",
    "StoreError",
    "VerifyReport",
    "VersionSet",
    "VersionedStore",
    "safe_name",
]
