"""Mini reports: what happened to a workflow, as Markdown and a self-contained HTML page.

Built from the audit log with the packaged queries (``transitions``, ``time_in_state``,
``summary``, ``top_failing_steps``, ``failures_timeline``); the HTML page inlines its SVG
timeline (states as bands, failures as ticks) and needs nothing else to open.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._events import DecisionEvent
from .._fs import write_atomic
from ..semconv import EventKind
from ..versioning import safe_name

if TYPE_CHECKING:
    from .._manager import AutoHealManager

__all__ = ["MiniReportWriter", "render_report"]

_COLORS = {
    "running": "#2e7d32",
    "degraded": "#f9a825",
    "quarantined": "#c62828",
    "rollback": "#6a1b9a",
    "paused": "#455a64",
}
_TRIPS = {"step_breaker", "workflow_breaker", "global_breaker", "regression"}


def _timeline_svg(
    transitions: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    workflows: list[str],
    start: datetime,
    end: datetime,
) -> str:
    width, row, left = 900, 28, 140
    span = max((end - start).total_seconds(), 1.0)

    def x(ts: datetime) -> float:
        return left + (width - left - 10) * (ts - start).total_seconds() / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{row * len(workflows) + 40}" font-family="sans-serif" font-size="12">'
    ]
    for i, wid in enumerate(workflows):
        y = 10 + i * row
        parts.append(f'<text x="4" y="{y + 16}">{html.escape(wid[:20])}</text>')
        changes = [t for t in transitions if t["workflow_id"] == wid]
        bands = [(start, "running")] + [(t["ts"], t["state"]) for t in changes]
        for (since, state), (until, _) in zip(bands, [*bands[1:], (end, "")], strict=True):
            parts.append(
                f'<rect x="{x(since):.1f}" y="{y}" width="{max(1.0, x(until) - x(since)):.1f}" '
                f'height="{row - 8}" fill="{_COLORS.get(state, "#999")}" opacity="0.75">'
                f"<title>{html.escape(state)} from {since:%H:%M:%S}</title></rect>"
            )
        for f in (f for f in failures if f["workflow_id"] == wid):
            parts.append(
                f'<line x1="{x(f["ts"]):.1f}" x2="{x(f["ts"]):.1f}" y1="{y - 2}" y2="{y + row - 6}" '
                f'stroke="black" stroke-width="1"><title>{html.escape(str(f["trigger"]))} '
                f"{html.escape(str(f['step_id']))} at {f['ts']:%H:%M:%S}</title></line>"
            )
    legend_y = 10 + len(workflows) * row + 18
    for j, (state, color) in enumerate(_COLORS.items()):
        parts.append(
            f'<rect x="{left + j * 110}" y="{legend_y - 10}" width="12" height="12" fill="{color}"/>'
            f'<text x="{left + j * 110 + 16}" y="{legend_y}">{state}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_report(
    data_dir: str | Path,
    workflow_id: str = "",
    title: str = "",
    scenario: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Return (markdown, html) describing one workflow ('' = every workflow)."""
    from ..analytics import AuditAnalytics

    with AuditAnalytics(data_dir) as db:
        transitions = db.query("transitions", workflow_id=workflow_id)
        failures = db.query("failures_timeline", workflow_id=workflow_id)
        summary = [
            r for r in db.query("summary") if not workflow_id or r["workflow_id"] == workflow_id
        ]
        steps = [
            r
            for r in db.query("top_failing_steps", limit=50)
            if not workflow_id or r["workflow_id"] == workflow_id
        ][:10]
        bounds = db.sql("SELECT min(ts) AS a, max(ts) AS b FROM audit")[0]
        spent = (
            [
                r
                for r in db.query("time_in_state", as_of=bounds["b"] or datetime.now())
                if not workflow_id or r["workflow_id"] == workflow_id
            ]
            if bounds["b"]
            else []
        )
    start, end = bounds["a"], bounds["b"]
    heading = title or (f"Workflow {workflow_id}" if workflow_id else "All workflows")
    md = [f"# {heading}", ""]
    if scenario:
        md += ["## Scenario", "", *[f"- **{k}**: {v}" for k, v in scenario.items()], ""]
    md += [
        "## Decisions",
        "",
        "| workflow | decisions | results | failures | blocked | transitions |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {r['workflow_id']} | {r['decisions']} | {r['results']} | {r['failures']} | "
        f"{r['blocked_gates']} | {r['transitions']} |"
        for r in summary
    ]
    md += [
        "",
        "## Transitions",
        "",
        "| time (UTC) | workflow | from | to | cause | why |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {t['ts']:%Y-%m-%d %H:%M:%S} | {t['workflow_id']} | {t['previous_state']} | {t['state']} | "
        f"{t['cause']} | {(t['message'] or '').replace('|', '/')} |"
        for t in transitions
    ]
    md += ["", "## Time in state (seconds)", "", "| workflow | state | seconds |", "|---|---|---|"]
    md += [f"| {r['workflow_id']} | {r['state']} | {r['seconds']} |" for r in spent]
    md += [
        "",
        "## Failing steps",
        "",
        "| workflow | step | failures | not found | postcondition | watchdog |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {r['workflow_id']} | {r['step_id']} | {r['failures']} | {r['target_not_found']} | "
        f"{r['postcondition_failed']} | {r['watchdog_timeout']} |"
        for r in steps
    ]
    markdown = "\n".join(md) + "\n"
    workflows = sorted({r["workflow_id"] for r in summary})
    svg = _timeline_svg(transitions, failures, workflows, start, end) if start and workflows else ""
    body = _markdown_tables_to_html(md)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(heading)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}h1,h2{font-weight:500}"
        "</style></head><body>"
        f"<h1>{html.escape(heading)}</h1><h2>Timeline</h2>{svg}{body}</body></html>\n"
    )
    return markdown, page


