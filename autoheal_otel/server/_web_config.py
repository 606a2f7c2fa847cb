"""The web config of ``autoheal serve``: TLS and basic auth, in the Prometheus exporters' format.

The file is the one every Prometheus exporter reads with ``--web.config.file`` (YAML)::

    tls_server_config:
      cert_file: server.crt          # PEM; relative paths are read beside the config file
      key_file: server.key
      client_ca_file: clients-ca.crt # optional: clients must present a certificate it signed
      client_auth_type: RequireAndVerifyClientCert   # default with client_ca_file
      min_version: TLS12             # TLS12 (default) or TLS13
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes only (htpasswd -nBC 10 "" | tr -d ':\\n')

Invariants:

- an unknown key, a file that cannot be read, a certificate that does not match its key or a
  password that is not a bcrypt hash is a :class:`WebConfigError` naming the key and value:
  the server never starts with less protection than the file asked for;
- a password is checked with bcrypt for every user name, known or not (an unknown name costs
  the same as a wrong password), and the names are compared in constant time;
- a successful check is remembered (by user name and a SHA-256 of the password, bounded), so a
  scraper that sends the same credentials every second pays bcrypt once, not per scrape; a
  failed one is never remembered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base._errors import PolicyError

__all__ = ["BasicAuth", "WebConfig", "WebConfigError", "load_web_config"]

#: Errors in the web config are policy errors (``field`` names the key, ``source`` the file).
WebConfigError = PolicyError

_TLS_KEYS = frozenset(
    {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
)
_CLIENT_AUTH = ("NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
#: Remembered successful logins at most (user, password digest).
_CACHE_SIZE = 64
_HASH_PREFIXES = ("$2a$", "$2b$", "$2y$")


class BasicAuth:
    """Check ``Authorization: Basic`` headers against bcrypt hashes (see the module docstring)."""

    realm = "autoheal"

    def __init__(self, users: dict[str, bytes]) -> None:
        import bcrypt  # the serve extra: only a config with users needs it

        self._bcrypt = bcrypt
        self._users = users
        # A hash of the same cost as the first user's: an unknown name is checked against it.
        first = next(iter(users.values()))
        self._decoy = bcrypt.hashpw(b"decoy", first[:7] + bcrypt.gensalt()[7:])
        self._good: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _credentials(header: str | None) -> tuple[str, bytes] | None:
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            raw = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        user, sep, password = raw.partition(b":")
        if not sep:
            return None
        return user.decode("utf-8", "replace"), password

    def remembered(self, header: str | None) -> bool:
        """Return True when ``header`` holds credentials that passed before (no bcrypt)."""
        creds = self._credentials(header)
        if creds is None:
            return False
        key = (creds[0], hashlib.sha256(creds[1]).digest())
        with self._lock:
            return key in self._good

    def check(self, header: str | None) -> bool:
        """Return True when ``header`` carries a known user and that user's password."""
        creds = self._credentials(header)
        if creds is None:
            return False
        user, password = creds
        key = (user, hashlib.sha256(password).digest())
        with self._lock:
            if key in self._good:
                self._good.move_to_end(key)
                return True
        hashed = self._decoy
        found = False
        for name, value in self._users.items():  # every name compared: no early exit
            if hmac.compare_digest(name.encode(), user.encode()):
                hashed, found = value, True
        ok = self._bcrypt.checkpw(password[:72], hashed) and found
        if ok:
            with self._lock:
                self._good[key] = None
                while len(self._good) > _CACHE_SIZE:
                    self._good.popitem(last=False)
        return bool(ok)


@dataclass(frozen=True)
class WebConfig:
    """What a web config file asks for: a TLS context and/or basic auth (None: not asked)."""

    tls: ssl.SSLContext | None = None
    auth: BasicAuth | None = None
    users: tuple[str, ...] = field(default=())

    @property
    def scheme(self) -> str:
        """Return ``https`` with TLS, else ``http``."""
        return "https" if self.tls is not None else "http"


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolicyError(f"{where} must be a mapping, but was {type(value).__name__}", field=where)
    return value


