"""The one secret the product holds, the Redis password, is never recorded, printed or exported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autoheal_otel import AutoHealManager, PolicyConfig, PolicyError
from autoheal_otel.policy._fleet import redact_url

from .cli_support import run
from .fleet_support import wait_until
from .redis_support import RedisServer

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@10.0.0.1:6380/0", "redis://***@10.0.0.1:6380/0"),
        (f"rediss://ann:{SECRET}@h/1", "rediss://***@h/1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
    ids=["password", "user-and-password", "none"],
)
def test_urls_are_redacted(url: str, shown: str) -> None:
    """A URL's credentials become ***; a URL without any is left as it is."""
    assert redact_url(url) == shown


def test_the_audit_log_never_holds_the_password(tmp_path: Path) -> None:
    """Regression: the whole policy (fleet.url with its password) went into every session
    start and policy record; now the recorded policy's URL is redacted."""
    policy = PolicyConfig.from_dict({"fleet": {"url": f"redis://:{SECRET}@127.0.0.1:1/0"}})
    with AutoHealManager(policy=policy, data_dir=tmp_path) as m:
        m.update_policy(policy.model_copy(update={}))
        m.should_execute_step("w", "s")
    text = "".join(p.read_text() for p in (tmp_path / "audit").glob("audit-*.jsonl"))
    assert SECRET not in text and "redis://***@127.0.0.1:1/0" in text


def test_fleet_status_never_prints_the_password() -> None:
    """Regression: a connection error printed the URL with its password."""
    proc = run(["fleet", "status", "--url", f"redis://:{SECRET}@127.0.0.1:1/0"])
    assert proc.returncode == 1 and SECRET not in proc.stderr + proc.stdout
    assert "***@127.0.0.1:1" in proc.stderr


