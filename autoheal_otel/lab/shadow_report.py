"""``autoheal shadow report``: live and shadow decisions on the same steps, and which was right.

Reads the shadow logs under ``<data_dir>/shadow/`` (a line that is not a shadow record is
skipped and counted, lines past :data:`MAX_LINE` bytes too) and the audit log's labels. It
counts the gates where the two differed (per workflow, with the first and last time), and
scores the live stops and the shadow's stops against the labelled incidents and false
stops with :func:`~autoheal_otel.lab.objective.score`.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from ..analytics import AuditAnalytics
from ..analytics._replay_report import ReplayReport
from ..analytics._replayer import INPUT_CAUSES
from .decoded import decode
from .labels import label_rows
from .multi import Candidate
from .objective import Weights, incidents_of, score

__all__ = ["MAX_LINE", "shadow_report"]

MAX_LINE = 64 * 1024


def _records(folder: Path) -> tuple[list[dict[str, Any]], int]:
    out: list[dict[str, Any]] = []
    bad = 0
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        if path.is_symlink() or not path.is_file():
            bad += 1
            continue
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    rec = json.loads(raw) if len(raw) <= MAX_LINE else None
                except ValueError:
                    rec = None
                if not isinstance(rec, dict) or rec.get("kind") != "shadow":
                    bad += 1
                    continue
                out.append(rec)
    return out, bad


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def shadow_report(data_dir: str | Path, weights: Weights | None = None) -> dict[str, Any]:
    """Return the comparison of live and shadow decisions as a JSON-ready dict."""
    records, bad = _records(Path(data_dir) / "shadow")
    differ: Counter[tuple[str, str]] = Counter()
    gates = 0
    first: dict[str, str] = {}
    shadow_stops: list[Any] = []
    blocked = 0
    for rec in records:
        wid = str(rec.get("workflow_id"))
        if rec.get("what") == "gate":
            gates += 1
            live, shadow = rec.get("live_allowed") is True, rec.get("shadow_allowed") is True
            blocked += not shadow
            if live != shadow:
                key = "shadow blocks" if live else "shadow allows"
                differ[wid, key] += 1
                first.setdefault(wid, str(rec.get("ts")))
        elif rec.get("what") == "transition" and _time(rec.get("ts")) is not None:
            previous, state = rec.get("previous"), rec.get("state")
            shadow_stops.append((wid, previous, state, rec.get("cause"), str(rec.get("ts"))))
    with AuditAnalytics(data_dir) as db:
        rows = db.sql(
            "SELECT workflow_id, previous_state, state, cause, ts FROM audit_events"
            " WHERE kind = 'transition' ORDER BY ts, seq"
        )
        live_blocked = int(
            db.sql("SELECT count(*) AS n FROM audit WHERE kind = 'gate' AND allowed = false")[0][
                "n"
            ]
        )
    live_stops = [
        (
            r["workflow_id"],
            r["previous_state"],
            r["state"],
            r["cause"],
            r["ts"].isoformat() + "+00:00",
        )
        for r in rows
        if r["cause"] not in INPUT_CAUSES
    ]
    incidents = incidents_of(label_rows(data_dir), decode(data_dir))
    weights = weights or Weights()
    judged = {}
    for name, stops, count in (
        ("live", live_stops, live_blocked),
        ("shadow", shadow_stops, blocked),
    ):
        report = ReplayReport(what_if=True, replayed_blocked_gates=count)
        judged[name] = score(Candidate(report, stops), incidents, weights).to_dict()
    per_stop = [
        {
            "ref": i.label.ref,
            "workflow_id": i.label.workflow_id,
            "label": i.label.label,
            "live": judged["live"]["verdicts"].get(i.label.ref),
            "shadow": judged["shadow"]["verdicts"].get(i.label.ref),
        }
        for i in incidents
    ]
    return {
        "gates_judged": gates,
        "skipped_lines": bad,
        "differences": [
            {"workflow_id": w, "difference": k, "gates": n, "first": first.get(w)}
            for (w, k), n in sorted(differ.items())
        ],
        "live": {k: v for k, v in judged["live"].items() if k != "verdicts"},
        "shadow": {k: v for k, v in judged["shadow"].items() if k != "verdicts"},
        "labelled_stops": per_stop,
    }
