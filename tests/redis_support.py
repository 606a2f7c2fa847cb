"""The deployment's redis-server for the tests: a missing ``redis-server`` skips the test."""

from __future__ import annotations

import os

import pytest

from deploy import aids
from deploy.aids import _free_port

__all__ = ["DeployedRedis", "RedisServer", "_free_port"]


def _skip(exc: aids.MissingTool) -> None:
    if os.environ.get("CI"):
        raise RuntimeError(f"{exc}: make test installs it") from exc
    pytest.skip(str(exc))


class RedisServer(aids.RedisServer):
    """:class:`deploy.aids.RedisServer`, skipped where redis-server is not installed."""

    def start(self, port: int | None = None) -> RedisServer:
        try:
            super().start(port)
        except aids.MissingTool as exc:
            _skip(exc)
        return self


class DeployedRedis(aids.DeployedRedis):
    """:class:`deploy.aids.DeployedRedis`, skipped where redis-server is not installed."""

    def start(self, port: int | None = None) -> DeployedRedis:
        try:
            super().start(port)
        except aids.MissingTool as exc:
            _skip(exc)
        return self
