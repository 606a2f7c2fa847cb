"""How a host's fleet link shows outside: in the status report, the health, the metrics, and
the one line that says why Redis failed a call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from .. import semconv as sc
from ..core._report import StatusReport
from ..policy._fleet import FleetPolicy

__all__ = ["annotate", "describe", "instruments"]


def describe(exc: BaseException, policy: FleetPolicy) -> str:
    """Return one line saying why Redis failed a call, and what to check when it refused us.

    A refused login or command is not an outage: it will not heal by waiting, so the line names
    the setting to fix. The words before `` (`` name the kind of failure (one log line per
    kind: the details of a TLS failure vary from one attempt to the next). The password never
    appears (redis-py does not echo it).
    """
    user = policy.username or "default"
    text = " ".join(str(exc).split())[:200]
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text:
        return (
            f"redis refused the login of user {user!r} ({text}): check fleet.username and"
            " fleet.password_env/password_file"
        )
    if isinstance(exc, redis.exceptions.NoPermissionError) or text.startswith("NOPERM"):
        return (
            f"redis refused a command of user {user!r} ({text}): its ACL must allow the fleet's"
            f" commands on keys {policy.namespace}:* (deploy/redis/users.acl)"
        )
    if "certificate" in text.lower() or "ssl" in text.lower():
        return f"redis TLS failed ({text}): check fleet.url (rediss://) and fleet.tls_ca_file"
    return f"redis: {type(exc).__name__}: {text}"


def annotate(report: StatusReport, status: dict[str, Any]) -> StatusReport:
    """Return ``report`` with the link's ``status``; a link down makes an ok host degraded."""
    glob = report.global_
    if not status["connected"] and glob.health == "ok":
        reason = f"fleet link down: {status['reason']}"
        glob = glob.model_copy(update={"health": "degraded", "reason": reason})
    return report.model_copy(update={"fleet": status, "global_": glob})


def instruments(
    meter: Any,
    host: str,
    connected: Callable[[], bool],
    dropped: Callable[[], int],
    rejected: Callable[[], int] = lambda: 0,
) -> Any:
    """Register the link's gauge and counter on ``meter``; return its propagation histogram."""
    from opentelemetry.metrics import Observation

    attributes = {sc.ATTR_FLEET_HOST: host}

    def observe_connected(_options: Any) -> list[Any]:
        return [Observation(1 if connected() else 0, attributes)]

    def observe_dropped(_options: Any) -> list[Any]:
        return [Observation(dropped(), attributes)]

    meter.create_observable_gauge(
        sc.METRIC_FLEET_CONNECTED, [observe_connected], "1", "1 while the fleet link is up"
    )

    def observe_rejected(_options: Any) -> list[Any]:
        return [Observation(rejected(), attributes)]

    meter.create_observable_counter(
        sc.METRIC_FLEET_DROPPED, [observe_dropped], "{result}", "Results the full queue dropped"
    )
    meter.create_observable_counter(
        sc.METRIC_FLEET_REJECTED,
        [observe_rejected],
        "{entry}",
        "Malformed fleet entries read and skipped",
    )
    return meter.create_histogram(
        sc.METRIC_FLEET_PROPAGATION, "s", "From a fleet decision to this host applying it"
    )
