"""What the CLI prints reaches a terminal: control characters in data are shown, never obeyed.

Reasons, actors, workflow ids, fleet messages and Robot Framework task names are data that
anyone who can write the log (or Redis) chose. :class:`SafeText` wraps a text stream so that
every control character except newline and tab is written as a visible escape (``\\x1b``):
a hostile reason cannot retitle the window, clear the screen or move the cursor. JSON output
needs no wrapper (``json.dumps`` escapes them already); the demo's own live redraw is the one
writer that keeps its escapes, and it prints only what it made.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

__all__ = ["SafeText", "escape_controls"]

# C0 controls but newline and tab, DEL, and the C1 controls (CSI, OSC, ... as one code point).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """Return ``text`` with every control character but newline and tab as a visible escape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SafeText:
    """A text stream that escapes control characters on their way out (see the module)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` with its control characters escaped."""
        self._stream.write(escape_controls(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
