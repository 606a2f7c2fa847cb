"""The fleet against redis-server run from the shipped deploy/redis files: TLS, ACL, AOF.

The real fleet (two managers, the operator CLI) logs in as the ACL user over TLS; every
command outside that user's list is refused; a wrong password, a refused command or a wrong
CA is one line in the log and in /health while the host keeps deciding alone; a kill -9 of
redis-server keeps the fleet's state (append-only file).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from autoheal_otel import AutoHealManager, ExecutionState, Outcome, PolicyConfig, StepResult
from autoheal_otel.base._errors import PolicyError
from autoheal_otel.server._http import route

from .cli_support import run
from .fleet_support import wait_until
from .redis_support import DeployedRedis
from .tls_support import Certs, make_certs

FAIL = StepResult(outcome=Outcome.TARGET_NOT_FOUND, confidence=0.9)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[DeployedRedis]:
    srv = DeployedRedis(tmp_path_factory.mktemp("redis"), certs).start()
    yield srv
    srv.stop()


def manager(folder: Path, host: str, fleet: dict[str, Any]) -> AutoHealManager:
    fast = {"block_seconds": 0.3, "reconnect_seconds": 0.1, "ship_interval_seconds": 0.02}
    policy = PolicyConfig.from_dict({"fleet": {**fast, "host_id": host, **fleet}})
    return AutoHealManager(policy, data_dir=folder / host)


def audit_text(folder: Path) -> str:
    return "".join(p.read_text() for p in sorted(folder.rglob("*.jsonl")))


def test_the_fleet_runs_over_tls_as_the_acl_user_and_survives_a_kill_9(
    tmp_path: Path, server: DeployedRedis
) -> None:
    """Two hosts log in as `autoheal` over TLS: a quarantine decided from one host's failures
    reaches the other, the operator CLI resumes it, and after redis-server is killed with -9
    and restarted from its append-only file the fleet's state and events are all there."""
    ns = {"namespace": "autoheal"}
    a = manager(tmp_path, "host-a", server.fleet_section(**ns))
    b = manager(tmp_path, "host-b", server.fleet_section(**ns))
    try:
        assert wait_until(lambda: a.fleet.connected and b.fleet.connected, 10)  # type: ignore[union-attr]
        b.should_execute_step("invoice", "submit")
        for _ in range(10):
            a.on_step_result("invoice", "submit", FAIL)
        assert wait_until(lambda: b.get_mode("invoice") is ExecutionState.QUARANTINED, 10)
        policy = tmp_path / "operator.json"
        PolicyConfig.from_dict({"fleet": server.fleet_section(**ns)}).dump(policy)
        forced = run(["force", "invoice", "running", "--fleet", "--policy", str(policy),
                      "--reason", "fixed", "--actor", "ops"])  # fmt: skip
        assert forced.returncode == 0, forced.stderr
        assert wait_until(lambda: b.get_mode("invoice") is ExecutionState.RUNNING, 10)
        with server.client() as admin:
            before = admin.xlen("autoheal:events")
            state = admin.hgetall("autoheal:wf:invoice")
        server.kill()
        assert wait_until(lambda: not a.fleet.connected, 10)  # type: ignore[union-attr]
        server.start(server.port)
        with server.client() as admin:
            assert admin.xlen("autoheal:events") == before
            assert admin.hgetall("autoheal:wf:invoice") == state
        # Redis forgot the scripts: the link loads them again (SCRIPT LOAD, in the ACL).
        assert wait_until(lambda: a.fleet.connected and b.fleet.connected, 10)  # type: ignore[union-attr]
        for _ in range(10):
            a.on_step_result("invoice", "submit", FAIL)
        assert wait_until(lambda: b.get_mode("invoice") is ExecutionState.QUARANTINED, 10)
        status = run(["fleet", "status", "--policy", str(policy), "--json"])
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["workflows"]["invoice"]["state"] == "quarantined"
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "maxmemory"),
        ("SET", "elsewhere:x", "1"),
        ("GET", "elsewhere:x"),
        ("EVAL", "return 1", "0"),
        ("PUBLISH", "autoheal:events", "x"),
        ("XTRIM", "autoheal:events", "MAXLEN", "0"),
        ("HDEL", "autoheal:global", "state"),
        ("ACL", "LIST"),
        ("SHUTDOWN",),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_command_outside_the_acl_is_refused(
    server: DeployedRedis, command: tuple[str, ...]
) -> None:
    """The fleet user runs nothing outside its list, and touches no key outside its namespace."""
    with server.client("autoheal") as c:
        assert c.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.execute_command(*command)


def test_no_login_and_the_default_user_get_nothing(server: DeployedRedis) -> None:
    """Without a login nothing runs (the default user is off); a wrong password is refused."""
    anonymous = redis.Redis(
        host="127.0.0.1",
        port=server.port,
        ssl=True,
        ssl_ca_certs=str(server.certs.ca),
        retry=Retry(NoBackoff(), 0),
    )
    with anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.set("autoheal:x", "1")
    with server.client("autoheal", password="wrong") as c, pytest.raises(redis.AuthenticationError):
        c.ping()


