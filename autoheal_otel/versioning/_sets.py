"""What the versioned store hands out: a version set, and a verification report.

A :class:`VersionSet` is immutable once written (its file is the commit point of a
snapshot); its label (``s000007``) is what every result records as its artifact version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from ..base._models import VersionInfo
from ._components import Component, SqliteComponent, _sqlite_content_digest, sha256_file

__all__ = ["VerifyReport", "VersionSet", "verify_set"]


class VersionSet(BaseModel):
    """One consistent set of component versions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    created_at: AwareDatetime
    reason: str
    parent: int | None = None
    components: dict[str, VersionInfo]

    @property
    def label(self) -> str:
        """Return the set's label as results record it (``s000007``)."""
        return f"s{self.id:06d}"

    def version_of(self, component: str) -> int:
        """Return the version of one component in this set."""
        return self.components[component].version


@dataclass
class VerifyReport:
    """What :meth:`VersionedStore.verify` found."""

    set_id: int
    checked: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when every file matched its checksum."""
        return not self.problems


def verify_set(
    vset: VersionSet, folder_of: Callable[[str, int], Path], components: Mapping[str, Component]
) -> VerifyReport:
    """Recompute every file's checksum in ``vset`` (``folder_of(component, version)`` holds it)."""
    report = VerifyReport(set_id=vset.id)
    for name, info in vset.components.items():
        folder = folder_of(name, info.version)
        component = components.get(name)
        for rel, expected in info.checksums.items():
            path = folder / rel
            report.checked += 1
            if not path.exists():
                report.problems.append({"component": name, "file": rel, "problem": "missing"})
                continue
            actual = (
                _sqlite_content_digest(path)
                if isinstance(component, SqliteComponent)
                else sha256_file(path)
            )
            if actual != expected:
                report.problems.append({"component": name, "file": rel, "problem": "checksum"})
    return report
