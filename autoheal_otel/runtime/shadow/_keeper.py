"""Keep the shadow the policy in force names running: started with the manager, swapped at reload.

A manager on a writable data directory whose policy has a ``shadow`` section
(:mod:`autoheal_otel.policy._shadow`) gets a :class:`ShadowKeeper`. At start and at every
policy change (hot reload, or ``manager.reload_policy``) it compares the shadow named with
the one running (by name and shadow policy version): a new one is started as a sink
(:class:`~._sink.ShadowSink`, its own process), one no longer named is removed from the sinks
and stopped on a thread of its own (it judges what was written up to the reload, then ends;
the hook that applied the reload never waits for it), a changed one is both. The change itself is recorded
by the policy reload, whose record holds the whole policy, ``shadow`` section included.

Invariant: at most one shadow runs per manager, the one the policy in force names; no gate
ever reads it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...base._errors import PolicyError
from ...policy._config import PolicyConfig
from .._publisher import Publisher
from ._sink import ShadowSink

__all__ = ["ShadowKeeper"]

_log = logging.getLogger("autoheal_otel")


class ShadowKeeper:
    """Run the shadow the policy in force names (see the module docstring)."""

    def __init__(
        self, publisher: Publisher, data_dir: Path, writer: str, seq: Callable[[], int]
    ) -> None:
        self._publisher = publisher
        #: The live machine's last ``seq``: where a replaced shadow stops judging.
        self._seq = seq
        self._data_dir = data_dir
        self._writer = writer
        self._lock = threading.Lock()
        self.sink: ShadowSink | None = None
        self._key: tuple[str, str] | None = None
        #: Shadows being stopped, each on a thread of its own.
        self._stopping: list[threading.Thread] = []

    def apply(self, policy: PolicyConfig, *, strict: bool = False) -> None:
        """Start, stop or swap the shadow for ``policy``.

        A shadow file named relative to no policy file (a policy built in code) is read
        relative to the working directory.

        Raises:
            PolicyError: with ``strict`` (at start), the shadow policy is not usable; at a
                reload it is logged and the running shadow kept.
            OSError: with ``strict``, the shadow process could not start; at a reload it is
                logged and no shadow runs (nothing reaches the hook that applied it).
        """
        section = policy.shadow
        shadow: PolicyConfig | None = None
        if section is not None:
            try:
                policy.resolve_shadow(Path.cwd())
            except PolicyError as exc:
                if strict:
                    raise
                _log.warning("autoheal shadow policy not usable, keeping the last: %s", exc)
                return
            shadow = policy.shadow_policy
        with self._lock:
            key = (section.name, shadow.version) if section and shadow else None
            if key == self._key:
                return
            old, self.sink = self.sink, None
            if old is not None:
                self._publisher.remove(old)
                until = {"until_seq": self._seq()}
                stop = threading.Thread(
                    target=old.close, kwargs=until, name="autoheal-shadow-stop", daemon=True
                )
                stop.start()
                self._stopping = [t for t in self._stopping if t.is_alive()] + [stop]
                _log.info("autoheal shadow %r stopped", old.name)
            self._key = key
            if section is not None and shadow is not None:
                try:
                    sink = ShadowSink(shadow, self._data_dir, section.name, writer=self._writer)
                except (OSError, ValueError) as exc:  # no process could start: no shadow
                    if strict:
                        raise
                    _log.warning("autoheal shadow %r could not start: %s", section.name, exc)
                    return
                self._publisher.add(sink)
                self.sink = sink
                _log.info("autoheal shadow %r started (policy %s)", section.name, shadow.version)

    def status(self) -> dict[str, Any] | None:
        """Return the running shadow's status (None: no shadow)."""
        sink = self.sink
        return sink.status() if sink is not None else None

    def sync(self, timeout: float = 60.0) -> bool:
        """Wait until the shadows being stopped have ended and the running one has judged
        every record written so far (flush the manager first); return whether one runs and
        caught up."""
        with self._lock:
            stopping, sink = list(self._stopping), self.sink
        for thread in stopping:
            thread.join(timeout)
        return sink is not None and sink.sync(timeout)