def _path(base: Path, tls: dict[str, Any], key: str) -> Path | None:
    value = tls.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise PolicyError(
            f"tls_server_config.{key} must be a file name, but was {value!r:.80}",
            field=f"tls_server_config.{key}",
        )
    path = (base / value) if not Path(value).is_absolute() else Path(value)
    if not path.is_file():
        raise PolicyError(
            f"tls_server_config.{key} {str(path)!r} is not a readable file",
            field=f"tls_server_config.{key}",
        )
    return path


def _tls(base: Path, tls: dict[str, Any]) -> ssl.SSLContext:
    unknown = sorted(set(tls) - _TLS_KEYS)
    if unknown:
        raise PolicyError(
            f"tls_server_config.{unknown[0]} is not supported (known: {', '.join(sorted(_TLS_KEYS))})",
            field=f"tls_server_config.{unknown[0]}",
        )
    cert, key = _path(base, tls, "cert_file"), _path(base, tls, "key_file")
    if cert is None or key is None:
        missing = "cert_file" if cert is None else "key_file"
        raise PolicyError(
            f"tls_server_config.{missing} is required with TLS",
            field=f"tls_server_config.{missing}",
        )
    version = tls.get("min_version", "TLS12")
    if version not in _VERSIONS:
        raise PolicyError(
            f"tls_server_config.min_version must be TLS12 or TLS13, but was {version!r:.40}",
            field="tls_server_config.min_version",
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[version]
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise PolicyError(
            f"tls_server_config.cert_file/key_file {str(cert)!r}, {str(key)!r} cannot be loaded"
            f" ({getattr(exc, 'reason', None) or exc})",
            field="tls_server_config.cert_file",
        ) from exc
    ca = _path(base, tls, "client_ca_file")
    auth_type = tls.get("client_auth_type", "RequireAndVerifyClientCert" if ca else "NoClientCert")
    if auth_type not in _CLIENT_AUTH:
        raise PolicyError(
            f"tls_server_config.client_auth_type must be one of {', '.join(_CLIENT_AUTH)},"
            f" but was {auth_type!r:.60}",
            field="tls_server_config.client_auth_type",
        )
    if auth_type != "NoClientCert":
        if ca is None:
            raise PolicyError(
                f"tls_server_config.client_auth_type {auth_type} needs client_ca_file",
                field="tls_server_config.client_ca_file",
            )
        try:
            ctx.load_verify_locations(ca)
        except (ssl.SSLError, OSError) as exc:
            raise PolicyError(
                f"tls_server_config.client_ca_file {str(ca)!r} cannot be loaded ({exc})",
                field="tls_server_config.client_ca_file",
            ) from exc
        required = auth_type == "RequireAndVerifyClientCert"
        ctx.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return ctx


def _users(raw: dict[str, Any]) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    for name, hashed in raw.items():
        where = f"basic_auth_users.{name}"
        if not isinstance(name, str) or not name or ":" in name:
            raise PolicyError(f"{where}: a user name must be text without ':'", field=where)
        if not isinstance(hashed, str) or not hashed.startswith(_HASH_PREFIXES):
            raise PolicyError(
                f"{where} must be a bcrypt hash ($2y$..., from htpasswd -B), not a password",
                field=where,
            )
        users[name] = hashed.encode()
    return users


def load_web_config(path: Path) -> WebConfig:
    """Read a web config file (see the module docstring).

    Raises:
        WebConfigError: the file cannot be read or is invalid (the key and value named).
    """
    try:
        return _load(path)
    except PolicyError as exc:
        exc.source = f"--web-config {path}"
        raise


def _load(path: Path) -> WebConfig:
    import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot be read ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML ({exc})") from exc
    top = _mapping(data, "the web config")
    unknown = sorted(set(top) - {"tls_server_config", "basic_auth_users"})
    if unknown:
        raise PolicyError(
            f"{unknown[0]} is not supported in a web config (known: tls_server_config,"
            " basic_auth_users)",
            field=str(unknown[0]),
        )
    tls_section = _mapping(top.get("tls_server_config"), "tls_server_config")
    users = _users(_mapping(top.get("basic_auth_users"), "basic_auth_users"))
    tls = _tls(path.parent, tls_section) if tls_section else None
    auth = BasicAuth(users) if users else None
    return WebConfig(tls=tls, auth=auth, users=tuple(users))
