"""The ``fleet`` section of the policy: one set of breakers for every executor host, on Redis.

Off by default. With ``enabled`` the manager starts a fleet link (:mod:`autoheal_otel.fleet`,
extra ``[fleet]``) that ships this host's failures to Redis and follows the fleet's
decisions; the thresholds stay those of the ``breakers`` section.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from ..base._errors import PolicyError

__all__ = ["HOST_ID_ENV", "FleetPolicy", "default_host_id", "redact_url"]

_Count = Annotated[int, Strict()]
_Number = Annotated[float, Strict()]
_Flag = Annotated[bool, Strict()]


#: The environment variable that names this host in the fleet when ``fleet.host_id`` is unset
#: (several hosts' processes on one machine, or one policy file shared by every host).
HOST_ID_ENV = "AUTOHEAL_HOST_ID"


def default_host_id() -> str:
    """Return ``$AUTOHEAL_HOST_ID`` if set, else this machine's host name.

    Raises:
        PolicyError: the variable is set to a name a host id cannot have.
    """
    name = os.environ.get(HOST_ID_ENV)
    if name is not None:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", name):
            raise PolicyError(
                f"{HOST_ID_ENV} must be 1-128 of A-Z a-z 0-9 _ . : -, but was {name[:40]!r}",
                field="fleet.host_id",
            )
        return name
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
    username: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.@-]+$",
        description="The Redis ACL user (None: the default user). Give the fleet a user that"
        " may run only its commands on its namespace's keys (deploy/redis/users.acl).",
    )
    tls_ca_file: str | None = Field(
        None,
        max_length=4096,
        description="CA certificate (PEM) that signed Redis's certificate; needs a rediss://"
        " URL. None with rediss://: the system's CAs.",
    )
    tls_cert_file: str | None = Field(
        None, max_length=4096, description="Client certificate (PEM) when Redis asks for one."
    )
    tls_key_file: str | None = Field(
        None, max_length=4096, description="The client certificate's private key (PEM)."
    )
    namespace: str = Field("autoheal", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    host_id: str | None = Field(
        None,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="This host's name in the fleet (default: $AUTOHEAL_HOST_ID, else the"
        " machine's host name; leave it unset to share one policy file between hosts).",
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

    @model_validator(mode="after")
    def _tls_needs_rediss(self) -> FleetPolicy:
        """Refuse TLS files with a plain redis:// URL: they would be silently unused."""
        tls = {"tls_ca_file": self.tls_ca_file, "tls_cert_file": self.tls_cert_file}
        tls["tls_key_file"] = self.tls_key_file
        named = [k for k, v in tls.items() if v is not None]
        if named and not self.url.startswith("rediss://"):
            raise ValueError(
                f"{named[0]} needs a rediss:// url (TLS), but url is {redact_url(self.url)!r}"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        return self

    def connection(self) -> dict[str, Any]:
        """Return redis-py's connection arguments for the login and TLS (no password)."""
        out: dict[str, Any] = {}
        if self.username is not None:
            out["username"] = self.username
        if self.url.startswith("rediss://"):
            out["ssl_cert_reqs"] = "required"
            if self.tls_ca_file is not None:
                out["ssl_ca_certs"] = self.tls_ca_file
            if self.tls_cert_file is not None:
                out["ssl_certfile"] = self.tls_cert_file
                out["ssl_keyfile"] = self.tls_key_file
        return out

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
