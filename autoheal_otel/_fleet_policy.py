"""The ``fleet`` section of the policy: one set of breakers for every executor host, on Redis.

Off by default. With ``enabled`` the manager starts a fleet link (:mod:`autoheal_otel.fleet`,
extra ``[fleet]``) that ships this host's failures to Redis and follows the fleet's
decisions; the thresholds stay those of the ``breakers`` section.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, Strict

from ._errors import PolicyError

__all__ = ["FleetPolicy", "default_host_id", "redact_url"]

_Count = Annotated[int, Strict()]
_Number = Annotated[float, Strict()]
_Flag = Annotated[bool, Strict()]


def default_host_id() -> str:
    """Return this machine's host name (the default ``fleet.host_id``)."""
    return socket.gethostname() or "host"


class FleetPolicy(BaseModel):
    """Where the fleet's shared state lives, what it decides, and how long a link may wait."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, validate_by_name=True
    )

    enabled: _Flag = False
    url: str = Field(
        "redis://127.0.0.1:6379/0",
        min_length=1,
        description="redis:// (or rediss:// for TLS) URL. Keep the password out of it: it is"
        " redacted wherever the URL is recorded or printed, but the policy file itself is"
        " plain text; use password_env or password_file.",
    )
    password_env: str | None = Field(
        None,
        max_length=128,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable that holds the Redis password (never recorded).",
    )
    password_file: str | None = Field(
        None,
        max_length=4096,
        description="A file whose first line is the Redis password (never recorded).",
    )
    namespace: str = Field("autoheal", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    host_id: str | None = Field(
        None,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="This host's name in the fleet (default: the machine's host name).",
    )
    scopes: tuple[Literal["workflow", "global"], ...] = Field(
        ("workflow", "global"),
        description="Which windows the fleet decides (with the link up); step streaks stay"
        " per host.",
    )
    min_hosts: _Count = Field(
        2, ge=1, description="A fleet-wide global pause needs failures from this many hosts."
    )
    timeout_seconds: _Number = Field(
        0.05, gt=0, le=5, description="Socket and connect timeout of every Redis call."
    )
    block_seconds: _Number = Field(
        1.0, gt=0, le=30, description="How long the stream reader waits for fleet events."
    )
    ship_interval_seconds: _Number = Field(
        0.05, gt=0, le=10, description="How often queued results are shipped (one batch)."
    )
    queue_size: _Count = Field(
        10_000, ge=10, description="Results waiting to ship; beyond it they are dropped, counted."
    )
    batch_size: _Count = Field(500, ge=1)
    reconnect_seconds: _Number = Field(
        1.0, gt=0, le=60, description="Wait between attempts while Redis is unreachable."
    )
    probe_lease_seconds: _Number = Field(
        30.0, gt=0, description="How long a won probe lease lets this host admit the probe."
    )
    max_workflows: _Count = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="The most workflows a host tracks before fleet events may add more: past"
        " it, an event naming a new workflow pauses the host (fail closed, recorded) instead"
        " of growing its memory for whoever writes to Redis.",
    )
    stream_max_events: _Count = Field(
        100_000, ge=100, description="The fleet event stream is trimmed to about this length."
    )

    def host(self) -> str:
        """Return ``host_id`` or the machine's host name."""
        return self.host_id or default_host_id()

    def password(self) -> str | None:
        """Return the Redis password from ``password_env`` or ``password_file`` (None: none).

        Raises:
            PolicyError: the variable is unset, or the file cannot be read.
        """
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise PolicyError(
                    f"fleet.password_env names {self.password_env!r}, which is not set",
                    field="fleet.password_env",
                )
            return value
        if self.password_file is not None:
            try:
                text = Path(self.password_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise PolicyError(
                    f"fleet.password_file {self.password_file!r} cannot be read ({exc.strerror})",
                    field="fleet.password_file",
                ) from exc
            return text.splitlines()[0] if text else ""
        return None


def redact_url(url: str) -> str:
    """Return ``url`` with any password (and user name) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"***@{host}"))
