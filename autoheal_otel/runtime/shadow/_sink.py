"""Shadow policies: what another policy would decide on the live inputs, in a process of its own.

:class:`ShadowSink` is an event sink (``manager.add_sink(ShadowSink(policy, data_dir))``, or a
``shadow`` section in the policy file, :mod:`.shadow_policy`). It starts a shadow process
(:mod:`._process`) that reads the records the live writer appends to its audit
segments, decides them again under the shadow policy on a machine of its own (:mod:`._judge`)
and writes one ``shadow`` record per gate it judged (and per transition the shadow made) to
``<data_dir>/shadow/<name>-<writer>.jsonl``. The hooks pay nothing for it: the sink's only
work on a hook's thread is, once, to name the writer to follow; the shadow's reading and
deciding happen in another process, under another interpreter lock. Nothing flows back: no
gate reads the shadow's decisions, so the live answers are the same with or without it.

A shadow process that ends unexpectedly is logged once (a warning naming its exit code) and
shown by :meth:`ShadowSink.status`; the hooks never wait for it and never see its failure.
:meth:`ShadowSink.close` (which ``manager.close()`` calls, after the audit log is closed)
lets it judge everything written, then stops it; :meth:`ShadowSink.sync` waits until it has
judged everything written so far. :func:`shadow_report` compares live and shadow on the same
steps and scores both against the labels (:mod:`.objective`).

Invariant: the shadow sees the live writer's records in ``seq`` order, once each, from the
moment it was attached.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...base._events import DecisionEvent
from ...policy._config import PolicyConfig
from ...sinks.jsonl import AUDIT_DIR
from .._tail import SegmentTail

__all__ = ["ShadowSink"]

_log = logging.getLogger("autoheal_otel")

#: How long :meth:`ShadowSink.close` lets the shadow finish before it is killed.
CLOSE_SECONDS = 30.0


class ShadowSink:
    """Decide every live input again under ``policy`` in a shadow process (module docstring)."""

    def __init__(
        self,
        policy: PolicyConfig,
        data_dir: str | Path,
        name: str = "shadow",
        *,
        writer: str | None = None,
    ) -> None:
        self.policy = policy
        self.data_dir = Path(data_dir)
        self.folder = self.data_dir / "shadow"
        self.name = name
        #: Gates the shadow judged and records it skipped, as of its last answer.
        self.judged = 0
        self.skipped = 0
        #: The shadow process's exit code once it ended (None while it runs).
        self.exit_code: int | None = None
        self._writer = writer
        self._closing = False
        self._stopped = threading.Event()
        self._synced = 0
        self._token = 0
        self._answered = threading.Condition()
        # Where every segment is now: the shadow reads only what is appended from here on.
        tail = SegmentTail(self.data_dir / AUDIT_DIR)
        tail.skip_existing()
        package_root = str(Path(__file__).resolve().parents[2])  # where autoheal_otel is
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, path) if p)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "autoheal_otel.runtime.shadow._process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        setup = {
            "data_dir": str(self.data_dir),
            "name": name,
            "policy": policy.to_dict(),
            "positions": tail.positions(),
            "writer": writer,
        }
        self._send(setup)
        self._listener = threading.Thread(target=self._listen, name="autoheal-shadow", daemon=True)
        self._listener.start()

    @property
    def pid(self) -> int:
        """The shadow process's id."""
        return self._process.pid

    # -- the hook's side: nothing but, once, the writer to follow --------------------------

    def emit(self, event: DecisionEvent) -> None:
        """Name the writer to follow at the first event; nothing else."""
        if self._writer is None:
            self._follow(event.writer)

    def emit_many(self, events: Sequence[DecisionEvent]) -> None:
        """Name the writer to follow at the first events; nothing else."""
        if self._writer is None and events:
            self._follow(events[0].writer)

    def _follow(self, writer: str | None) -> None:
        if writer:
            self._writer = writer
            self._send({"op": "writer", "writer": writer})

    def flush(self) -> None:
        """Nothing to flush here: the shadow reads the audit log on its own (see :meth:`sync`)."""

    # -- the shadow process ----------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> bool:
        """Send one message; False when the shadow process is gone (never raised)."""
        stream = self._process.stdin
        if stream is None or stream.closed:
            return False
        try:
            stream.write(json.dumps(message) + "\n")
            stream.flush()
        except (OSError, ValueError):  # the process ended: _listen reports it
            return False
        return True

    def _listen(self) -> None:
        """Take the shadow's answers until it ends; report an end nobody asked for."""
        stream = self._process.stdout
        assert stream is not None
        for line in stream:
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            with self._answered:
                self.judged = int(answer.get("judged", self.judged))
                self.skipped = int(answer.get("skipped", self.skipped))
                if isinstance(answer.get("synced"), int):
                    self._synced = max(self._synced, answer["synced"])
                self._answered.notify_all()
        code = self._process.wait()
        with self._answered:
            self.exit_code = code
            self._answered.notify_all()
        if code != 0 or not self._closing:
            _log.warning(
                "autoheal shadow %r stopped (exit code %s): its decisions are no longer"
                " recorded; the live decisions are not affected",
                self.name,
                code,
            )

    def sync(self, timeout: float = 60.0) -> bool:
        """Wait until the shadow has judged every record written so far (flush the manager
        first); return False when it could not (it ended, or ``timeout`` passed)."""
        with self._answered:
            self._token += 1
            token = self._token
        if not self._send({"op": "sync", "token": token}):
            return False
        deadline = time.monotonic() + timeout
        with self._answered:
            while self._synced < token and self.exit_code is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._answered.wait(left)
            return self._synced >= token

    def status(self) -> dict[str, Any]:
        """Return whether the shadow runs, its exit code, and what it judged and skipped."""
        return {
            "name": self.name,
            "pid": self._process.pid,
            "alive": self.exit_code is None and self._process.poll() is None,
            "exit_code": self.exit_code,
            "judged": self.judged,
            "skipped": self.skipped,
            "writer": self._writer,
        }

    def close(self, until_seq: int | None = None) -> None:
        """Let the shadow judge everything written (with ``until_seq``: the records up to
        that ``seq``, the moment it was replaced), then stop it (killed past
        :data:`CLOSE_SECONDS`). Once: a second call waits for the first to finish."""
        with self._answered:
            first, self._closing = not self._closing, True
        if not first:
            self._stopped.wait(CLOSE_SECONDS * 2)
            return
        try:
            self._stop(until_seq)
        finally:
            self._stopped.set()

    def _stop(self, until_seq: int | None) -> None:
        self._send({"op": "close", "until": until_seq})
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            _log.warning("autoheal shadow %r did not stop in time: killed", self.name)
            self._process.kill()
            self._process.wait()
        self._listener.join(timeout=CLOSE_SECONDS)
        if self._process.stdout is not None:
            self._process.stdout.close()
