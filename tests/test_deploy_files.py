"""What deploy/ ships, checked by the tools that will read it: systemd-analyze, promtool,
redis-server's own parser (tests/test_deploy_redis.py runs it), and the fleet's code itself."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoheal_otel.cli._args import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
PROMTOOL = shutil.which("promtool")
HARDENING = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "SystemCallArchitectures": "native",
}


def unit(name: str) -> dict[str, list[str]]:
    """Return a unit's keys and values (continuation lines joined)."""
    text = (DEPLOY / "systemd" / name).read_text().replace("\\\n", " ")
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def runnable_copy(tmp_path: Path, name: str) -> Path:
    """Copy a unit with its ExecStart binary pointed at one that exists here."""
    text = (DEPLOY / "systemd" / name).read_text()
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent))
    assert exe is not None
    text = text.replace("/opt/autoheal/venv/bin/autoheal", exe)
    redis = shutil.which("redis-server")
    if redis is not None:
        text = text.replace("/usr/bin/redis-server", redis)
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", ["autoheal-serve.service", "autoheal-redis.service"])
def test_systemd_units_verify_clean(tmp_path: Path, name: str) -> None:
    """`systemd-analyze verify` accepts each unit without a single warning (an unknown or
    misspelt key is a warning, so stderr must be empty)."""
    result = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(runnable_copy(tmp_path, name))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_catches_a_misspelt_key(tmp_path: Path) -> None:
    """The check above can fail: a misspelt hardening key makes verify complain."""
    path = runnable_copy(tmp_path, "autoheal-serve.service")
    path.write_text(path.read_text().replace("ProtectSystem=", "ProtectSystm="))
    result = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert "ProtectSystm" in result.stderr


@pytest.mark.parametrize("name", ["autoheal-serve.service", "autoheal-redis.service"])
def test_units_run_as_their_own_user_with_hardening(name: str) -> None:
    """Each unit runs as an unprivileged user of its own with the hardening options set."""
    keys = unit(name)
    assert keys["User"][0] not in ("root", "") and keys["Group"][0]
    for key, value in HARDENING.items():
        assert keys.get(key) == [value], (name, key)


def test_the_serve_unit_command_line_is_valid_and_needs_its_web_config() -> None:
    """The serve unit's command line parses with the real CLI, binds a routable address and
    therefore carries --web-config (serve refuses that address without it)."""
    argv = shlex.split(unit("autoheal-serve.service")["ExecStart"][0])[1:]
    args = build_parser(argv).parse_args(argv)
    assert args.command == "serve" and args.host == "0.0.0.0"
    assert args.web_config == Path("/etc/autoheal/web.yml")
    assert not args.insecure and not args.simulate


def test_redis_config_keeps_fleet_state() -> None:
    """AOF every second, no eviction under a memory limit, TLS only, the ACL file."""
    conf = dict(
        line.split(None, 1)
        for line in (DEPLOY / "redis" / "redis.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert conf["appendonly"] == "yes" and conf["appendfsync"] == "everysec"
    assert conf["maxmemory-policy"] == "noeviction" and conf["maxmemory"].endswith("mb")
    assert conf["port"] == "0" and conf["tls-port"].isdigit()
    assert conf["aclfile"].endswith("users.acl")


def fleet_commands() -> set[str]:
    """Return every Redis command the fleet's code sends (client calls and Lua calls)."""
    fleet = ROOT / "autoheal_otel" / "fleet"
    lua = set(re.findall(r"redis\.call\('([A-Z]+)'", (fleet / "_scripts.py").read_text()))
    store = (fleet / "_store.py").read_text()
    methods = set(re.findall(r"\b(?:self\.client|ns|pipe)\.([a-z]+)\(", store))
    methods -= {"pipeline", "execute", "register_script", "close"}
    assert "register_script" in store  # scripts run as EVALSHA, loaded by SCRIPT LOAD
    return {m.upper() for m in methods} | {c.upper() for c in lua} | {"EVALSHA", "SCRIPT|LOAD"}


def test_the_fleet_acl_allows_exactly_the_commands_the_fleet_sends() -> None:
    """The fleet user's ACL lists exactly the commands found in the fleet's code: one more
    would widen what a stolen password can do, one fewer would break the fleet."""
    line = next(
        ln for ln in (DEPLOY / "redis" / "users.acl").read_text().splitlines()
        if ln.startswith("user autoheal ")
    )  # fmt: skip
    allowed = {w[1:].upper() for w in line.split() if w.startswith("+")}
    assert "-@all" in line.split() and "~autoheal:*" in line.split()
    assert allowed == fleet_commands()


def deployed_prometheus(tmp_path: Path) -> Path:
    """Lay out deploy/prometheus as installed, with the generated alerts.yml beside it."""
    folder = tmp_path / "prometheus"
    shutil.copytree(DEPLOY / "prometheus", folder)
    shutil.copy(ROOT / "config" / "prometheus" / "alerts.yml", folder / "alerts.yml")
    (folder / "ca.crt").write_text("promtool checks that the file exists, not its content\n")
    (folder / "scrape.password").write_text("x")
    return folder / "prometheus.yml"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
def test_promtool_checks_the_prometheus_config_and_rules(tmp_path: Path) -> None:
    """`promtool check config` (file_sd, TLS, basic auth, both rule files) and `check rules`."""
    config = deployed_prometheus(tmp_path)
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(config.parent / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_file_sd_targets_are_valid() -> None:
    """Every shipped target file is a list of groups of host:port targets."""
    for path in (DEPLOY / "prometheus" / "targets").glob("*.yml"):
        groups = yaml.safe_load(path.read_text())
        assert isinstance(groups, list) and groups
        for group in groups:
            assert all(re.fullmatch(r"[\w.-]+:\d+", t) for t in group["targets"])


def test_grafana_provisioning_serves_the_generated_dashboards() -> None:
    """The provisioned data source has the uid every dashboard panel refers to; the provider
    is a file provider with a path."""
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/autoheal.yml").read_text())
    uids = {d["uid"] for d in ds["datasources"] if d["type"] == "prometheus"}
    used: set[str] = set()
    for board in (ROOT / "dashboards").glob("*.json"):
        text = json.loads(board.read_text())
        used |= set(re.findall(r'"uid": "([^"$]+)"', json.dumps(text)))
        used.discard(text.get("uid", ""))
    assert used and used <= uids, (used, uids)
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/autoheal.yml").read_text())
    (only,) = provider["providers"]
    assert only["type"] == "file" and only["options"]["path"].startswith("/")
