"""Certificates for the TLS tests, made with the ``openssl`` command: a CA, a server, a client."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Certs:
    """PEM files of one throw-away CA and the certificates it signed (valid one day)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _signed(folder: Path, ca: Path, ca_key: Path, name: str, cn: str, ext: str) -> None:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    _run(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    extfile = folder / f"{name}.ext"
    extfile.write_text(ext + "\n")
    _run(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "1", "-out", str(cert), "-extfile", str(extfile),
    )  # fmt: skip
    key.chmod(0o600)


def make_certs(folder: Path) -> Certs:
    """Make a CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    _run(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "1", "-subj", "/CN=autoheal test CA", "-keyout", str(ca_key), "-out", str(ca),
    )  # fmt: skip
    _signed(
        folder, ca, ca_key, "server", "127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
    )  # fmt: skip
    _signed(folder, ca, ca_key, "client", "prometheus", "extendedKeyUsage=clientAuth")
    return Certs(
        ca,
        folder / "server.crt",
        folder / "server.key",
        folder / "client.crt",
        folder / "client.key",
    )