def refused(
    tmp_path: Path, fleet: dict[str, Any], words: str, caplog: pytest.LogCaptureFixture
) -> AutoHealManager:
    """Start a host whose link Redis refuses; check the one line in the log and /health."""
    caplog.set_level(logging.WARNING, logger="autoheal_otel")
    host = manager(tmp_path, "refused", fleet)
    link = host.fleet
    assert link is not None
    assert wait_until(lambda: words in (link.last_error or ""), 10), link.last_error
    attempts = 0

    def several() -> bool:
        nonlocal attempts
        attempts += 1
        return attempts > 40  # ~0.2 s: several reconnect attempts at 0.1 s

    wait_until(several, 5)
    lines = [r.getMessage() for r in caplog.records if words in r.getMessage()]
    assert len(lines) == 1, lines  # one line, not one per attempt
    assert "Traceback" not in caplog.text
    code, _, body = route(host, None, "/health")
    health = json.loads(body)
    assert code == 200 and health["status"] == "degraded"
    assert words in health["fleet"]["reason"]
    # The host decides alone, with its own breakers.
    for _ in range(10):
        host.on_step_result("invoice", "submit", FAIL)
    assert host.get_mode("invoice") is ExecutionState.QUARANTINED
    return host


def test_a_wrong_password_is_one_line_and_the_host_decides_locally(
    tmp_path: Path, server: DeployedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong password: one log line and /health name the login; local breakers decide."""
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password")
    fleet = server.fleet_section(password_file=str(wrong), namespace="autoheal")
    host = refused(tmp_path, fleet, "refused the login of user 'autoheal'", caplog)
    assert "not-the-password" not in caplog.text + audit_text(tmp_path)
    host.close()


def test_a_refused_command_is_one_line_and_never_flaps_the_link(
    tmp_path: Path, server: DeployedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """A user whose ACL lacks EVALSHA: the link never counts as connected (no connected /
    disconnected pair recorded per attempt), one line says which command, locals decide."""
    with server.client() as admin:
        narrow = next(u for u in admin.acl_list() if u.startswith("user autoheal "))
        rules = narrow.split(" ", 2)[2].replace(" +evalsha", "").replace(" +script|load", "")
        admin.execute_command("ACL", "SETUSER", "narrow", "reset", *rules.split())
    fleet = server.fleet_section(username="narrow", namespace="autoheal")
    host = refused(tmp_path, fleet, "refused a command of user 'narrow'", caplog)
    host.close()
    assert "fleet.connected" not in audit_text(tmp_path)


def test_a_redis_certificate_from_another_ca_is_refused(
    tmp_path: Path, server: DeployedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """A CA file that did not sign Redis's certificate: the link says TLS failed, no login."""
    other = make_certs(tmp_path / "other")
    fleet = server.fleet_section(tls_ca_file=str(other.ca), namespace="autoheal")
    host = refused(tmp_path, fleet, "redis TLS failed", caplog)
    host.close()


def test_the_cli_says_the_login_was_refused_in_one_line(
    tmp_path: Path, server: DeployedRedis
) -> None:
    """`autoheal fleet status` with a wrong password: exit 1, one line naming the login."""
    wrong = tmp_path / "wrong.password"
    wrong.write_text("nope")
    policy = tmp_path / "p.json"
    PolicyConfig.from_dict({"fleet": server.fleet_section(password_file=str(wrong))}).dump(policy)
    result = run(["fleet", "status", "--policy", str(policy)])
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "refused the login of user 'autoheal'" in result.stderr
    assert "nope" not in result.stderr


@pytest.mark.parametrize(
    ("fleet", "words"),
    [
        ({"url": "redis://127.0.0.1:1/0", "tls_ca_file": "/x"}, "tls_ca_file needs a rediss://"),
        ({"url": "rediss://h:1/0", "tls_cert_file": "/c"}, "go together"),
        ({"username": "bad user"}, "username"),
    ],
    ids=["ca-without-tls", "cert-without-key", "bad-username"],
)
def test_fleet_tls_and_login_settings_are_validated(fleet: dict[str, Any], words: str) -> None:
    """TLS files with a plain URL, half a client certificate, a bad user name: refused."""
    with pytest.raises(PolicyError) as info:
        PolicyConfig.from_dict({"fleet": fleet})
    assert words in str(info.value)


def test_the_host_id_comes_from_the_environment_when_the_policy_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One policy file for every host: AUTOHEAL_HOST_ID names the host (same policy version
    everywhere); a name a host id cannot have is refused, naming the variable."""
    policy = PolicyConfig.from_dict({"fleet": {"enabled": True}})
    monkeypatch.setenv("AUTOHEAL_HOST_ID", "robot-07")
    assert policy.fleet.host() == "robot-07"
    assert PolicyConfig.from_dict({"fleet": {"enabled": True, "host_id": "x"}}).fleet.host() == "x"
    monkeypatch.setenv("AUTOHEAL_HOST_ID", "bad/name")
    with pytest.raises(PolicyError) as info:
        policy.fleet.host()
    assert "AUTOHEAL_HOST_ID" in str(info.value)


def test_a_client_certificate_is_presented_when_redis_requires_one(
    tmp_path: Path, server: DeployedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """With `tls-auth-clients yes`, a host without fleet.tls_cert_file cannot connect (one
    line, local decisions); with the client certificate and key it links."""
    with server.client() as admin:
        admin.config_set("tls-auth-clients", "yes")
    try:
        certs = server.certs
        with_cert = server.fleet_section(
            namespace="autoheal",
            tls_cert_file=str(certs.client_cert),
            tls_key_file=str(certs.client_key),
        )
        host = manager(tmp_path, "with-cert", with_cert)
        try:
            assert wait_until(lambda: bool(host.fleet and host.fleet.connected), 10)
        finally:
            host.close()
        refused(tmp_path, server.fleet_section(namespace="autoheal"), "redis", caplog).close()
    finally:
        with server.client(ssl_certfile=str(server.certs.client_cert),
                           ssl_keyfile=str(server.certs.client_key)) as admin:  # fmt: skip
            admin.config_set("tls-auth-clients", "optional")