def test_the_password_comes_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host connects to a password-protected redis-server with the password from an
    environment variable (or a file), and records neither."""
    server = RedisServer(tmp_path / "redis", extra=("--requirepass", SECRET))
    (tmp_path / "redis").mkdir()
    server.start()
    try:
        fleet: dict[str, Any] = {"enabled": True, "url": server.url, "namespace": "pw"}
        monkeypatch.setenv("AUTOHEAL_REDIS_PASSWORD", SECRET)
        by_env = PolicyConfig.from_dict(
            {"fleet": {**fleet, "password_env": "AUTOHEAL_REDIS_PASSWORD"}}
        )
        secret_file = tmp_path / "redis.pw"
        secret_file.write_text(SECRET + "\n")
        by_file = PolicyConfig.from_dict({"fleet": {**fleet, "password_file": str(secret_file)}})
        for i, policy in enumerate((by_env, by_file)):
            with AutoHealManager(policy=policy, data_dir=tmp_path / f"d{i}") as m:
                assert m.fleet is not None
                assert wait_until(lambda: m.fleet.connected)  # type: ignore[union-attr]
            text = "".join(p.read_text() for p in (tmp_path / f"d{i}" / "audit").iterdir())
            assert SECRET not in text
        without = PolicyConfig.from_dict({"fleet": fleet})
        with AutoHealManager(policy=without, data_dir=tmp_path / "none") as m:
            assert m.fleet is not None and not wait_until(lambda: m.fleet.connected, 0.5)  # type: ignore[union-attr]
        monkeypatch.delenv("AUTOHEAL_REDIS_PASSWORD")
        with pytest.raises(PolicyError, match="AUTOHEAL_REDIS_PASSWORD"):
            by_env.fleet.password()
    finally:
        server.stop()


# -- strings that reach a terminal ---------------------------------------------------------------

HOSTILE = "\x1b]0;TITLE\x07\x1b[2J"


def test_control_characters_in_an_operators_text_are_refused(tmp_path: Path) -> None:
    """Regression: a reason of ESC]0;TITLE BEL ESC[2J was recorded and printed raw; now the
    CLI refuses it as bad usage (exit 2, one line) and the API refuses it too."""
    from autoheal_otel import InvalidInputError

    with AutoHealManager(data_dir=tmp_path) as m:
        m.should_execute_step("invoice", "s")
        with pytest.raises(InvalidInputError, match="control characters"):
            m.force_transition("invoice", "paused", reason=HOSTILE)
        with pytest.raises(InvalidInputError, match="control characters"):
            m.force_transition("invoice", "paused", reason="ok", actor="a\x1b[2J")
    for args in (["--reason", HOSTILE], ["--reason", "ok", "--actor", "\x1b[2J"], ["--reason", ""]):
        proc = run(["force", "invoice", "paused", "--data-dir", str(tmp_path), *args])
        assert proc.returncode == 2 and "\x1b" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_control_characters_already_in_the_log_are_shown_not_obeyed(tmp_path: Path) -> None:
    """A hostile message planted in the log comes out of `status` and `query` escaped."""
    with AutoHealManager(data_dir=tmp_path) as m:
        m.force_transition("invoice", "paused", reason="placeholder")
    seg = next((tmp_path / "audit").glob("audit-*.jsonl"))
    seg.write_text(seg.read_text().replace("placeholder", "\\u001b]0;TITLE\\u0007\\u001b[2J"))
    for command in (["status"], ["query", "transitions", "--wide"]):
        proc = run([*command, "--data-dir", str(tmp_path)])
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
        assert "\\x1b" in proc.stdout


# -- files planted in the data directory -------------------------------------------------------


def test_a_planted_temp_symlink_never_redirects_a_write(tmp_path: Path) -> None:
    """Regression: a planted `.report.html.tmp` symlink made `autoheal report` overwrite a file
    outside and leave report.html a symlink to it; now the symlink is removed, not followed."""
    from .conftest import POST

    data = tmp_path / "d"
    with AutoHealManager(data_dir=data) as m:
        m.on_step_result("invoice", "s", POST)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (data / ".report.html.tmp").symlink_to(outside)
    (data / ".report.md.tmp").symlink_to(outside)
    proc = run(["report", "--data-dir", str(data)])
    assert proc.returncode == 0, proc.stderr
    assert outside.read_text() == "keep me"
    for name in ("report.html", "report.md"):
        assert (data / name).is_file() and not (data / name).is_symlink()


def test_a_planted_components_root_is_refused(tmp_path: Path) -> None:
    """Regression: `"root": "../outside"` in components.json made `versions snapshot` write
    outside the data directory (and delete an unreferenced v07 there)."""
    import json as _json

    from autoheal_otel.versioning import SqliteComponent, StoreError, VersionedStore

    data = tmp_path / "d"
    VersionedStore(data, [SqliteComponent()])
    specs = _json.loads((data / "versions" / "components.json").read_text())
    specs[0]["root"] = "../outside"
    (data / "versions" / "components.json").write_text(_json.dumps(specs))
    with pytest.raises(StoreError, match="root must be a relative path"):
        VersionedStore.open(data)
    proc = run(["versions", "snapshot", "--reason", "x", "--data-dir", str(data)])
    assert proc.returncode == 1 and not (tmp_path / "outside").exists()


def test_a_planted_manifest_entry_is_neither_read_nor_deleted(tmp_path: Path) -> None:
    """Regression: a manifest entry naming an absolute path made `autoheal compact` delete it."""
    import json as _json

    from autoheal_otel.analytics.compaction import compact

    from .conftest import POST

    data = tmp_path / "d"
    with AutoHealManager(data_dir=data) as m:
        m.on_step_result("w", "s", POST)
    compact(data)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    manifest = data / "audit" / "compacted" / "manifest.jsonl"
    line = {"id": "x1", "results": "x1.parquet", "events": "x1.events.parquet", "segments": [],
            "rows": 0, "rollup": str(victim), "replaces": []}  # fmt: skip
    with manifest.open("a") as f:
        f.write(_json.dumps(line) + "\n")
    with AutoHealManager(data_dir=data) as m:
        m.on_step_result("w", "s", POST)
    compact(data)
    assert victim.read_text() == "keep me"


def test_symlinked_case_and_report_folders_are_not_followed(tmp_path: Path) -> None:
    """Regression: a `failure_cases/` or `reports/` symlink out of the data directory was
    followed; now the case and the report are not written there (the hook still works)."""
    from autoheal_otel.integrations import FailureCaseRecorder, MiniReportWriter

    from .conftest import POST

    data, outside = tmp_path / "d", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (data / "failure_cases").symlink_to(outside)
    (data / "reports").symlink_to(outside)
    policy = PolicyConfig.from_dict({"breakers": {"workflow": {"failure_threshold": 2}}})
    with AutoHealManager(
        policy=policy, data_dir=data, integrations=[FailureCaseRecorder(), MiniReportWriter()]
    ) as m:
        for _ in range(3):
            m.on_step_result("w", "s", POST)
        assert m.get_mode("w").value == "quarantined"
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(("mode", "dir_mode"), [("0600", 0o700), ("0640", 0o750), ("0644", 0o755)])
def test_data_files_are_private_unless_the_policy_widens_them(
    tmp_path: Path, mode: str, dir_mode: int
) -> None:
    """Regression: segments were created 0644; now the audit log and the success store get
    audit.file_mode (0600 by default) and a data directory created here its folder mode."""
    import os
    import stat

    from .conftest import OK

    data = tmp_path / "new"
    policy = PolicyConfig.from_dict({"audit": {"file_mode": mode}})
    old = os.umask(0o022)
    try:
        with AutoHealManager(policy=policy, data_dir=data) as m:
            m.on_step_result("w", "s", OK)
    finally:
        os.umask(old)
    segment = next((data / "audit").glob("audit-*.jsonl"))
    assert stat.S_IMODE(segment.stat().st_mode) == int(mode, 8)
    assert stat.S_IMODE((data / "target_memory.sqlite").stat().st_mode) == int(mode, 8)
    for folder in (data, data / "audit"):
        assert stat.S_IMODE(folder.stat().st_mode) == dir_mode
