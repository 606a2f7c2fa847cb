"""`make prod-check`: the whole deployment run on loopback, each step asserted, with a timeline.

Three robot hosts (``deploy/_robot.py``: the simulated executor with real FAISS, one process
each, one fleet), redis-server from the shipped ``deploy/redis`` files (TLS, ACL user, AOF),
``autoheal serve`` per host over TLS with a login (a web config), and a real Prometheus that
finds the hosts by file discovery and evaluates the shipped rules. The story:

normal work -> an application outage on two hosts -> the fleet pauses every host -> the pause
alert fires in Prometheus (``ALERTS``) -> an operator resumes the fleet from the CLI -> the
alert resolves -> redis-server killed with -9 and restarted from its append-only file: the
fleet's state is intact -> a host killed with -9 and restarted: its state is restored -> a
rolling upgrade to a new policy version (the policy-version metric shows the mix, then one)
-> ``autoheal replay`` reproduces each host's log, and one DuckDB query over every host's log
counts every failure the robots reported.

Exit 0 when every step held, 1 with the step that failed. ``--keep`` keeps the work folder.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bcrypt
from _stack import (
    SCRAPE_PASSWORD,
    CheckFailed,
    Host,
    Prometheus,
    Timeline,
    count_log,
    fleet_state,
    run_cli,
    serve_health,
    wait,
    write_policy,
)

from deploy.aids import DeployedRedis, MissingTool, make_certs

PAUSE_ALERT = "AutohealGlobalPause"
HOSTS = ("robot-1", "robot-2", "robot-3")


def story(root: Path, log: Timeline) -> None:  # noqa: C901 — one scripted story, read top to bottom
    certs = make_certs(root / "certs")
    (root / "redis").mkdir()
    started = time.monotonic()
    redis = DeployedRedis(root / "redis", certs).start()
    log.say(f"redis-server up from deploy/redis (TLS port {redis.port}, ACL, AOF)")
    log.figure("redis start", time.monotonic() - started)
    web = root / "web.yml"
    for src in (certs.server_cert, certs.server_key):
        shutil.copy(src, root / src.name)
    hashed = bcrypt.hashpw(SCRAPE_PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    hosts = [Host(root, name, web) for name in HOSTS]
    v1 = ""
    for host in hosts:
        v1 = write_policy(host.policy, redis)
        host.set(outage=False, hold=False)
    operator_policy = root / "operator.json"
    write_policy(operator_policy, redis)
    prom: Prometheus | None = None
    try:
        started = time.monotonic()
        for host in hosts:
            host.start_robot()
            host.start_serve()
        prom = Prometheus(root, certs, hosts)
        for host in hosts:
            wait(f"{host.name} connected to the fleet",
                 lambda h=host: (s := h.alive_status()) and s["connected"] and s["steps"] > 0, 60)  # fmt: skip
        log.say(f"3 robots working, each connected to the fleet over TLS (policy {v1})")
        log.figure("hosts up (robots stepping, fleet linked)", time.monotonic() - started)
        wait("Prometheus to scrape the 3 hosts over TLS with the login",
             lambda: len(prom.query('up{job="autoheal"} == 1')) == 3, 60)  # fmt: skip
        log.figure("first scrape of all 3 hosts", time.monotonic() - started)

        # -- normal work, then an outage on two hosts ------------------------------------
        before = {h.name: h.status()["steps"] for h in hosts}
        wait(
            "normal work", lambda: all(h.status()["steps"] > before[h.name] + 20 for h in hosts), 30
        )
        if any(h.status()["failures"] for h in hosts) or prom.alert(PAUSE_ALERT):
            raise CheckFailed("failures or a pause alert during normal work")
        log.say(
            f"normal work: {sum(h.status()['steps'] for h in hosts)} steps, no failure, no alert"
        )
        outage_at = time.monotonic()
        for host in hosts[:2]:
            host.set(outage=True)
        log.say("application outage on robot-1 and robot-2 (every target hidden)")
        wait("the fleet to pause every host", lambda: all(h.status()["paused"] for h in hosts), 30)
        log.figure("outage -> all 3 hosts paused (fleet)", time.monotonic() - outage_at)
        if hosts[2].status()["failures"]:
            raise CheckFailed("robot-3 failed although its application was up")
        wait(f"{PAUSE_ALERT} firing", lambda: prom.alert(PAUSE_ALERT) == "firing", 60, 0.25)
        log.figure(f"outage -> {PAUSE_ALERT} firing in Prometheus", time.monotonic() - outage_at)
        for host in hosts:  # every host's own endpoint says so too (within its refresh)
            wait(
                f"{host.name}'s /health to show the pause",
                lambda h=host: (
                    (b := serve_health(h, certs))["status"] == "critical" and b["paused"]
                ),
                30,
            )
        log.figure("outage -> every host's /health critical", time.monotonic() - outage_at)
        for host in hosts[:2]:
            host.set(outage=False)

        # -- the operator resumes the fleet from the CLI ---------------------------------
        resumed_at = time.monotonic()
        answer = run_cli("fleet", "resume", "--policy", str(operator_policy), "--reason",
                         "application fixed", "--actor", "ops-oncall")  # fmt: skip
        event_s = int(answer["fleet_event"].split("-")[0]) / 1000
        log.say(f"operator: autoheal fleet resume (fleet event {answer['fleet_event']})")
        wait("every host to resume", lambda: not any(h.status()["paused"] for h in hosts), 30)
        log.figure("resume command -> all 3 hosts running", time.monotonic() - resumed_at)
        log.figure(
            "  fleet event -> all 3 hosts running (status files, +-0.3 s)", time.time() - event_s
        )
        lags = [h.status()["propagation_p50_ms"] for h in hosts]
        log.say(f"  each host's own fleet propagation p50: {lags} ms")
        wait(f"{PAUSE_ALERT} to resolve", lambda: prom.alert(PAUSE_ALERT) is None, 60, 0.25)
        log.figure(f"resume -> {PAUSE_ALERT} resolved", time.monotonic() - resumed_at)

        # -- redis-server killed with -9, restarted from its append-only file -------------
        kept = fleet_state(redis)
        killed_at = time.monotonic()
        redis.kill()
        wait(
            "the hosts to see the fleet down",
            lambda: not any(h.status()["connected"] for h in hosts),
            30,
        )
        alone = {h.name: h.status()["steps"] for h in hosts}
        wait(
            "the hosts to keep working alone",
            lambda: all(h.status()["steps"] > alone[h.name] + 10 for h in hosts),
            30,
        )
        if any(h.status()["connected"] for h in hosts):
            raise CheckFailed("a host claims a fleet link while redis-server is dead")
        log.say("redis-server killed with -9: the hosts keep working, deciding locally")
        redis.start(redis.port)
        log.figure("redis restart (AOF loaded, answering)", time.monotonic() - killed_at)
        after = fleet_state(redis)
        for key in ("global", "workflows", "events"):
            if after[key] != kept[key]:
                raise CheckFailed(
                    f"fleet {key} changed across the restart: {kept[key]} -> {after[key]}"
                )
        log.say(
            f"fleet state intact: {len(after['events'])} events, global {after['global'].get('state')}"
        )
        wait("every host to reconnect", lambda: all(h.status()["connected"] for h in hosts), 30)
        log.figure("redis kill -> all hosts reconnected", time.monotonic() - killed_at)

        # -- a host killed with -9 and restarted: its state comes back --------------------
        victim = hosts[2]
        run_cli("force", "payroll", "quarantined", "--data-dir", str(victim.data), "--reason",
                "check the payroll screens", "--actor", "ops-oncall")  # fmt: skip
        wait(
            "robot-3 to apply the quarantine",
            lambda: victim.status()["modes"]["payroll"] == "quarantined",
            30,
        )
        victim.set(hold=True)
        wait("robot-3 to hold", lambda: victim.status().get("holding"), 30)
        modes = victim.status()["modes"]
        victim.stop_robot(signal.SIGKILL)
        log.say(f"robot-3 killed with -9 (modes {modes})")
        victim.set(hold=False)
        restart_at = time.monotonic()
        victim.start_robot()
        status = wait(
            "robot-3 back", lambda: (s := victim.alive_status()) and s["connected"] and s, 60
        )
        log.figure(
            "robot-3 restart (process start -> warm state, linked)", time.monotonic() - restart_at
        )
        log.figure("  of which inside the process", float(status["ready_s"]))
        if status["modes"] != modes:
            raise CheckFailed(f"robot-3's state was not restored: {modes} -> {status['modes']}")
        log.say("robot-3's state restored from its audit log (payroll still quarantined)")
        run_cli("force", "payroll", "running", "--data-dir", str(victim.data), "--reason",
                "screens fixed", "--actor", "ops-oncall")  # fmt: skip

        # -- rolling upgrade to a new policy version -------------------------------------
        def versions() -> dict[str, str]:
            rows = prom.query('autoheal_policy_active{job="autoheal"}')
            return {r["metric"]["host"]: r["metric"]["autoheal_policy_version"] for r in rows}

        wait("every host's policy version scraped", lambda: len(versions()) == 3, 30)
        upgrade_at = time.monotonic()
        v2 = ""
        mixes = []
        for host in hosts:
            host_at = time.monotonic()
            host.stop_robot()
            host.stop_serve()
            v2 = write_policy(host.policy, redis, degraded={"recovery_successes": 4})
            host.start_robot()
            host.start_serve()
            wait(f"{host.name} back on {v2}", lambda h=host, v=v2: (s := h.alive_status()) and s["connected"]
                 and s["policy_version"] == v, 60)  # fmt: skip
            wait(
                f"{host.name}'s new version scraped",
                lambda h=host, v=v2: versions().get(h.name) == v,
                60,
            )
            seen = sorted(set(versions().values()))
            mixes.append(len(seen))
            log.say(f"{host.name} upgraded to {v2} in {time.monotonic() - host_at:.1f} s;"
                    f" versions served now: {seen}")  # fmt: skip
        if mixes[0] != 2 or mixes[-1] != 1 or set(versions().values()) != {v2}:
            raise CheckFailed(f"the policy-version metric did not show the mix then one: {mixes}")
        count = wait("the recording rule to see one version",
                     lambda: (r := prom.query("autoheal:policy_versions:count")) and r[0]["value"][1] == "1", 30)  # fmt: skip
        log.figure("rolling upgrade of 3 hosts", time.monotonic() - upgrade_at)
        del count

        # -- the end: every log replays, one query counts every failure ------------------
        for host in hosts:
            host.stop_robot()
            host.stop_serve()
        for host in hosts:
            report = run_cli("replay", "--data-dir", str(host.data))
            if not report.get("matches"):
                raise CheckFailed(f"replay of {host.name} does not match: {report}")
            log.say(
                f"autoheal replay {host.name}: {report['records']} records, every decision reproduced"
            )
        reported = sum(h.failures_done for h in hosts)
        counted = count_log(hosts)
        if counted["failures"] != reported or reported == 0:
            raise CheckFailed(
                f"DuckDB counted {counted['failures']} failures, the robots reported {reported}"
            )
        log.say(
            f"one DuckDB query over the 3 hosts' logs: {counted['failures']} failures"
            f" = the {reported} the robots reported"
        )
        per_step = counted["bytes"] / max(1, counted["results"])
        log.say(
            f"audit logs: {counted['records']} records for {counted['results']} steps,"
            f" {counted['bytes'] / 1e6:.1f} MB raw JSONL: {per_step:.0f} B per step"
            f" ({per_step:.0f} MB per million steps before compaction)"
        )
    finally:
        for host in hosts:
            host.kill_all()
        if prom is not None:
            prom.stop()
        redis.stop()


def main() -> int:
    """Run the story; print the timeline; return 0 when every step held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="autoheal-prod-check-"))
    log = Timeline()
    try:
        story(root, log)
    except CheckFailed as exc:
        log.say(f"FAILED: {exc} (work folder kept: {root})")
        return 1
    except MissingTool as exc:
        log.say(f"cannot run: {exc}")
        return 2
    except BaseException:
        print(f"work folder kept: {root}", file=sys.stderr)
        raise
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        log.say(f"work folder kept: {root}")
    log.say(f"prod-check passed in {log.now():.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
