"""Keywords a robot calls to talk to auto-heal: match scores in, effective settings out.

``Library    autoheal_otel.robot.AutoHealLibrary`` next to the listener. Its keywords are
never steps themselves: ``Report Match Confidence`` attaches scores to the step it runs in
(or, called from the task body, to the step that just succeeded), and ``Get Autoheal
Settings`` returns what the workflow's state asks of the robot now (in DEGRADED: a higher
minimum confidence, a pause between steps, fewer retries).
"""

from __future__ import annotations

from typing import Any

from robot.api import logger

from ..policy._config import PolicyConfig
from ..runtime._manager import AutoHealManager
from ._listener import active_listener

__all__ = ["AutoHealLibrary"]


class AutoHealLibrary:
    """Robot Framework keywords for auto-heal (works with ``AutoHealListener``)."""

    ROBOT_LIBRARY_SCOPE = "GLOBAL"

    def report_match_confidence(
        self, best: float, runner_up: float | str | None = None, method: str | None = None
    ) -> None:
        """Give the current step's match scores (best and runner-up, in [0, 1]) to auto-heal.

        A vision library calls this after matching a target; the scores go into the step's
        result: a best score below the low-confidence floor counts as a signal, and a small
        gap to the runner-up as ambiguity (a failure in DEGRADED).
        """
        listener = active_listener()
        details = {"method": method} if method else {}
        best_f = float(best)
        runner = float(runner_up) if runner_up not in (None, "", "None") else None
        if listener is None or not listener.report_confidence(best_f, runner, details):
            logger.info("autoheal: no step to attach match confidence to; ignored")

    def get_autoheal_settings(self, workflow: str | None = None) -> dict[str, Any]:
        """Return the effective settings of the running task's workflow (or of ``workflow``).

        Keys: ``state``, ``min_confidence``, ``low_confidence_floor``, ``step_delay_ms``,
        ``step_delay`` (seconds, for ``Sleep`` or ``Set Selenium Speed``), ``max_retries``,
        ``postcondition_required``, ``strict_ambiguity``, ``ambiguity_margin``,
        ``learning_enabled``, ``step_allowed``. Without the listener: the default policy's
        RUNNING settings.
        """
        listener = active_listener()
        wf = workflow or (listener.current_workflow() if listener is not None else None)
        if listener is None or listener.config_error is not None:
            logger.warn(
                "Get Autoheal Settings: no auto-heal listener is active"
                " (robot --listener autoheal_otel.robot.AutoHealListener...): these are the"
                " default policy's RUNNING settings, not a workflow's"
            )
            with AutoHealManager(PolicyConfig()) as defaults:
                settings = defaults.get_effective_settings(wf or "robot")
        else:
            settings = listener.session.manager.get_effective_settings(wf or "robot")
        values = settings.model_dump(mode="json")
        values["step_delay"] = settings.step_delay_s
        return values