def _markdown_tables_to_html(lines: list[str]) -> str:
    out, table = [], False
    for line in lines[1:]:
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            tag = "th" if not table else "td"
            if not table:
                out.append("<table>")
                table = True
            out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
        else:
            if table:
                out.append("</table>")
                table = False
            if line.startswith("- "):
                out.append(f"<p>{html.escape(line[2:]).replace('**', '')}</p>")
    if table:
        out.append("</table>")
    return "".join(out)


class MiniReportWriter:
    """Write a report for the workflow concerned on every breaker trip."""

    def __init__(
        self, directory: str | Path | None = None, scenario: dict[str, Any] | None = None
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.scenario = scenario
        self.manager: AutoHealManager | None = None
        self.reports: list[Path] = []

    def bind(self, manager: AutoHealManager) -> None:
        """Use the manager's data directory (reports are built from its audit log)."""
        self.manager = manager
        if self.directory is None and manager.data_dir is not None:
            self.directory = manager.data_dir / "reports"

    def emit(self, event: DecisionEvent) -> None:
        """Write a report when a breaker (or the regression rule) trips."""
        if event.kind is not EventKind.TRANSITION or event.cause not in _TRIPS:
            return
        if self.directory is None or self.manager is None or self.manager.data_dir is None:
            return
        markdown, page = render_report(
            self.manager.data_dir,
            event.workflow_id or "",
            title=f"{event.workflow_id}: {event.previous_state} -> {event.state} ({event.reason})",
            scenario=self.scenario,
        )
        folder = self.directory / safe_name(event.workflow_id or "global")
        folder.mkdir(parents=True, exist_ok=True)
        stamp = event.ts.strftime("%Y%m%dT%H%M%S") if event.ts else "unknown"
        base = folder / f"{stamp}-{event.seq:08d}"
        for suffix, text in ((".md", markdown), (".html", page)):
            write_atomic(base.with_suffix(suffix), text)
        self.reports.append(base.with_suffix(".html"))

    def flush(self) -> None:
        """Reports are written when they happen."""

    def close(self) -> None:
        """Nothing to release."""
