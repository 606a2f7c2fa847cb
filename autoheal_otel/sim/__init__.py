"""A simulated executor: workflows of steps on a simulated screen, matched with real FAISS.

Every target on the simulated screen has a true embedding (a unit vector). The robot knows
each target by a *prototype* embedding, and finds it by searching the workflow's FAISS index
of prototypes (inner product = cosine similarity) with what it observes on screen. So match
confidences, ambiguity and misses come out of real FAISS searches, and degrading the
prototypes really lowers them.

Failure injection: :meth:`SimExecutor.hide_target` (TARGET_NOT_FOUND),
:meth:`SimExecutor.fail_postconditions` (POSTCONDITION_FAILED), :meth:`SimExecutor.hang`
(WATCHDOG_TIMEOUT), :meth:`SimExecutor.degrade_prototypes` (a worse learned version).

The executor integrates through the manager's three-line step wrapper, and moves a
:class:`~autoheal_otel.testing.FakeClock` when it is given one (with a real clock it never
sleeps: a hang is reported as the watchdog firing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base._errors import StepBlockedError
from ..base._models import Outcome
from ..runtime._manager import AutoHealManager
from ..runtime._step import PostconditionFailed, TargetNotFound
from ..versioning import (
    FaissIndexComponent,
    PrototypesComponent,
    SqliteComponent,
    VersionedStore,
)

__all__ = ["SimExecutor", "SimStep", "SimWorkflow", "StepRecord"]


@dataclass(frozen=True)
class SimStep:
    """One step: the target it clicks and how long the action takes (seconds)."""

    step_id: str
    target_id: str
    work_s: float = 2.0


@dataclass(frozen=True)
class SimWorkflow:
    """A workflow: an ordered list of steps."""

    workflow_id: str
    steps: tuple[SimStep, ...]

    @classmethod
    def of(cls, workflow_id: str, *targets: str) -> SimWorkflow:
        """Build a workflow with one ``click_<target>`` step per target."""
        return cls(workflow_id, tuple(SimStep(f"click_{t}", t) for t in targets))


@dataclass(frozen=True)
class StepRecord:
    """What happened to one step the executor tried."""

    workflow_id: str
    step_id: str
    allowed: bool
    outcome: Outcome | None
    confidence: float | None
    reason: str


@dataclass
class _Injection:
    hidden: set[str] = field(default_factory=set)
    postcondition_failures: dict[str, int] = field(default_factory=dict)
    hangs: dict[str, tuple[float, int]] = field(default_factory=dict)


class SimExecutor:
    """Run simulated workflows through an :class:`AutoHealManager` (see the module docstring).

    Args:
        manager: the manager (its clock drives the simulation).
        data_dir: where the versioned artifacts live (the manager's data directory).
        workflows: the workflows this executor runs.
        dim: embedding size; seed: for every random draw.
        observation_noise: how far what the robot sees is from a target's true embedding.
    """

    def __init__(
        self,
        manager: AutoHealManager,
        data_dir: str | Path,
        workflows: Iterable[SimWorkflow],
        *,
        dim: int = 64,
        seed: int = 0,
        observation_noise: float = 0.02,
    ) -> None:
        import numpy as np

        self._np = np
        self.manager = manager
        self.workflows = {w.workflow_id: w for w in workflows}
        self.dim = dim
        self.rng = np.random.default_rng(seed)
        self.observation_noise = observation_noise
        self.injection = _Injection()
        targets = sorted({s.target_id for w in self.workflows.values() for s in w.steps})
        self.truth = {t: self._unit(self.rng.standard_normal(dim)) for t in targets}
        self.prototypes = PrototypesComponent()
        self.indexes = {wid: FaissIndexComponent(wid) for wid in self.workflows}
        store = VersionedStore(
            data_dir,
            [self.prototypes, *self.indexes.values(), SqliteComponent()],
            keep=manager.policy.versioning.keep_versions,
            clock=manager.clock,
        )
        self.store = store
        self._loaded: dict[str, tuple[int, Any, list[str]]] = {}
        if store.current() is None:
            for wid in self.workflows:
                self._write_prototypes(wid, {t: self.truth[t] for t in self._targets(wid)})
            store.snapshot("initial prototypes", known_good=True)
        manager.attach_store(store)

    # -- prototypes and matching ---------------------------------------------------------

    def _unit(self, vector: Any) -> Any:
        return (vector / self._np.linalg.norm(vector)).astype("float32")

    def _targets(self, workflow_id: str) -> list[str]:
        return sorted({s.target_id for s in self.workflows[workflow_id].steps})

    def _write_prototypes(self, workflow_id: str, prototypes: dict[str, Any]) -> None:
        import faiss

        labels = sorted(prototypes)
        matrix = self._np.stack([prototypes[t] for t in labels]).astype("float32")
        index = faiss.IndexFlatIP(self.dim)
        index.add(matrix)
        self.indexes[workflow_id].save(index)
        for label, vector in zip(labels, matrix, strict=True):
            self.prototypes.write_file(f"{workflow_id}/{label}.f32", vector.tobytes())
        self.prototypes.write_file(f"{workflow_id}/labels.txt", "\n".join(labels).encode())

    def _index(self, workflow_id: str) -> tuple[Any, list[str]]:
        """Return the active version's index and labels (reloaded when the set changes)."""
        current = self.store.current()
        assert current is not None
        cached = self._loaded.get(workflow_id)
        if cached is None or cached[0] != current.id:
            component = self.indexes[workflow_id]
            index = FaissIndexComponent.load(self.store.active_path(component.name), mmap=False)
            folder = self.store.active_path(self.prototypes.name) / workflow_id
            labels = (folder / "labels.txt").read_text().splitlines()
            cached = self._loaded[workflow_id] = (current.id, index, labels)
        return cached[1], cached[2]

    def match(self, workflow_id: str, target_id: str) -> tuple[str | None, float, float]:
        """Search the workflow's index for what the screen shows of a target.

        Returns (best label, best score, second-best score); a hidden target shows nothing,
        so the best match is whatever else is most similar to a blank observation.
        """
        index, labels = self._index(workflow_id)
        if target_id in self.injection.hidden:
            observed = self._unit(self.rng.standard_normal(self.dim))
        else:
            noise = self.rng.standard_normal(self.dim) * self.observation_noise
            observed = self._unit(self.truth[target_id] + noise)
        k = min(2, len(labels))
        scores, ids = index.search(observed.reshape(1, -1), k)
        best = labels[int(ids[0][0])] if ids[0][0] >= 0 else None
        second = float(scores[0][1]) if k > 1 else 0.0
        return best, max(0.0, min(1.0, float(scores[0][0]))), max(0.0, min(1.0, second))

    # -- failure injection ---------------------------------------------------------------

    def hide_target(self, target_id: str) -> None:
        """Take a target off the screen (every match misses it)."""
        self.injection.hidden.add(target_id)

    def show_target(self, target_id: str) -> None:
        """Put a hidden target back."""
        self.injection.hidden.discard(target_id)

    def fail_postconditions(self, step_id: str, count: int) -> None:
        """Make the next ``count`` runs of a step fail their postcondition."""
        self.injection.postcondition_failures[step_id] = count

    def hang(self, step_id: str, seconds: float, count: int = 1) -> None:
        """Make the next ``count`` runs of a step take ``seconds`` (past the watchdog)."""
        self.injection.hangs[step_id] = (seconds, count)

    def degrade_prototypes(
        self, workflow_id: str, fraction: float, noise: float, reason: str
    ) -> Any:
        """Learn worse prototypes for a fraction of a workflow's targets, and publish them.

        This is "learning that made things worse": the new set becomes active through the
        manager (refused while learning is frozen) and real FAISS confidences drop.
        """
        targets = self._targets(workflow_id)
        count = max(1, round(len(targets) * fraction))
        worse = set(self.rng.choice(targets, size=count, replace=False).tolist())
        prototypes = {
            t: self._unit(self.truth[t] + self.rng.standard_normal(self.dim) * noise)
            if t in worse
            else self.truth[t]
            for t in targets
        }
        self._write_prototypes(workflow_id, prototypes)
        return self.manager.snapshot_artifacts(workflow_id, reason)

    # -- running -------------------------------------------------------------------------

    def _advance(self, seconds: float) -> bool:
        advance = getattr(self.manager.clock, "advance", None)
        if advance is None:
            return False
        advance(seconds)
        return True

    def run_step(self, workflow_id: str, step: SimStep) -> StepRecord:
        """Run one step through the manager's step wrapper (the three-line integration)."""
        confidence: float | None = None
        guard = self.manager.step(workflow_id, step.step_id)
        try:
            with guard:
                settings = guard.settings
                assert settings is not None
                best, confidence, second = self.match(workflow_id, step.target_id)
                if best != step.target_id or confidence < settings.min_confidence:
                    raise TargetNotFound(
                        f"{step.target_id} not found (best {best} at {confidence:.2f})"
                    )
                self._advance(step.work_s)
                hang = self.injection.hangs.get(step.step_id)
                if hang is not None:
                    seconds, left = hang
                    self.injection.hangs[step.step_id] = (seconds, left - 1)
                    if left <= 1:
                        del self.injection.hangs[step.step_id]
                    if not self._advance(seconds):
                        raise TimeoutError(f"{step.step_id} hung for {seconds} s")
                failures = self.injection.postcondition_failures.get(step.step_id, 0)
                if failures > 0:
                    self.injection.postcondition_failures[step.step_id] = failures - 1
                    raise PostconditionFailed(f"{step.step_id}: the page did not change")
                guard.succeed(confidence=confidence, second_best=second, validated=True)
            outcome = guard.result.outcome if guard.result else None
            return StepRecord(workflow_id, step.step_id, True, outcome, confidence, guard.reason)
        except StepBlockedError as blocked:
            return StepRecord(workflow_id, step.step_id, False, None, None, blocked.reason)
        except (TargetNotFound, PostconditionFailed, TimeoutError) as failed:
            # The guard reported the failure on exit; its result says which outcome it was.
            outcome = guard.result.outcome if guard.result else Outcome.ERROR
            return StepRecord(workflow_id, step.step_id, True, outcome, confidence, str(failed))
        finally:
            self._advance(self.manager.get_effective_settings(workflow_id).step_delay_ms / 1000)

    def run(self, workflow_id: str, rounds: int = 1) -> list[StepRecord]:
        """Run the workflow's steps in order, ``rounds`` times; blocked steps are skipped."""
        records = []
        for _ in range(rounds):
            for step in self.workflows[workflow_id].steps:
                records.append(self.run_step(workflow_id, step))
        return records

    def run_many(self, workflow_ids: Sequence[str], rounds: int = 1) -> list[StepRecord]:
        """Interleave several workflows, one round each at a time."""
        records = []
        for _ in range(rounds):
            for wid in workflow_ids:
                records.extend(self.run(wid, 1))
        return records
