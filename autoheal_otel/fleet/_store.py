"""The fleet's Redis client: every command the link and the CLI send, with outage-proof settings.

A :class:`FleetStore` wraps one redis-py client configured so that no call can block for long
(``fleet.timeout_seconds`` for connecting and for every reply, no retries, no backoff): with
Redis down a call fails in well under a millisecond, with Redis hung (SIGSTOP) after the
timeout. The stream reader gets its own client whose reply timeout exceeds its ``XREAD
BLOCK``. Callers catch :class:`redis.RedisError` (re-exported as :data:`FleetError`); nothing
here runs on an executor's hook thread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..base._errors import AutoHealError
from ..base._models import ExecutionState, check_id, printable
from ..core._fleet_inputs import WORKFLOW_KINDS, FleetEvent
from ..policy._fleet import FleetPolicy
from . import _scripts

__all__ = [
    "FleetError",
    "FleetRefusal",
    "FleetReset",
    "FleetStore",
    "Item",
    "Rejections",
]

FleetError = redis.RedisError


class FleetReset(redis.RedisError):
    """The fleet's epoch changed since this host connected: Redis was emptied or flushed."""


class FleetRefusal(AutoHealError):
    """The fleet refused an operator's move, as one host would (unknown id, same state)."""


#: One failure to ship: (member, workflow, workflow threshold (0: not counted), window ms,
#: window seconds as text, counted globally, the last fleet event this host had applied for
#: the workflow and for the global scope when the failure happened).
Item = tuple[str, str, int, int, str, bool, str, str]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


#: The longest text a fleet field keeps (``message``, ``actor``, ``host``): longer is cut.
MAX_FIELD = 500
_KINDS = ("quarantine", "release", "operator", "reseed", "pause", "resume", "rollback")


def _clean(value: Any, limit: int = MAX_FIELD) -> str:
    """Return a field's text, cut to ``limit`` with control characters replaced by ``?``."""
    return printable(_text(value) if value is not None else "", limit)


def _event(event_id: str, fields: dict[str, str]) -> FleetEvent:
    """Return the event an entry of the stream (or a state hash) holds.

    Raises:
        ValueError: a field is malformed (its name and value in the message): whoever wrote
            the entry, it is no decision of the fleet.
    """
    kind = fields.get("kind", "operator")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, but was {kind[:40]!r}")
    target = fields.get("target") or ""
    if target and target not in ExecutionState._value2member_map_:
        raise ValueError(f"target must be a state, but was {target[:40]!r}")
    wid = fields.get("wf") or None
    if wid is not None:
        check_id("wf", wid)
    try:
        count = int(fields.get("count") or 0)
        threshold = int(fields.get("threshold") or 0)
    except ValueError:
        raise ValueError(
            f"count and threshold must be integers, but were {fields.get('count')!r:.40},"
            f" {fields.get('threshold')!r:.40}"
        ) from None
    window = fields.get("window") or ""
    try:
        seconds = float(window) if window else None
    except ValueError:
        raise ValueError(f"window must be a number of seconds, but was {window[:40]!r}") from None
    if seconds is not None and not math.isfinite(seconds):
        raise ValueError(f"window must be finite, but was {window[:40]!r}")
    return FleetEvent(
        id=event_id,
        kind=kind,
        host=_clean(fields.get("host")),
        workflow_id=wid,
        target=ExecutionState(target) if target else None,
        rule=_clean(fields.get("rule") or "operator", 100),
        count=count,
        threshold=threshold,
        window_seconds=seconds,
        message=_clean(fields.get("message")),
        actor=_clean(fields.get("actor")) or None,
    )


#: An entry that is no decision of the fleet: (entry id, workflow id or "", why).
Rejected = tuple[str, str, str]


class Rejections:
    """The malformed entries a host has met: each is recorded once, all are counted."""

    def __init__(self, limit: int = 10_000) -> None:
        self.count = 0
        self._ids: set[str] = set()
        self._limit = limit

    def new(self, rejected: list[Rejected]) -> list[Rejected]:
        """Return the entries not met before (and count them)."""
        fresh = [r for r in rejected if r[0] not in self._ids]
        if len(self._ids) + len(fresh) > self._limit:
            self._ids.clear()  # bounded: an old entry may be recorded once more
        self._ids.update(r[0] for r in fresh)
        self.count += len(fresh)
        return fresh


