"""Failure cases: on every quarantine, one JSON file with the auto-heal context.

``<data_dir>/failure_cases/<safe workflow id>/<timestamp>-<seq>.json`` holds the workflow's
state history, window counts, last errors, the rule that fired, the policy and artifact
versions and the trace id; ``attach`` adds files (a screenshot, an embedding) next to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base._events import DecisionEvent
from ..base._fs import folder_inside, write_atomic
from ..base._models import ExecutionState
from ..semconv import EventKind
from ..versioning import safe_name

if TYPE_CHECKING:
    from ..runtime._manager import AutoHealManager

__all__ = ["FailureCaseRecorder"]


class FailureCaseRecorder:
    """Write one failure case per quarantine."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._inside: Path | None = self.directory  # what the folders must resolve under
        self.manager: AutoHealManager | None = None
        self.cases: list[Path] = []

    def bind(self, manager: AutoHealManager) -> None:
        """Use the manager's data directory (unless one was given) and its status."""
        self.manager = manager
        if self.directory is None and manager.data_dir is not None:
            self.directory = manager.data_dir / "failure_cases"
            self._inside = manager.data_dir

    def emit(self, event: DecisionEvent) -> None:
        """Record a case when a workflow enters QUARANTINED."""
        if event.kind is not EventKind.TRANSITION or event.state is not ExecutionState.QUARANTINED:
            return
        if self.directory is None or event.workflow_id is None:
            return
        case = self._case(event)
        folder = self.directory / safe_name(event.workflow_id)
        folder_inside(self._inside or self.directory, folder)  # a planted symlink raises
        stamp = event.ts.strftime("%Y%m%dT%H%M%S") if event.ts else "unknown"
        path = folder / f"{stamp}-{event.seq:08d}.json"
        write_atomic(path, json.dumps(case, indent=2, default=str))
        self.cases.append(path)

    def _case(self, event: DecisionEvent) -> dict[str, Any]:
        status: dict[str, Any] = {}
        if self.manager is not None:
            report = self.manager.get_status_report()
            workflow = report.workflows.get(event.workflow_id or "")
            if workflow is not None:
                status = workflow.model_dump(mode="json")
        return {
            "workflow_id": event.workflow_id,
            "quarantined_at": event.ts.isoformat() if event.ts else None,
            "reason": event.message,
            "rule": event.rule
            and {
                "rule": event.rule.rule,
                "count": event.rule.count,
                "threshold": event.rule.threshold,
                "window_seconds": event.rule.window_seconds,
            },
            "policy_version": event.policy_version,
            "artifact_version": event.artifact_version,
            "trace_id": event.trace_id,
            "audit": {"writer": event.writer, "seq": event.seq},
            "state_history": status.get("history", []),
            "window": status.get("window"),
            "steps": status.get("steps", {}),
            "last_errors": status.get("last_errors", []),
            "attachments": [],
        }

    def attach(self, case: Path, name: str, data: bytes) -> Path:
        """Store an attachment (e.g. ``screenshot.png``) next to a case and list it there."""
        folder = case.with_suffix("")
        folder.mkdir(exist_ok=True)
        target = folder / safe_name(name)
        target.write_bytes(data)
        record = json.loads(case.read_text())
        record["attachments"].append({"name": name, "path": str(target.relative_to(case.parent))})
        case.write_text(json.dumps(record, indent=2), encoding="utf-8")
        return target

    def flush(self) -> None:
        """Cases are written when they happen."""

    def close(self) -> None:
        """Nothing to release."""
