"""Mini reports: what happened to a workflow, as Markdown and a self-contained HTML page.

Built from the audit log with the packaged queries (``transitions``, ``time_in_state``,
``summary``, ``top_failing_steps``, ``failures_timeline``); the HTML page inlines its SVG
timeline (states as bands, failures as ticks) and needs nothing else to open.
"""

from __future__ import annotations

import html
import os
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base._events import DecisionEvent
from ..base._fs import folder_inside, write_atomic
from ..semconv import EventKind
from ..versioning import safe_name
from ._timeline import timeline_svg

if TYPE_CHECKING:
    from ..runtime._manager import AutoHealManager

__all__ = ["MiniReportWriter", "render_report"]

_TRIPS = {"step_breaker", "workflow_breaker", "global_breaker", "regression"}
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\.md\)")
# What Markdown reads as markup (and HTML as tags): escaped with a backslash in data.
_MARKUP = re.compile(r"([\\`*_\[\]()<>#!~&])")
_ESCAPED = re.compile(r"\\(.)")


def _md(value: Any) -> str:
    """Return data (an id, a reason) as Markdown text: shown as written, never as markup.

    Control characters become ``?``, ``|`` (the table's separator) becomes ``/``, and every
    character Markdown or HTML would read as markup is escaped, so a hostile reason such as
    ``[x](" onfocus="...) .md)`` or ``<script>`` stays text in both files.
    """
    text = "".join(c if c.isprintable() else "?" for c in str(value if value is not None else ""))
    return _MARKUP.sub(r"\\\1", text.replace("|", "/"))


def _plain(markdown: str) -> str:
    """Return the text an escaped Markdown string shows (for HTML, escaped again there)."""
    return _ESCAPED.sub(r"\1", markdown)


def _trip_reports(data_dir: Path, link_from: Path) -> dict[tuple[str, str], str]:
    """Return {(workflow folder, file stem): link base} for the per-trip reports on disk."""
    found = {}
    for path in (data_dir / "reports").glob("*/*.md"):
        rel = os.path.relpath(path.with_suffix(""), link_from)
        found[(path.parent.name, path.stem)] = Path(rel).as_posix()
    return found


def render_report(
    data_dir: str | Path,
    workflow_id: str = "",
    title: str = "",
    scenario: dict[str, Any] | None = None,
    *,
    link_from: Path | None = None,
) -> tuple[str, str]:
    """Return (markdown, html) describing one workflow ('' = every workflow).

    With ``link_from`` (the folder the report is written to), each transition that tripped a
    breaker links to its per-trip report under ``<data_dir>/reports`` (relative links).
    """
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
    heading = _md(title or (f"Workflow {workflow_id}" if workflow_id else "All workflows"))
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
        f"| {_md(r['workflow_id'])} | {r['decisions']} | {r['results']} | {r['failures']} | "
        f"{r['blocked_gates']} | {r['transitions']} |"
        for r in summary
    ]
    trips = _trip_reports(Path(data_dir), link_from) if link_from is not None else {}

    def trip_link(t: dict[str, Any]) -> str:
        if link_from is None:
            return ""
        key = (safe_name(t["workflow_id"]), f"{t['ts']:%Y%m%dT%H%M%S}-{t['seq']:08d}")
        return f" [report]({trips[key]}.md) |" if key in trips else "  |"

    extra = (" report |", "---|") if link_from is not None else ("", "")
    md += [
        "",
        "## Transitions",
        "",
        f"| time (UTC) | workflow | from | to | cause | why |{extra[0]}",
        f"|---|---|---|---|---|---|{extra[1]}",
    ]
    md += [
        f"| {t['ts']:%Y-%m-%d %H:%M:%S} | {_md(t['workflow_id'])} | {_md(t['previous_state'])} |"
        f" {_md(t['state'])} | {_md(t['cause'])} | {_md(t['message'])} |{trip_link(t)}"
        for t in transitions
    ]
    md += ["", "## Time in state (seconds)", "", "| workflow | state | seconds |", "|---|---|---|"]
    md += [f"| {_md(r['workflow_id'])} | {_md(r['state'])} | {r['seconds']} |" for r in spent]
    md += [
        "",
        "## Failing steps",
        "",
        "| workflow | step | failures | not found | postcondition | watchdog |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {_md(r['workflow_id'])} | {_md(r['step_id'])} | {r['failures']} | {r['target_not_found']} | "
        f"{r['postcondition_failed']} | {r['watchdog_timeout']} |"
        for r in steps
    ]
    markdown = "\n".join(md) + "\n"
    workflows = sorted({r["workflow_id"] for r in summary})
    svg = timeline_svg(transitions, failures, workflows, start, end) if start and workflows else ""
    body = _markdown_tables_to_html(md, set(trips.values()))
    shown = html.escape(_plain(heading))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none';"
        " style-src 'unsafe-inline'\">"
        f"<title>{shown}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}h1,h2{font-weight:500}"
        "svg{max-width:100%;height:auto}"
        "</style></head><body>"
        f"<h1>{shown}</h1><h2>Timeline</h2>{svg}{body}</body></html>\n"
    )
    return markdown, page


def _cell_html(cell: str, links: set[str]) -> str:
    """Return one table cell as HTML: a link only to one of the product's own trip reports."""
    text = cell.strip()
    match = _LINK.fullmatch(text)
    if match is not None and match.group(2) in links:
        href = html.escape(match.group(2) + ".html", quote=True)  # relative, built by us
        return f'<a href="{href}">{html.escape(_plain(match.group(1)))}</a>'
    return html.escape(_plain(text), quote=True)


def _markdown_tables_to_html(lines: list[str], links: set[str]) -> str:
    """Turn the report's own Markdown into HTML (every data string escaped; see ``_md``)."""
    out, table = [], False
    for line in lines[1:]:
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [_cell_html(c, links) for c in line.strip("|").split("|")]
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
                out.append(f"<p>{html.escape(_plain(line[2:].replace('**', '')))}</p>")
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
        base = (
            self.manager.data_dir
            if self.directory.is_relative_to(self.manager.data_dir)
            else self.directory
        )
        folder_inside(base, folder)  # a planted symlink (reports/ -> elsewhere) raises
        stamp = event.ts.strftime("%Y%m%dT%H%M%S") if event.ts else "unknown"
        base = folder / f"{stamp}-{event.seq:08d}"
        for suffix, text in ((".md", markdown), (".html", page)):
            write_atomic(base.with_suffix(suffix), text)
        self.reports.append(base.with_suffix(".html"))

    def flush(self) -> None:
        """Reports are written when they happen."""

    def close(self) -> None:
        """Nothing to release."""
