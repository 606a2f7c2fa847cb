"""Ids are data, never paths: map any workflow or component id to a safe folder name.

``safe_name(id)`` keeps a readable slug of the id (ASCII letters, digits, ``-`` and ``_``,
at most 40 characters) and always appends 16 hex digits of the id's SHA-256, so:

- no id can produce ``..``, ``/``, a NUL, an absolute path, a reserved device name or an
  over-long component: the result matches ``[A-Za-z0-9_-]{0,40}-[0-9a-f]{16}``;
- two different ids map to different names (up to a 64-bit hash collision), even when their
  slugs are equal (``a/b`` and ``a_b``).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(identifier: str) -> str:
    """Return a folder name for ``identifier`` that is safe and collision-free."""
    if not isinstance(identifier, str) or not identifier:
        raise ValueError(f"identifier must be a non-empty string, but was {identifier!r}")
    digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    slug = _UNSAFE.sub("_", identifier).strip("_")[:40]
    return f"{slug}-{digest}" if slug else digest