class FleetStore:
    """Send the fleet's commands to Redis; read its events and its state."""

    def __init__(
        self, policy: FleetPolicy, *, reader: bool = False, host: str | None = None
    ) -> None:
        timeout = policy.timeout_seconds
        self.policy = policy
        self.ns = policy.namespace
        #: Who the fleet's events are credited to (an operator's CLI: ``cli@<hostname>``).
        self.host = host or policy.host()
        self._maxlen = str(policy.stream_max_events)
        # Typed Any: redis-py's stubs type replies as bytes | str whatever decode_responses says.
        self.client: Any = redis.Redis.from_url(
            policy.url,
            **({"password": pw} if (pw := policy.password()) is not None else {}),
            **policy.connection(),
            socket_timeout=timeout + policy.block_seconds + 0.5 if reader else timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
            decode_responses=True,
        )
        self._scripts = {
            name: self.client.register_script(getattr(_scripts, name))
            for name in ("SHIP", "RELEASE", "OPERATOR", "RESUME", "LEASE", "RESEED", "ROLLBACK")
        }

    def _run(self, name: str, *args: Any) -> Any:
        return self._scripts[name](args=[self.ns, self.host, self._maxlen, *args])

    def ping(self) -> bool:
        """Return True when Redis answers."""
        return bool(self.client.ping())

    def ship(
        self,
        items: Sequence[Item],
        global_threshold: int,
        global_window_s: float,
        min_hosts: int,
        known: Sequence[str] = (),
        epoch: str = "",
    ) -> tuple[int, int, list[str]]:
        """Add failures to the fleet windows; return (added, added globally, new event ids).

        ``global_threshold`` and ``global_window_s``: the global rule's numbers
        (:meth:`~autoheal_otel.core._breakers.GlobalRule.redis_args`), which the script
        compares as the machine does.

        ``known``: workflow ids this host runs that the fleet may not know yet; ``epoch``: the
        one this host connected in ("" : not checked).

        Raises:
            FleetReset: the epoch changed (nothing was counted): reconnect and re-seed.
        """
        payload = [
            {"m": m, "w": w, "wt": wt, "ww": ww, "ws": ws, "g": 1 if g else 0, "e": e, "ge": ge}
            for m, w, wt, ww, ws, g, e, ge in items
        ]
        added, gadded, ids = self._run(
            "SHIP",
            global_threshold,
            int(global_window_s * 1000),
            min_hosts,
            json.dumps(payload),
            json.dumps(list(known)),
            epoch,
        )
        if int(added) < 0:
            raise FleetReset(f"the fleet's epoch {epoch} is gone: Redis was emptied or flushed")
        return int(added), int(gadded), [_text(i) for i in ids]

    def epoch(self, token: str) -> str:
        """Return the namespace's epoch, starting it with ``token`` if it has none."""
        key = f"{self.ns}:epoch"
        self.client.set(key, token, nx=True)
        return _text(self.client.get(key))

    def release(self, workflow_id: str, target: ExecutionState) -> str | None:
        """Release a fleet quarantine after a successful probe here (None: none to release)."""
        out = self._run("RELEASE", workflow_id, target.value)
        return _text(out) if out else None

    def operator(
        self,
        workflow_id: str,
        target: ExecutionState,
        actor: str,
        message: str,
        *,
        create: bool = False,
    ) -> str:
        """Move one workflow on every host (an operator's fleet-wide move); return the event id.

        Raises:
            FleetRefusal: no host runs ``workflow_id`` (and not ``create``), or the fleet
                already holds it in ``target``: nothing was published.
        """
        flag = "1" if create else "0"
        out = _text(self._run("OPERATOR", workflow_id, target.value, actor, message, flag))
        if out == "!unknown":
            raise FleetRefusal(
                f"no host of fleet {self.ns!r} runs a workflow {workflow_id!r}; nothing published"
            )
        if out == "!same":
            raise FleetRefusal(
                f"the fleet already holds {workflow_id} {target.value}; nothing published"
            )
        return out

    def move(
        self, workflow_id: str, target: ExecutionState, actor: str, reason: str, *, create: bool
    ) -> str:
        """Publish an operator's move of one workflow (a rollback: every host's own store).

        Raises:
            FleetRefusal: see :meth:`operator` (a rollback is never refused).
        """
        if target is ExecutionState.ROLLBACK:
            return self.rollback(workflow_id, "operator", (0, 0), actor, reason, 0) or ""
        return self.operator(workflow_id, target, actor, reason, create=create)

    def rollback(
        self,
        workflow_id: str,
        rule: str,
        count_threshold: tuple[int, int],
        actor: str,
        message: str,
        dedupe_s: float,
    ) -> str | None:
        """Roll a workflow back on every host with a store (None: deduplicated or blocked).

        ``rule`` is ``operator`` for an operator's rollback (always published), else the
        regression rule that fired on this host (at most once per ``dedupe_s``).
        """
        count, threshold = count_threshold
        dedupe_ms = max(1, int(dedupe_s * 1000))
        out = self._run("ROLLBACK", workflow_id, rule, count, threshold, actor, message, dedupe_ms)
        return _text(out) if out else None

    def resume(self, target: ExecutionState, actor: str, message: str) -> str:
        """Lift the fleet's global pause and release every paused workflow on every host."""
        return _text(self._run("RESUME", target.value, actor, message))

    def lease(self, workflow_id: str, ttl_s: float, *, hold: bool = False) -> bool:
        """Take (or, ``hold``, extend one's own) the probe lease of a quarantined workflow."""
        mode = "hold" if hold else "take"
        return bool(self._run("LEASE", workflow_id, max(1, int(ttl_s * 1000)), mode))

    def reseed(self, states: Sequence[dict[str, Any]]) -> list[str]:
        """Write back states this host knows and the fleet lost; return the new event ids."""
        if not states:
            return []
        return [_text(i) for i in self._run("RESEED", json.dumps(list(states)))]

    def last_event_id(self) -> str:
        """Return the id of the newest fleet event ("0-0": none)."""
        newest = self.client.xrevrange(f"{self.ns}:events", count=1)
        return _text(newest[0][0]) if newest else "0-0"

    def read(
        self, after: str, block_ms: int, count: int = 500
    ) -> tuple[list[FleetEvent], list[Rejected], str]:
        """Return the fleet events after ``after`` (waiting up to ``block_ms`` for one), the
        entries rejected as malformed, and the id of the last entry read (``after``: none).

        Each entry is parsed alone: a bad one is rejected, never the batch.
        """
        answer = self.client.xread({f"{self.ns}:events": after}, count=count, block=block_ms)
        events: list[FleetEvent] = []
        rejected: list[Rejected] = []
        last = after
        for _, entries in answer or ():
            for raw_id, fields in entries:
                last = _text(raw_id)
                try:
                    events.append(_event(last, fields))
                except (ValueError, AutoHealError) as exc:
                    rejected.append((last, _clean(fields.get("wf"), 100), str(exc)))
        return events, rejected, last

    def snapshot(self) -> tuple[list[FleetEvent], list[Rejected]]:
        """Return the fleet's current states as events (the global state first), and the
        state hashes rejected as malformed (each parsed alone)."""
        ns = self.ns
        ids = sorted(self.client.smembers(f"{ns}:wfs"))
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(f"{ns}:global")
        for wid in ids:
            pipe.hgetall(f"{ns}:wf:{wid}")
        rows = pipe.execute()
        out: list[FleetEvent] = []
        rejected: list[Rejected] = []
        entries: list[tuple[str, str, dict[str, str]]] = []
        glob = rows[0]
        if glob.get("event"):
            entries.append(("", glob["event"], {**glob, "wf": ""}))
        for wid, row in zip(ids, rows[1:], strict=True):
            # A rollback is an event, not a state: a host that starts later does not repeat it.
            if row.get("event") and row.get("state") and row.get("kind") != "rollback":
                kind = row.get("kind", "operator")
                kind = kind if kind in WORKFLOW_KINDS else "operator"
                entries.append(
                    (wid, row["event"], {**row, "wf": wid, "kind": kind, "target": row["state"]})
                )
        for wid, event_id, fields in entries:
            try:
                out.append(_event(_clean(event_id, 64), fields))
            except (ValueError, AutoHealError) as exc:
                rejected.append((_clean(event_id, 64), _clean(wid, 100), str(exc)))
        return out, rejected

    def status(self) -> dict[str, Any]:
        """Return the hosts (last seen, ms), the windows and the states of the fleet."""
        ns = self.client
        prefix = self.ns
        time_s, time_us = ns.time()
        now_ms = int(time_s) * 1000 + int(time_us) // 1000
        hosts = {h: now_ms - int(v) for h, v in ns.hgetall(f"{prefix}:hosts").items()}
        wfs = {}
        for wid in sorted(ns.smembers(f"{prefix}:wfs")):
            row = ns.hgetall(f"{prefix}:wf:{wid}")
            wfs[wid] = {
                "state": row.get("state"),
                "event": row.get("event"),
                "host": row.get("host"),
                "window": ns.zcard(f"{prefix}:win:{wid}"),
            }
        glob = ns.hgetall(f"{prefix}:global")
        return {
            "namespace": prefix,
            "hosts": {h: {"last_seen_s": round(ms / 1000, 3)} for h, ms in sorted(hosts.items())},
            "global": {
                "state": glob.get("state", "running"),
                "event": glob.get("event"),
                "window": ns.zcard(f"{prefix}:global:win"),
                "hosts_failing": ns.zcard(f"{prefix}:global:hosts"),
            },
            "workflows": wfs,
        }

    def window_counts(self) -> dict[str, int]:
        """Return the live size of every workflow's fleet window (tests compare with DuckDB)."""
        out = {}
        for wid in self.client.smembers(f"{self.ns}:wfs"):
            out[wid] = int(self.client.zcard(f"{self.ns}:win:{wid}"))
        return out

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
