"""The SVG timeline of a report: one row of state bands per workflow, on a labelled time axis.

Readable without a mouse: the axis has UTC tick labels, a legend names every color and mark,
wide bands carry their state's name, and a state held for less than a few pixels (a rollback
that the restore ends at once) is drawn at a minimum width with a marker above it, so it never
disappears. Tooltips add detail but carry nothing the eye cannot already see.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from typing import Any

__all__ = ["COLORS", "timeline_svg"]

COLORS = {
    "running": "#2e7d32",
    "degraded": "#f9a825",
    "quarantined": "#c62828",
    "rollback": "#6a1b9a",
    "paused": "#455a64",
}
_WIDTH, _LEFT, _RIGHT, _ROW, _TOP = 900, 120, 20, 36, 8
_MIN_BAND = 5.0  # px: narrower states get this width and a marker
_STEPS = [
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1200,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
]


def _ticks(start: datetime, end: datetime, most: int = 8) -> list[datetime]:
    """Return round instants between ``start`` and ``end``, at most ``most`` of them."""
    span = max((end - start).total_seconds(), 1.0)
    step = next(
        (s for s in _STEPS if span / s <= most), _STEPS[-1] * (int(span / 86400 / most) + 1)
    )
    epoch = datetime(1970, 1, 1, tzinfo=start.tzinfo)
    first = int((start - epoch).total_seconds() // step + 1) * step
    out, t = [], epoch + timedelta(seconds=first)
    while t <= end:
        out.append(t)
        t += timedelta(seconds=step)
    return out


def _label(t: datetime, span_s: float) -> str:
    if span_s > 86400:
        return f"{t:%m-%d %H:%M}"
    return f"{t:%H:%M:%S}" if span_s < 300 else f"{t:%H:%M}"


def timeline_svg(
    transitions: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    workflows: list[str],
    start: datetime,
    end: datetime,
) -> str:
    """Return the timeline as an inline SVG element."""
    span = max((end - start).total_seconds(), 1.0)
    plot = _WIDTH - _LEFT - _RIGHT

    def x(ts: datetime) -> float:
        return _LEFT + plot * (ts - start).total_seconds() / span

    rows_bottom = _TOP + _ROW * len(workflows)
    height = rows_bottom + 80
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12" role="img" aria-label="state timeline">'
    ]
    ticks = _ticks(start, end)
    for t in ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{_TOP}" y2="{rows_bottom + 4}" '
            f'stroke="#bbb" stroke-width="1"/>'
            f'<text x="{x(t):.1f}" y="{rows_bottom + 18}" text-anchor="middle">'
            f"{_label(t, span)}</text>"
        )
    parts.append(
        f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{rows_bottom + 4.5}" '
        f'y2="{rows_bottom + 4.5}" stroke="#333"/>'
        f'<text x="{_WIDTH - _RIGHT}" y="{rows_bottom + 34}" text-anchor="end" fill="#333">'
        f"time (UTC, {start:%Y-%m-%d})</text>"
    )
    for i, wid in enumerate(workflows):
        y = _TOP + i * _ROW
        parts.append(f'<text x="4" y="{y + 24}">{html.escape(wid[:16])}</text>')
        changes = [t for t in transitions if t["workflow_id"] == wid]
        bands = [(start, "running")] + [(t["ts"], t["state"]) for t in changes]
        brief: list[str] = []  # drawn last, over their neighbours, so they stay visible
        for (since, state), (until, _) in zip(bands, [*bands[1:], (end, "")], strict=True):
            x0, width = x(since), x(until) - x(since)
            color = COLORS.get(state, "#999")
            tip = f"<title>{html.escape(state)} from {since:%H:%M:%S} to {until:%H:%M:%S}</title>"
            (brief if width < _MIN_BAND else parts).append(
                f'<rect x="{x0:.1f}" y="{y + 10}" width="{max(_MIN_BAND, width):.1f}" '
                f'height="{_ROW - 14}" fill="{color}">{tip}</rect>'
            )
            if width < _MIN_BAND:
                brief.append(
                    f'<path d="M{x0 - 5:.1f},{y} L{x0 + 7:.1f},{y} L{x0 + 1:.1f},{y + 9} Z" '
                    f'fill="{color}" stroke="black" stroke-width="0.8">{tip}</path>'
                )
            elif width > 8 * len(state) + 8:
                fill = "black" if state == "degraded" else "white"
                parts.append(
                    f'<text x="{x0 + 4:.1f}" y="{y + 25}" fill="{fill}">{html.escape(state)}</text>'
                )
        parts.extend(brief)
        for f in (f for f in failures if f["workflow_id"] == wid):
            fx = x(f["ts"])
            parts.append(
                f'<line x1="{fx:.1f}" x2="{fx:.1f}" y1="{y + _ROW - 4}" y2="{y + _ROW + 1}" '
                f'stroke="black" stroke-width="1"><title>{html.escape(str(f["trigger"]))} '
                f"{html.escape(str(f['step_id']))} at {f['ts']:%H:%M:%S}</title></line>"
            )
    parts.append(_legend(rows_bottom + 54))
    parts.append("</svg>")
    return "".join(parts)


def _legend(y: int) -> str:
    parts, lx = [], 4
    for state, color in COLORS.items():
        parts.append(
            f'<rect x="{lx}" y="{y - 10}" width="12" height="12" fill="{color}"/>'
            f'<text x="{lx + 16}" y="{y}">{state}</text>'
        )
        lx += 24 + 8 * len(state)
    parts.append(
        f'<line x1="{lx + 6}" x2="{lx + 6}" y1="{y - 11}" y2="{y + 2}" stroke="black"/>'
        f'<text x="{lx + 12}" y="{y}">failing result</text>'
    )
    lx += 120
    parts.append(
        f'<path d="M{lx},{y - 10} L{lx + 12},{y - 10} L{lx + 6},{y - 1} Z" fill="#6a1b9a" '
        f'stroke="black" stroke-width="0.8"/>'
        f'<text x="{lx + 16}" y="{y}">a state held too briefly to show its width</text>'
    )
    return "".join(parts)
