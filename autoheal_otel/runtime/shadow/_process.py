"""The shadow process: follows one writer's audit segments and judges them under a shadow policy.

:class:`~._sink.ShadowSink` starts it as ``python -m autoheal_otel.runtime.shadow._process`` and
talks to it over its standard streams, one JSON object a line. In: first the set-up
(``data_dir``, ``name``, ``policy``, ``positions``: where each segment was when the shadow was
attached, ``writer`` when known), then ``{"op": "writer", "writer": w}`` (the writer to
follow), ``{"op": "sync", "token": n}`` (judge everything written so far, then answer) and
``{"op": "close", "until": seq}`` (judge everything written, up to ``seq`` when given,
close the shadow log, exit). Out:
``{"synced": n, "judged": j, "skipped": s}`` and, last, ``{"closed": true, ...}``.

It runs at the lowest CPU priority (:data:`NICENESS`): on a busy machine the robot's process
gets the CPU first. Every :data:`POLL_SECONDS` it reads the lines the writer appended (:class:`~.._tail.SegmentTail`,
appended bytes only) and judges them (:class:`~.shadow_judge.Judge`). The end of its input
(the parent closed it, or died) is a close.

Invariant: it writes its shadow log only; the live process's machine and audit log are out of
its reach (it reads the segments, never writes them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sys
import threading
from pathlib import Path
from typing import IO, Any

from ...policy._config import PolicyConfig
from ...sinks.jsonl import AUDIT_DIR
from .._tail import SegmentTail
from ._judge import MARKERS, Judge

__all__ = ["POLL_SECONDS", "main"]

_log = logging.getLogger("autoheal_otel")

#: How often the process looks for appended lines when no message wakes it.
POLL_SECONDS = 0.2
#: How much lower than the live process's the shadow process's CPU priority is.
NICENESS = 19


def _messages(stream: IO[str], inbox: queue.Queue[dict[str, Any] | None]) -> None:
    """Put each message line on ``inbox``; None at the end of the input."""
    for line in stream:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            inbox.put(message)
    inbox.put(None)


def _catch_up(tail: SegmentTail, judge: Judge, writer: str | None) -> None:
    """Judge every line the writer appended (over several reads when there is a backlog)."""
    if writer is None:
        return  # not known yet: the lines stay unread until it is
    while batch := tail.read():
        for _writer, rec in batch:
            judge.feed(rec)
        judge.write()


def _say(out: IO[str], judge: Judge, tail: SegmentTail, **fields: Any) -> None:
    counts = {"judged": judge.judged, "skipped": judge.skipped + tail.skipped}
    out.write(json.dumps({**fields, **counts}) + "\n")
    out.flush()


def serve(stdin: IO[str], stdout: IO[str]) -> int:
    """Run the shadow until told to close (or the input ends); return the exit code."""
    setup = json.loads(stdin.readline())
    data_dir = Path(setup["data_dir"])
    writer: str | None = setup.get("writer")
    tail = SegmentTail(data_dir / AUDIT_DIR, markers=MARKERS, only=writer)
    tail.resume(setup.get("positions") or {})
    judge = Judge(PolicyConfig.from_dict(setup["policy"]), data_dir / "shadow", setup["name"])
    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(target=_messages, args=(stdin, inbox), daemon=True).start()
    while True:
        try:
            message = inbox.get(timeout=POLL_SECONDS)
        except queue.Empty:
            message = {}
        if message is None or message.get("op") == "close":
            if message is not None and type(message.get("until")) is int:
                judge.until = message["until"]  # replaced then: nothing after it is its own
            _catch_up(tail, judge, writer)
            judge.close()
            _say(stdout, judge, tail, closed=True)
            return 0
        if message.get("op") == "writer" and isinstance(message.get("writer"), str):
            writer = tail.only = message["writer"]
        _catch_up(tail, judge, writer)
        if message.get("op") == "sync":
            judge.flush()
            _say(stdout, judge, tail, synced=message.get("token"))


def main() -> int:
    """Entry point of ``python -m autoheal_otel.runtime.shadow._process``."""
    logging.basicConfig(level=logging.WARNING, format="autoheal shadow: %(message)s")
    with contextlib.suppress(OSError):  # the robot first: the shadow takes the CPU it leaves
        os.nice(NICENESS)
    return serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
