"""What the versioned store hands out: a version set, and a verification report.

A :class:`VersionSet` is immutable once written (its file is the commit point of a
snapshot); its label (``s000007``) is what every result records as its artifact version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from .._models import VersionInfo

__all__ = ["VerifyReport", "VersionSet"]


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
