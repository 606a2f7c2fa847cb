"""The Robot Framework listener (API v3) that puts every task of a run under auto-heal.

::

    robot --listener autoheal_otel.robot.AutoHealListener:policy=policy.json:data_dir=data
    tasks.robot

- A workflow is a task (its full name), its suite, or the value of a ``wf-<name>`` tag.
- A step is a keyword called from the task body, through FOR/WHILE/IF/TRY/GROUP blocks; never
  a setup or teardown, never a keyword nested inside a step, never bookkeeping
  (:class:`~._steps.StepRules`: which keywords are steps, which arguments they record).
- Before a step, ``should_execute_step``; a refused step is not run: RF raises
  ``autoheal blocked: <reason>`` in its place (``implementation.error``) and the step ends
  FAIL, SKIP or NOT RUN as configured. The rest of that task is not run either (it is not
  gated again), and its teardown still runs. A task whose workflow is already blocked is
  skipped as a whole, with the reason. A refusal cannot be swallowed by the suite's own
  TRY/EXCEPT: the task ends FAIL (SKIP with ``on_block=SKIP``) whatever it caught.
- Before a gated step, the state's step delay is waited once (not per command).
- After a step, ``on_step_result``. A step is *validated* (DEGRADED requires it) when it is
  an assertion that passes, when its own body ran an assertion that passed after its last
  action (a self-checking user keyword), or when the mapping declares it self-validating. A
  successful action without that waits for the next step: when that is an assertion that
  passes, the action is reported validated; otherwise it is reported unvalidated before the
  next step's gate. Failures are classified by :class:`OutcomeMapping`.
- RF's dry run is never gated; a misconfigured listener fails every task with one message
  rather than letting the run go on ungated.

Invariant: every step whose gate said yes gets exactly one ``on_step_result`` (PASS or FAIL),
by the end of its task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from robot.api import logger

from ..base._errors import AutoHealError
from ..base._models import ExecutionState, Outcome, StepResult
from ._config import ListenerConfig
from ._model import (
    dry_run,
    exception_names,
    first_keyword,
    is_own_library,
    is_step,
    library_of,
    parent_setup_failed,
)
from ._session import ManagerSession
from ._steps import redact, runs_keywords
from ._support import enforce_refusal, fail_whole, unsupported_version

__all__ = ["AutoHealListener", "active_listener"]

_BLOCKING = (ExecutionState.QUARANTINED, ExecutionState.ROLLBACK, ExecutionState.PAUSED)
_SKIP_TAG = "robot:skip"
#: The tag a task skipped by auto-heal carries in RF's reports.
BLOCKED_TAG = "autoheal:blocked"

_active: list[AutoHealListener] = []


def active_listener() -> AutoHealListener | None:
    """Return the listener of the running robot, or None when none is active."""
    return _active[-1] if _active else None


@dataclass
class _Step:
    step_id: str
    result: Any  # the RF result object, matched by identity in end_keyword
    assertion: bool
    blocked: bool = False
    confidence: float | None = None
    second_best: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    checked: bool = False  # its own body ran an assertion that passed after its last action
    nested: dict[int, bool] = field(default_factory=dict)  # id(result) → is an assertion
    secrets: list[str] = field(default_factory=list)  # kept out of its failure message


@dataclass
class _Task:
    workflow: str
    blocked: str | None = None  # "autoheal blocked: ..." once a step was refused
    acted: bool = False  # an action step ran before (an assertion failing now is a postcondition)
    pending: _Step | None = None  # a successful action awaiting the next step's verdict
    pre_gated: str | None = None  # the step id the task-level gate already admitted (a probe)


class AutoHealListener:
    """Gate every task of a Robot Framework run with an :class:`AutoHealManager`.

    Args:
        *args, **kwargs: the listener arguments as RF passes them (strings, ``name=value``);
            see :data:`autoheal_otel.robot.ARGUMENTS`.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, *args: str, **kwargs: str) -> None:
        self.config_error: str | None = None
        self.config = ListenerConfig()
        # Fail closed: a listener whose __init__ raised would not be registered at all, and
        # RF would run every task ungated. Whatever goes wrong here fails every task instead.
        try:
            self.config = ListenerConfig.from_args(args, kwargs)
        except AutoHealError as exc:
            self.config_error = f"autoheal listener: {exc}"
        except Exception as exc:  # contained: see above
            self.config_error = f"autoheal listener cannot start: {type(exc).__name__}: {exc}"
        self._unsupported = unsupported_version()
        if self._unsupported is not None:
            self.config_error = self._unsupported
        self.session = ManagerSession(self.config.policy, self.config.data_dir, self.config.shared)
        self._task: _Task | None = None
        self._step: _Step | None = None
        self._skipped: dict[int, str] = {}
        self._reported = False
        self._errors_logged: set[str] = set()
        self._untagged: set[str] = set()
        #: How the policy's step delay is waited (a seam for the tests' clock).
        self.sleep: Callable[[float], None] = time.sleep
        _active.append(self)

    # -- suites and tasks ----------------------------------------------------------------

    def start_suite(self, data: Any, result: Any) -> None:
        """Report a misconfiguration once, at the start of the run."""
        if self.config_error is not None and not self._reported:
            self._reported = True
            logger.error(self.config_error)

    def start_test(self, data: Any, result: Any) -> None:
        """Resolve the task's workflow; skip the task when its workflow is blocked."""
        self._task = None
        self._step = None
        if self._unsupported is not None:
            fail_whole(data, self._unsupported)  # an RF that cannot gate: nothing runs
            return
        if self.config_error is not None:
            data.error = self.config_error
            return
        if dry_run() or parent_setup_failed(result):
            return  # RF fails the task itself ("Parent suite setup failed"): nothing to gate
        try:
            self.session.refresh()
            manager = self.session.manager
            workflow = self._workflow_of(data, result)
            task = _Task(workflow)
            if manager.get_mode(workflow) in _BLOCKING:
                keyword = first_keyword(data.body, self._bookkeeping_call)
                first = self._step_id(keyword) if keyword is not None else str(data.name)[:256]
                allowed, reason = manager.should_execute_step(workflow, first)
                if not allowed:
                    self._skipped[id(result)] = f"autoheal blocked: {reason}"
                    data.tags.add(_SKIP_TAG)  # RF < 7.2 reads the data's tags ...
                    result.tags.add(_SKIP_TAG)  # ... later ones the result's
                    return
                task.pre_gated = first
        except AutoHealError as exc:
            self._refuse_task(data, f"autoheal: {exc}")
            return
        except Exception as exc:  # fail closed: a task that cannot be gated must not run
            self._refuse_task(data, f"autoheal cannot gate this task: {type(exc).__name__}: {exc}")
            return
        self._task = task

    def _bookkeeping_call(self, keyword: Any) -> bool:
        """Return True for a call that is not a step (the probe must go to a real step)."""
        name = str(keyword.name)
        library = library_of(name)
        return self.config.rules.is_bookkeeping(library, name, self.config.mapping)

    def _refuse_task(self, data: Any, message: str) -> None:
        """Fail the task with ``message``; say it once as an ``[ ERROR ]`` line on the console."""
        data.error = message
        if message not in self._errors_logged:
            self._errors_logged.add(message)
            logger.error(message)

    def end_test(self, data: Any, result: Any) -> None:
        """Report the last pending step; mark the task with its workflow's state."""
        task, self._task = self._task, None
        skipped = self._skipped.pop(id(result), None)
        if skipped is not None:
            data.tags.remove(_SKIP_TAG)
            result.tags.remove(_SKIP_TAG)
            result.tags.add(BLOCKED_TAG)
            result.message = skipped
            return
        if task is None:
            return
        self._flush(task, validated=False)
        mode = self.session.manager.get_mode(task.workflow)
        result.tags.add(f"autoheal:{mode.value}")
        if task.blocked:
            enforce_refusal(self.config.on_block, task.blocked, result)

    def close(self) -> None:
        """Flush and close the manager when the run ends."""
        if self in _active:
            _active.remove(self)
        self.session.close()

    # -- keywords ------------------------------------------------------------------------

    def start_library_keyword(self, data: Any, implementation: Any, result: Any) -> None:
        """Gate a library keyword that is a step; inside a step, note what it checks."""
        if is_own_library(implementation):
            return  # Report Match Confidence / Get Autoheal Settings are never steps
        library = getattr(getattr(implementation, "owner", None), "name", None)
        name = str(data.name)
        bookkeeping = self.config.rules.is_bookkeeping(library, name, self.config.mapping)
        step = self._step
        if step is not None:
            if library is not None and runs_keywords(library, name):
                return  # a wrapper: what it runs is judged, not the wrapper's own end
            if not step.blocked and (not bookkeeping or self.config.mapping.is_assertion(name)):
                step.nested[id(result)] = self.config.mapping.is_assertion(name)
            return
        if not bookkeeping:
            self._start_step(data, implementation, result)

    def start_user_keyword(self, data: Any, implementation: Any, result: Any) -> None:
        """Gate a user keyword that is a step."""
        self._start_step(data, implementation, result)

    def start_invalid_keyword(self, data: Any, implementation: Any, result: Any) -> None:
        """Gate a step RF cannot run (a misspelled keyword): its failure is recorded too."""
        self._start_step(data, implementation, result)

    def _start_step(self, data: Any, implementation: Any, result: Any) -> None:
        task = self._task
        if task is None or self._step is not None or result.status == "NOT RUN":
            return  # outside a task, nested in a step, or after a failure (RF visits, not runs)
        if not is_step(data):
            return
        step_id = self._step_id(data)
        if task.blocked is not None:
            implementation.error = task.blocked
            self._step = _Step(step_id, result, assertion=False, blocked=True)
            return
        assertion = self.config.mapping.is_assertion(str(data.name))
        if not assertion:
            self._flush(task, validated=False)
        if task.pre_gated == step_id:
            task.pre_gated = None
            allowed, reason = True, ""
        else:
            try:
                allowed, reason = self.session.manager.should_execute_step(task.workflow, step_id)
            except Exception as exc:  # fail closed: an ungated step must not run
                allowed, reason = False, f"gate error: {type(exc).__name__}: {exc}"
        if not allowed:
            task.blocked = f"autoheal blocked: {reason}"
            implementation.error = task.blocked
            self._step = _Step(step_id, result, assertion, blocked=True)
            return
        self._step = _Step(step_id, result, assertion)
        args, self._step.secrets = self.config.rules.arguments(data.args)
        if args:
            self._step.details["args"] = args
        if self.config.step_delay:
            delay = self.session.manager.get_effective_settings(task.workflow).step_delay_s
            if delay > 0:
                self._step.details["delay_s"] = delay
                self.sleep(delay)

    def end_keyword(self, data: Any, result: Any) -> None:
        """Report a step's outcome (or mark a refused step with the configured status)."""
        step, task = self._step, self._task
        if step is None or task is None:
            return
        if result is not step.result:
            assertion = step.nested.pop(id(result), None)
            if assertion is not None:
                # A passing assertion checks; an action after it, passing or not, undoes that.
                step.checked = assertion and result.status == "PASS"
            return
        self._step = None
        if step.blocked:
            result.message = task.blocked
            result.status = self.config.on_block
            return
        step.duration_s = result.elapsed_time.total_seconds()
        if result.status == "PASS":
            if step.assertion:
                self._flush(task, validated=True)
                self._report(task, step, Outcome.SUCCESS, validated=True)
                return
            task.acted = True
            if step.checked or self.config.mapping.validates_itself(str(data.name)):
                self._report(task, step, Outcome.SUCCESS, validated=True)  # checked itself
            else:
                task.pending = step
            return
        if result.status != "FAIL":
            return  # SKIP (the Skip keyword) or NOT RUN: nothing ran that can be judged
        outcome = self.config.mapping.classify(
            str(data.name), str(result.message), exception_names(), task.acted
        )
        self._flush(task, validated=False)
        self._report(task, step, outcome, validated=False, message=str(result.message))
        if not step.assertion:
            task.acted = True

    # -- what the keyword library calls --------------------------------------------------

    def report_confidence(
        self, best: float, runner_up: float | None, details: dict[str, Any]
    ) -> bool:
        """Attach match scores to the running step, or to the step that just succeeded.

        Returns:
            False when no step of a task can take them (outside a task, or after a failure).
        """
        task = self._task
        step = self._step if self._step is not None else (task.pending if task else None)
        if step is None:
            return False
        step.confidence, step.second_best = best, runner_up
        step.details.update(details)
        return True

    def current_workflow(self) -> str | None:
        """Return the workflow of the running task, if any."""
        return self._task.workflow if self._task is not None else None

    # -- internals -----------------------------------------------------------------------

    def _flush(self, task: _Task, validated: bool) -> None:
        step, task.pending = task.pending, None
        if step is not None:
            self._report(task, step, Outcome.SUCCESS, validated=validated)

    def _report(
        self,
        task: _Task,
        step: _Step,
        outcome: Outcome,
        validated: bool,
        message: str | None = None,
    ) -> None:
        details = dict(step.details)
        if message:
            details["message"] = redact(message, step.secrets)[:500]
        manager = self.session.manager
        before = manager.get_mode(task.workflow)
        try:
            manager.on_step_result(
                task.workflow,
                step.step_id,
                StepResult(
                    outcome=outcome,
                    confidence=step.confidence,
                    second_best=step.second_best,
                    validated=validated,
                    duration_s=step.duration_s,
                    details=details,
                ),
            )
        except AutoHealError as exc:  # a bad score must not break the robot; say so
            logger.error(f"autoheal could not record step {step.step_id!r}: {exc}")
            return
        after = manager.get_mode(task.workflow)
        if after is not before:
            info = manager.get_state_info(task.workflow)
            logger.warn(
                f"autoheal: workflow {task.workflow!r} {before.value} → {after.value}: "
                f"{info.reason}"
            )

    def _workflow_of(self, data: Any, result: Any) -> str:
        source = self.config.workflow
        if source == "suite":
            return str(result.parent.full_name)
        if source == "tag":
            prefix = self.config.tag_prefix
            for tag in result.tags:
                if tag.startswith(prefix) and len(tag) > len(prefix):
                    return str(tag[len(prefix) :])
            # Not silently: the task becomes its own workflow, and the run says so once.
            name = str(result.full_name)
            if name not in self._untagged:
                self._untagged.add(name)
                logger.warn(
                    f"autoheal: task {name!r} has no '{prefix}<workflow>' tag"
                    " (workflow=tag): it is its own workflow"
                )
        return str(result.full_name)

    def _step_id(self, data: Any) -> str:
        """Return a step's id: its name, or its name and arguments as written (no values)."""
        if self.config.step == "keyword":
            return str(data.name)[:256]
        return "    ".join([str(data.name), *(str(a) for a in data.args)])[:256]
