"""Robot Framework integration: gate every task of a run with one command-line option.

::

    robot --listener
    autoheal_otel.robot.AutoHealListener:policy=config/auto_heal_policy.json:data_dir=data
    tasks.robot

Needs the ``robot`` extra (``pip install 'autoheal-otel[robot]'``, Robot Framework >= 7.1.1).
"""

try:
    import robot as _robot  # noqa: F401  (checked first, for a clear message)
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(
        "autoheal_otel.robot needs Robot Framework >= 7.1.1: pip install 'autoheal-otel[robot]'"
    ) from exc

from ._config import ARGUMENTS, ListenerConfig
from ._library import AutoHealLibrary
from ._listener import BLOCKED_TAG, AutoHealListener
from ._mapping import DEFAULT_RULES, OutcomeMapping, OutcomeRule

__all__ = [
    "ARGUMENTS",
    "BLOCKED_TAG",
    "DEFAULT_RULES",
    "AutoHealLibrary",
    "AutoHealListener",
    "ListenerConfig",
    "OutcomeMapping",
    "OutcomeRule",
]
