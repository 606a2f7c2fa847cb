"""The deployment's certificates for the TLS tests: a missing ``openssl`` skips the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import aids
from deploy.aids import Certs

__all__ = ["Certs", "make_certs"]


def make_certs(folder: Path) -> Certs:
    """:func:`deploy.aids.make_certs`, skipped where openssl is not installed."""
    try:
        return aids.make_certs(folder)
    except aids.MissingTool as exc:
        pytest.skip(str(exc))
