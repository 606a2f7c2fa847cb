"""What the demo shows on screen: each phase's transitions, kept, above a live state table.

Each phase prints its title and one line per transition with why (these lines stay on screen,
so the story can be read back); on a terminal only the table below them is redrawn in place.
Every line fits the terminal's width (80 columns when it cannot be told), so the redraw never
breaks on wrapped lines.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import threading

from ..base._events import DecisionEvent
from ..base._models import ExecutionState
from ..runtime._manager import AutoHealManager
from ..semconv import EventKind

__all__ = ["DemoScreen"]

_STATE_COLOR = {
    "running": "32",
    "degraded": "33",
    "quarantined": "31",
    "rollback": "35",
    "paused": "90",
}


class DemoScreen:
    """An event sink that collects transitions, and the screen that prints them per phase."""

    def __init__(self, manager: AutoHealManager, live: bool, width: int | None = None) -> None:
        self.manager = manager
        self.live = live
        self.width = width or max(60, min(shutil.get_terminal_size((80, 24)).columns, 120))
        self._pending: list[DecisionEvent] = []
        self._lock = threading.Lock()
        self._table_lines = 0

    # -- the sink side ---------------------------------------------------------------------

    def emit(self, event: DecisionEvent) -> None:
        """Keep transitions until the next phase is shown."""
        if event.kind is EventKind.TRANSITION and event.workflow_id:
            with self._lock:
                self._pending.append(event)

    def flush(self) -> None:
        """Nothing buffered outside memory."""

    def close(self) -> None:
        """Nothing to release."""

    # -- the screen side -------------------------------------------------------------------

    def phase(self, title: str) -> None:
        """Show a phase: its title and transitions (kept on screen), then the state table."""
        with self._lock:
            events, self._pending = self._pending, []
        out = sys.stdout
        if self.live and self._table_lines:
            out.write(f"\x1b[{self._table_lines}F\x1b[J\n")  # erase the previous table only
        lines = textwrap.wrap(title, self.width - 1, subsequent_indent="   ")
        for e in events:
            text = (
                f"{e.workflow_id}: {e.previous_state} -> {e.state} "
                f"({e.cause or e.reason}): {e.message}"
            )
            lines += textwrap.wrap(
                text, self.width - 1, initial_indent="   - ", subsequent_indent="       "
            )
        if not events:
            lines.append("   (no transition)")
        table = self._table()
        out.write("\n".join(lines) + "\n")
        out.write("\n".join(table) + "\n")
        if not self.live:
            out.write("\n")
        out.flush()
        self._table_lines = len(table) if self.live else 0

    def _table(self) -> list[str]:
        report = self.manager.get_status_report()
        fixed = 2 + 11 + 1 + 12 + 1 + 6 + 1 + 8 + 1
        room = max(self.width - 1 - fixed, 10)
        rows = [f"  {'workflow':<11} {'state':<12} {'fails':>6} {'version':<8} reason"]
        for wid, wf in sorted(report.workflows.items()):
            state = wf.state.value
            shown = (
                f"\x1b[{_STATE_COLOR[state]}m{state:<12}\x1b[0m" if self.live else f"{state:<12}"
            )
            reason = "" if wf.state is ExecutionState.RUNNING else wf.reason
            if len(reason) > room:
                reason = reason[: room - 3] + "..."
            fails = f"{wf.window.count}/{wf.window.threshold}"
            version = self.manager.get_artifact_version(wid) or "-"
            rows.append(f"  {wid[:11]:<11} {shown} {fails:>6} {version[:8]:<8} {reason}")
        g = report.global_
        health = f"  global health: {g.health}" + (f" - {g.reason}" if g.paused else "")
        rows.append(health[: self.width - 1])
        return rows
