"""What ``autoheal tune`` prints: the Pareto table, the diff, and per labelled stop what the
recommendation would have done differently and when; as text, JSON or an HTML page.

The page has a trade-off plot (false stops against mean delay, one dot per candidate) and a
per-incident timeline; every string from the log is escaped, and the page loads nothing (a
Content-Security-Policy of ``default-src 'none'``, styles inline), like ``report.html``.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from .objective import Incident
from .tune import Evaluation, TuneResult

__all__ = ["differences", "to_dict", "to_html", "to_lines"]


def _when(stop: datetime | None, incident: Incident) -> str:
    if stop is None:
        return "does not stop it" if not incident.right else "misses it"
    delay = (stop - incident.start).total_seconds()
    return f"stops it at {stop:%Y-%m-%d %H:%M:%S} (+{delay:g} s after its first failure)"


def differences(result: TuneResult) -> list[dict[str, Any]]:
    """Return, per labelled stop, what the policy in force and the recommendation do."""
    out = []
    best = result.best.metrics.verdicts
    now = result.current.metrics.verdicts
    for incident in result.incidents:
        lab = incident.label
        was, will = now.get(lab.ref), best.get(lab.ref)
        if was is None and will is None:
            change = "same"
        elif was is None or will is None:
            change = "caught" if will is not None else "dropped"
        else:
            change = f"{(will - was).total_seconds():+g} s"
        out.append(
            {
                "ref": lab.ref,
                "workflow_id": lab.workflow_id,
                "ts": lab.ts.isoformat(),
                "label": lab.label,
                "why": lab.why,
                "first_failure": incident.start.isoformat(),
                "in_force": _when(was, incident),
                "recommended": _when(will, incident),
                "change": change,
            }
        )
    return out


def _row(e: Evaluation, result: TuneResult) -> dict[str, Any]:
    names = [d.path[-1] for d in result.space.dimensions]
    if len(set(names)) < len(names):  # the short names collide: the full paths
        names = [d.name for d in result.space.dimensions]
    described = " ".join(f"{n}={v}" for n, v in zip(names, e.choice, strict=True))
    return {"candidate": described, **_figures(e)}


def _figures(e: Evaluation) -> dict[str, Any]:
    m = e.metrics
    return {
        "missed": m.missed,
        "false_stops": m.false_stops,
        "mean_delay_s": round(m.mean_delay_s, 1),
        "blocked": m.blocked,
        "score": round(m.score, 3),
    }


def to_dict(result: TuneResult, written: str | None = None) -> dict[str, Any]:
    """Return the whole result, JSON-ready."""
    return {
        "records": result.records,
        "candidates": len(result.evaluated) + result.eliminated,
        "eliminated_early": result.eliminated,
        "incidents": sum(1 for i in result.incidents if i.right),
        "labelled_false_stops": sum(1 for i in result.incidents if not i.right),
        "in_force": _figures(result.current),
        "recommended": result.best.to_dict(result.space),
        "diff": [{"field": f, "in_force": a, "recommended": b} for f, a, b in result.diff()],
        "pareto": [_row(e, result) for e in result.pareto],
        "differences": differences(result),
        "candidate_file": written,
    }


def to_lines(result: TuneResult, written: str | None) -> list[str]:
    """Return the human report, one line each (tables are laid out by the caller)."""
    data = to_dict(result, written)
    lines = [
        f"{data['candidates']} candidates over {result.records:,} records"
        f" ({result.eliminated} left out early by halving);"
        f" {data['incidents']} incidents, {data['labelled_false_stops']} labelled false stops",
        "",
        "in force:    " + ", ".join(f"{k} {v}" for k, v in data["in_force"].items()),
        "recommended: " + ", ".join(f"{k} {v}" for k, v in _figures(result.best).items()),
        "",
        "diff against the policy in force:",
    ]
    diff = data["diff"]
    lines += [f"  {d['field']}: {d['in_force']} -> {d['recommended']}" for d in diff] or [
        "  (none: the policy in force scores best)"
    ]
    lines += ["", "per labelled stop:"]
    for d in data["differences"]:
        lines.append(f"  {d['workflow_id']} {d['label']} at {d['ts']} [{d['ref']}]: {d['why']}")
        lines.append(f"      in force {d['in_force']}; recommended {d['recommended']}")
    if written:
        lines += ["", f"candidate policy written to {written} (the live policy is unchanged)"]
    return lines


_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _plot(result: TuneResult) -> str:
    """Return an SVG scatter of false stops against mean delay, one dot per candidate."""
    rows = result.evaluated
    w, h, pad = 640, 320, 50
    xs = [e.metrics.mean_delay_s for e in rows] + [result.current.metrics.mean_delay_s]
    ys = [e.metrics.false_stops for e in rows] + [result.current.metrics.false_stops]
    x_max, y_max = max(max(xs), 1.0), max(max(ys), 1)

    def at(e: Evaluation) -> tuple[float, float]:
        x = pad + (w - 2 * pad) * e.metrics.mean_delay_s / x_max
        y = h - pad - (h - 2 * pad) * e.metrics.false_stops / y_max
        return x, y

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img'"
        " aria-label='trade-off'>",
        f"<line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' stroke='#333'/>",
        f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{h - pad}' stroke='#333'/>",
        f"<text x='{w / 2}' y='{h - 12}' text-anchor='middle' font-size='12'>"
        f"mean delay to stop (s, 0 to {x_max:g})</text>",
        f"<text x='14' y='{h / 2}' font-size='12' transform='rotate(-90 14 {h / 2})'"
        f" text-anchor='middle'>false stops (0 to {y_max})</text>",
    ]
    for e in rows:
        x, y = at(e)
        color = "#d62728" if e.metrics.missed else "#1f77b4"
        tip = html.escape(result.space.describe(e.choice))
        parts.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{color}'><title>{tip}</title></circle>"
        )
    for e, color, name in (
        (result.current, "#000000", "in force"),
        (result.best, "#2ca02c", "recommended"),
    ):
        x, y = at(e)
        parts.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='8' fill='none' stroke='{color}' stroke-width='3'/>"
        )
        parts.append(f"<text x='{x + 10:.1f}' y='{y - 10:.1f}' font-size='12'>{name}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def to_html(result: TuneResult, written: str | None) -> str:
    """Return the report as one self-contained HTML page."""
    data = to_dict(result, written)
    timeline = [
        {
            k: d[k]
            for k in (
                "workflow_id",
                "label",
                "first_failure",
                "ts",
                "in_force",
                "recommended",
                "change",
                "why",
            )
        }
        for d in data["differences"]
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        "<title>autoheal tune</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}h1,h2{font-weight:500}"
        "</style></head><body><h1>autoheal tune</h1>"
        f"<p>{html.escape(to_lines(result, written)[0])}</p>"
        "<h2>Trade-off</h2><p>blue: catches every incident; red: misses one; black ring: the"
        " policy in force; green ring: the recommendation</p>"
        + _plot(result)
        + "<h2>Recommended change</h2>"
        + _table(data["diff"])
        + "<h2>Pareto front</h2>"
        + _table(data["pareto"])
        + "<h2>Per incident and false stop</h2>"
        + _table(timeline)
        + "</body></html>\n"
    )
