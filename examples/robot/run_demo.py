"""Run the example suite on a real headless Chromium and tell the story from the audit log.

``make robot-demo`` runs this: it serves the invoice application on 127.0.0.1, runs
``robot`` with the auto-heal listener (one option), then reads the audit log with DuckDB and
prints each task's state next to RF's verdict. Everything lands in ``robot-demo-data/``
(``log.html``, ``report.html``, ``output.xml`` and the ``autoheal/`` data directory).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from app import serve  # noqa: E402  (the example's own module, beside this file)

from autoheal_otel.analytics import AuditAnalytics  # noqa: E402

#: The story the suite tells: the transitions the audit log must hold, and RF's failed tasks
#: (Invoice 03-05: not found; 08-09: the postcondition fails; 10 is skipped, not failed).
STORY = [("running", "degraded"), ("degraded", "running"), ("running", "quarantined")]
FAILED_TASKS = 5


def run(out: Path) -> int:
    """Serve the application, run the suite under auto-heal into ``out``; return RF's rc."""
    if out.exists():
        shutil.rmtree(out)  # a fresh data directory: a warm restart would start quarantined
    out.mkdir(parents=True)
    data = out / "autoheal"
    app, url = serve()
    listener = (
        f"autoheal_otel.robot.AutoHealListener;policy={HERE / 'policy.json'};"
        f"data_dir={data};workflow=tag"
    )
    with tempfile.TemporaryDirectory(prefix="autoheal-chromium-") as profile:
        command = [
            str(Path(sys.executable).with_name("robot")),
            "--rpa",
            "--listener", listener,
            "--variable", f"URL:{url}",
            "--variable", f"PROFILE:{profile}",
            "--outputdir", str(out),
            "--consolewidth", "100",
            str(HERE / "tasks.robot"),
        ]  # fmt: skip
        rc = subprocess.run(command, check=False).returncode
    app.shutdown()
    print(f"\nWhat the audit log says (DuckDB over {data / 'audit'}):")
    with AuditAnalytics(data) as db:
        moves = db.sql(
            "SELECT strftime(ts, '%H:%M:%S.%g') AS at, previous_state, state, reason "
            "FROM audit WHERE kind = 'transition' ORDER BY seq"
        )
        for row in moves:
            print(f"  {row['at']}  {row['previous_state']} → {row['state']}  ({row['reason']})")
        counts = db.sql(
            "SELECT count(*) FILTER (kind = 'result') AS results, "
            "count(*) FILTER (kind = 'gate' AND NOT allowed) AS refused FROM audit"
        )[0]
    print(f"  {counts['results']} step results, {counts['refused']} refused gates")
    print(f"\nRobot Framework's log: {out / 'log.html'}  (rc {rc}: failed tasks)")
    return verdict(rc, [(m["previous_state"], m["state"]) for m in moves])


def verdict(rc: int, moves: list[tuple[str, str]]) -> int:
    """Return the demo's exit status: 0 when the story went as told, else 1 (RF's own error
    codes, 250 and up, as they are), with one line saying what differed."""
    if rc >= 250:
        print(f"robot-demo: Robot Framework stopped with rc {rc} (see its output above)")
        return rc
    if moves != STORY or rc != FAILED_TASKS:
        print(
            f"robot-demo: the story did not go as told: {rc} failed tasks (expected"
            f" {FAILED_TASKS}), transitions {moves} (expected {STORY})"
        )
        return 1
    print("robot-demo: the story went as told (5 failed tasks are part of it)")
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("robot-demo-data")))
