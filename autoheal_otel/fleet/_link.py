"""The fleet link: one host's connection to the fleet, on two threads of its own.

A :class:`FleetLink` is a collaborator of the manager and one of its event sinks; as a sink
it only appends to its :class:`~._outbox.Outbox`. The hooks never wait on Redis.

- The *shipper* thread sends the queue to Redis every ``ship_interval_seconds`` (one script
  call per batch), takes the probe lease for quarantines whose cool-down is over, and
  (re)connects: on each connection it records ``fleet.connected``/``fleet.reconnected``,
  applies the fleet's current states it has not seen, writes back the quarantines and the
  pause this host knows and the fleet lost (an emptied Redis: noticed at the next ship by the
  namespace's epoch), and re-ships its failures that are still in their window (idempotent
  members: nothing counts twice).
- The *reader* thread follows the fleet's event stream from its last id (``XREAD BLOCK``) and
  feeds every event to the machine through the manager's input path, so it is recorded in
  this host's audit log with cause ``fleet``. A fleet rollback returns the machine's
  ``Restore``, which the reader hands to ``carry_out`` (the facade's artifact keeper, off the
  lock): each host restores its own store; the host whose regression rule fired it restored
  already and skips its own event.

A failed call marks the link down (recorded ``fleet.disconnected``): the host's own breakers
decide again, with the same thresholds, until the next connection.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import semconv as sc
from ..base._events import DecisionEvent
from ..base._models import ExecutionState
from ..core._breakers import GlobalRule
from ..core._fleet_inputs import FleetEvent
from ..core._machine import Machine, Restore
from ..core._report import StatusReport
from ..policy._fleet import FleetPolicy
from ..semconv import Reason, Rule
from ._catchup import reseed_states, to_items
from ._controls import ROLLBACK_DEDUPE_S, hold_seconds, lease_ready, rollback_args
from ._outbox import Failure, Outbox
from ._store import FleetError, FleetStore, Item, Rejected, Rejections
from ._surface import annotate, describe, instruments

__all__ = ["FleetLink"]

_log = logging.getLogger("autoheal_otel")

#: An idle host ships an empty batch this often (its "last seen", and a check of the link).
_HEARTBEAT_S = 0.5


class FleetLink:
    """Ship this host's failures to the fleet and follow the fleet's decisions."""

    def __init__(
        self,
        machine: Machine,
        decide: Callable[..., Any],
        lock: threading.Lock,
        monotonic: Callable[[], float],
        policy: FleetPolicy,
        meter: Any = None,
        carry_out: Callable[[Any], None] | None = None,
    ) -> None:
        self._machine = machine
        self._carry_out = carry_out
        self._decide = decide
        self._lock = lock
        self._monotonic = monotonic
        self.policy = policy
        self.host = policy.host()
        self._store = FleetStore(policy)
        self._reader_store = FleetStore(policy, reader=True)
        # Failures shipped and maybe still in their window: re-shipped on every connection.
        self._live: deque[tuple[float, Item]] = deque(maxlen=policy.queue_size)
        self._seen: dict[str, str] = {}  # workflow id ("" = global) -> last fleet event applied
        self._outbox = Outbox(self.host, policy.queue_size, self._seen)
        self._queue, self._controls = self._outbox.failures, self._outbox.controls
        self.emit = self._outbox.emit  # type: ignore[method-assign]
        self._last_id = "0-0"
        self._epoch = ""  # the namespace's epoch this link connected in
        self.rejections = Rejections()
        self._stop = threading.Event()
        self._up = threading.Event()
        self._state_lock = threading.Lock()
        self._connections = self._inflight = self.shipped = self.applied = 0
        self.connected = False
        self.last_error: str | None = "not connected yet"
        self._beat_at = -_HEARTBEAT_S
        self.lags: deque[float] = deque(maxlen=1000)
        self._lag_hist: Any = None
        if meter is not None:
            counts = (lambda: self._outbox.dropped, lambda: self.rejections.count)
            self._lag_hist = instruments(meter, self.host, lambda: self.connected, *counts)
        self._threads = [
            threading.Thread(target=self._ship_loop, name="autoheal-fleet-ship", daemon=True),
            threading.Thread(target=self._read_loop, name="autoheal-fleet-read", daemon=True),
        ]

    def start(self) -> FleetLink:
        """Start the shipper and the reader threads."""
        for thread in self._threads:
            thread.start()
        return self

    # -- the sink side: called on the hooks' thread, after the lock ----------------------

    def emit(self, event: DecisionEvent) -> None:  # bound to the outbox's in __init__
        """Queue what the fleet must learn from one decision event (never blocks)."""
        self._outbox.emit(event)

    def flush(self) -> None:  # shipping is the shipper thread's job
        """Nothing to flush."""

    def close(self) -> None:
        """Stop both threads (bounded waits) and close the connections."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._up.set()
        # Ends the reader's XREAD BLOCK now instead of after block_seconds.
        self._reader_store.client.connection_pool.disconnect()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=self.policy.block_seconds + 2 * self.policy.timeout_seconds + 1)
        if self.connected and self._queue:
            try:  # one last batch, bounded by the client's timeout: a clean stop loses nothing
                self._ship_queue()
            except FleetError:
                _log.warning("autoheal fleet: %d results not shipped at close", len(self._queue))
        self._store.close()
        self._reader_store.close()

    # -- operator moves for the whole fleet (an operator's thread, never a hook) -----------

    def publish_move(
        self,
        workflow_id: str,
        state: ExecutionState | str,
        reason: str,
        actor: str = "operator",
        *,
        create: bool = True,
    ) -> str:
        """Move a workflow on every host of the fleet; return the fleet event id.

        A move into ROLLBACK makes every host with a versioned store restore its own
        known-good set (a host without one records that it cannot and stays). With
        ``create=False`` a workflow no host runs is refused, as ``autoheal force`` does.

        Raises:
            FleetError: Redis did not answer within ``fleet.timeout_seconds``.
            FleetRefusal: the fleet already holds the workflow in ``state`` (or, without
                ``create``, no host runs it): nothing was published.
        """
        return self._store.move(workflow_id, ExecutionState(state), actor, reason, create=create)

    def publish_resume(
        self,
        reason: str,
        actor: str = "operator",
        state: ExecutionState | str = ExecutionState.RUNNING,
    ) -> str:
        """Resume every host of the fleet (the fleet's ``resume_all``); return the event id.

        Raises:
            FleetError: Redis did not answer within ``fleet.timeout_seconds``.
        """
        return self._store.resume(ExecutionState(state), actor, reason)

    def status(self) -> dict[str, Any]:
        """Return this host's view of the link (for ``/status``, ``/health`` and the CLI)."""
        lags = sorted(self.lags)
        return {
            "host": self.host,
            "namespace": self.policy.namespace,
            "connected": self.connected,
            "reason": None if self.connected else self.last_error,
            "queued": len(self._queue) + self._inflight,
            "dropped": self._outbox.dropped,
            "rejected": self.rejections.count,
            "shipped": self.shipped,
            "applied": self.applied,
            "last_event": self._last_id,
            "propagation_p50_ms": round(lags[len(lags) // 2] * 1000, 3) if lags else None,
        }

    def annotate(self, report: StatusReport) -> StatusReport:
        """Return the report with the link's status; a link down makes an ok host degraded."""
        return annotate(report, self.status())

    # -- connection state ------------------------------------------------------------------

    def _feed_link(self, up: bool, reason: Reason, error: str | None) -> None:
        details = {"fleet_host": self.host, "namespace": self.policy.namespace}
        if error:
            details["error"] = error
        feed, scopes = self._machine.fleet_link, self.policy.scopes
        self._decide(None, "fleet", None, None, feed, up, reason, scopes, details)

    def _lost(self, exc: BaseException) -> None:
        if self._stop.is_set():
            return  # closing: the link was taken down on purpose
        why = describe(exc, self.policy)[:300]
        with self._state_lock:
            kind = (self.last_error or "").split(" (", 1)[0]
            was_up, changed = self.connected, why.split(" (", 1)[0] != kind
            self.connected, self.last_error = False, why
            self._up.clear()
        if was_up or changed:  # not connected yet: one line per new reason, not per attempt
            what = "down" if was_up else "cannot connect"
            _log.warning("autoheal fleet link %s (%s): local breakers decide", what, why)
        if was_up:
            self._feed_link(False, Reason.FLEET_DISCONNECTED, why)

    def _connect(self) -> None:
        store = self._store
        store.ping()
        self._epoch = store.epoch(secrets.token_hex(8))
        # A heartbeat first: an ACL refusing the scripts fails here, not connect/disconnect pairs.
        store.ship([], 0, 0.0, self.policy.min_hosts, (), self._epoch)
        last_id = store.last_event_id()
        snapshot, rejected = store.snapshot()
        self._reject(rejected)
        reason = Reason.FLEET_RECONNECTED if self._connections else Reason.FLEET_CONNECTED
        self._connections += 1
        with self._state_lock:
            self.connected = True
            self.last_error = None
        self._feed_link(True, reason, None)
        for event in snapshot:
            key = event.workflow_id or ""
            if self._seen.get(key) != event.id:
                self._apply(event, lag=False)
        self._reseed()
        self._outbox.announce_all()  # the (maybe emptied) fleet learns them again
        now = self._monotonic()
        live = [item for at, item in self._live if now - at < item[3] / 1000]
        if live:
            self._ship_items(live, remember=False)
        if self._last_id == "0-0" or self._connections == 1:
            self._last_id = last_id
        self._up.set()

    def _reseed(self) -> None:
        with self._lock:
            states = reseed_states(self._machine.view, self._seen)
        for event_id in self._store.reseed(states):
            _log.info("autoheal fleet: re-seeded a state the fleet had lost (event %s)", event_id)

    # -- the shipper -----------------------------------------------------------------------

    def _ship_loop(self) -> None:
        interval = self.policy.ship_interval_seconds
        while not self._stop.is_set():
            try:
                if not self.connected:
                    self._connect()
                self._ship_queue()
                self._run_controls()
                self._take_leases()
                wait = interval
            except FleetError as exc:
                self._lost(exc)
                wait = self.policy.reconnect_seconds
            except Exception:  # contained: the link must never die silently with the host
                _log.exception("autoheal fleet shipper failed; retrying")
                wait = self.policy.reconnect_seconds
            self._stop.wait(wait)  # allowed: the shipping cadence (woken early by close)

    def _ship_queue(self) -> None:
        queue = self._queue
        size = self.policy.batch_size
        now = self._monotonic()
        if not queue and now - self._beat_at >= _HEARTBEAT_S:
            # Idle: an empty batch still says "this host is alive" and probes the link.
            self._ship_items([], remember=False)
        while queue:
            batch: list[Failure] = []
            while queue and len(batch) < size:
                batch.append(queue.popleft())
            items = to_items(self._machine.policy, self.policy.scopes, batch)
            self._inflight = len(batch)
            try:
                self._ship_items(items, remember=True)
            except FleetError:
                # Put the batch back in front (it may have landed: members are idempotent).
                queue.extendleft(reversed(batch))
                raise
            finally:
                self._inflight = 0

    def _ship_items(self, items: list[Item], *, remember: bool) -> None:
        rule = GlobalRule.of(self._machine.policy.breakers.global_)
        known = self._outbox.take_announcements()
        try:
            self._store.ship(
                items,
                *rule.redis_args(),
                self.policy.min_hosts,
                known,
                self._epoch,
            )
        except FleetError:
            self._outbox.announce.extendleft(reversed(known))
            raise
        now = self._beat_at = self._monotonic()
        if remember:
            self.shipped += len(items)
            self._live.extend((now, item) for item in items)

    def _run_controls(self) -> None:
        controls = self._controls
        while controls:
            action, wid, arg = controls[0]
            if action == "release":
                self._store.release(wid, ExecutionState(arg))
            elif action == "rollback":
                self._publish_rollback(wid, arg)
            else:
                with self._lock:
                    hold = hold_seconds(self._machine.view, wid, arg)
                self._store.lease(wid, hold, hold=True)
            controls.popleft()

    def _publish_rollback(self, workflow_id: str, event: DecisionEvent) -> None:
        if "workflow" in self.policy.scopes:
            rule, counts, message = rollback_args(event)
            self._store.rollback(workflow_id, rule, counts, "", message, ROLLBACK_DEDUPE_S)

    def _take_leases(self) -> None:
        if "workflow" not in self.policy.scopes:
            return
        if not self._machine.view.glob.quarantined:
            return  # nothing to lease: the hooks' lock is not taken at every ship interval
        now = self._monotonic()
        with self._lock:
            ready = lease_ready(self._machine.view, now)
        lease_s = self.policy.probe_lease_seconds
        for wid, timeout in ready:
            if self._store.lease(wid, lease_s + timeout + 1.0):
                grant = self._machine.fleet_grant_probe
                self._decide(None, "fleet", wid, None, grant, wid, lease_s, self.host)

    # -- the reader ------------------------------------------------------------------------

    def _read_loop(self) -> None:
        block_ms = int(self.policy.block_seconds * 1000)
        while not self._stop.is_set():
            if not self._up.wait(self.policy.reconnect_seconds):  # allowed: waits for the link
                continue
            if self._stop.is_set():
                break
            try:
                events, rejected, last = self._reader_store.read(self._last_id, block_ms)
            except FleetError as exc:
                self._lost(exc)
                continue
            except Exception:  # contained: a malformed event must not stop the reader
                if not self._stop.is_set():
                    _log.exception("autoheal fleet reader failed; retrying")
                continue
            for event in events:
                self._apply(event, lag=True)
            self._reject(rejected)
            self._last_id = last  # past every entry read, malformed ones included

    def _reject(self, rejected: list[Rejected]) -> None:
        """Record each malformed entry once (kind, id, why), count it, and move on."""
        for entry_id, wid, why in self.rejections.new(rejected):
            _log.warning("autoheal fleet: entry %s skipped: %s", entry_id, why)
            self._decide(None, "fleet", None, None, self._machine.fleet_reject, entry_id, wid, why)

    def _apply(self, event: FleetEvent, *, lag: bool) -> None:
        feed: Callable[..., Any] = self._machine.fleet_apply
        if event.kind == "rollback":
            if event.host == self.host and event.rule != Rule.OPERATOR.value:
                return  # this host's own regression: restored already, by the hook
            feed = self._machine.fleet_rollback
        try:
            changed = self._decide(None, "fleet", event.workflow_id, None, feed, event)
            if isinstance(changed, Restore) and self._carry_out is not None:
                self._carry_out(changed)  # this host's own store, off the lock
        except Exception:  # contained: a closed manager or a bad event must not kill the thread
            _log.exception("autoheal fleet could not apply event %s", event.id)
            return
        self._seen[event.workflow_id or ""] = event.id
        if changed:
            self.applied += 1
        if lag:
            seconds = max(0.0, time.time() - int(event.id.split("-")[0]) / 1000)
            self.lags.append(seconds)
            if self._lag_hist is not None:
                self._lag_hist.record(seconds, {sc.ATTR_FLEET_KIND: event.kind})
