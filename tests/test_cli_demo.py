"""What the demo shows: every phase's transitions stay on screen, in 80 columns, quickly."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import socket
import struct
import subprocess
import termios
import time
from pathlib import Path

from autoheal_otel.analytics import AuditAnalytics

from .cli_support import EXE, run


def _transitions(data: Path) -> list[dict[str, object]]:
    with AuditAnalytics(data) as db:
        return db.query("transitions", workflow_id="")


def test_each_transition_stays_on_screen_in_80_columns(tmp_path: Path) -> None:
    """Without --no-live's redraw, each phase prints a line per transition with why, within 80
    columns — run from a deeply nested folder (regression: the activate hint grew with it)."""
    deep = tmp_path / ("nested-" * 8) / ("folder-" * 8)
    deep.mkdir(parents=True)
    data = deep / "d"
    proc = run(["demo", "--no-live", "--data-dir", "d"], env={"COLUMNS": "80"}, cwd=deep)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # The layout fits 80 columns; a hint naming the command or its folder by its install path
    # is as long as that path, so those are measured with short names.
    exe = str(EXE)
    bin_dir = str(Path(exe).parent)
    assert (
        max(len(line.replace(exe, "autoheal").replace(bin_dir, ".venv/bin")) for line in lines)
        <= 80
    )
    shown = [line for line in lines if line.startswith("   - ")]
    recorded = _transitions(data)
    assert len(shown) == len(recorded) == 16
    for line, t in zip(shown, recorded, strict=True):
        assert line.startswith(f"   - {t['workflow_id']}: {t['previous_state']} -> {t['state']}")
    assert "minutes of robot time" in proc.stdout
    # The hints name the command as this user can run it (it said `autoheal`, not on PATH).
    on_path = shutil.which("autoheal")
    runnable = (
        "autoheal" if on_path and Path(on_path).resolve() == Path(str(EXE)).resolve() else EXE
    )
    assert f"  {runnable} status --data-dir d" in lines


def test_live_mode_redraws_only_the_table(tmp_path: Path) -> None:
    """On an 80-column terminal, the redraw erases only the table, so every phase's story stays."""
    assert EXE is not None
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [EXE, "demo", "--data-dir", "d"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the pty closes when the demo exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    assert proc.stderr is not None
    proc.stderr.close()
    out = b"".join(chunks).decode()
    # Eight phases: seven redraws, each going up exactly the table's six lines (its header,
    # four workflows and the global line), never into the transition lines above it.
    assert out.count("\x1b[6F\x1b[J") == out.count("F\x1b[J") == 7
    assert out.count("   - ") == 16
    for line in out.replace("\r", "").splitlines():
        visible = line
        for code in ("\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[35m", "\x1b[90m", "\x1b[0m"):
            visible = visible.replace(code, "")
        visible = visible.split("\x1b[J")[-1].replace(str(EXE), "autoheal")
        assert len(visible) <= 80, line


def test_an_unreachable_collector_costs_one_line_not_twenty_seconds(tmp_path: Path) -> None:
    """A closed OTLP port: one warning line and the demo's usual speed (it took 21 s with 18 retry lines)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    proc = run(
        ["demo", "--json", "--data-dir", str(tmp_path / "d")],
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"},
    )
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["transitions"] == 16
    assert proc.stderr.strip().splitlines() == [
        f"autoheal: warning: no OTLP collector answers at http://127.0.0.1:{port}; "
        "running the demo without exporting telemetry"
    ]
    assert took < 10, took
