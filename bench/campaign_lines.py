"""A seeded campaign through the public API, printed as its audit lines: proof that a change of
code alone leaves every decision as it was.

The same seed gives the same inputs: gates and results of random outcomes and scores over
several workflows, operator moves, a policy reload, a global resume, artifact versions
activated by hand, checkpoints, all on a fake clock. The audit log is printed line by line
with the one field that differs between two runs of the same code (the random writer id)
replaced, and the session's start details that name the process (pid, host, release) left
out. Run it on two checkouts and compare:

    python bench/campaign_lines.py --seed 7 > a.txt   (in each checkout)   ;  cmp a.txt b.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path

from autoheal_otel import AutoHealManager, Outcome, PolicyConfig, StepResult
from autoheal_otel.testing import FakeClock

VOLATILE_DETAILS = ("pid", "host", "hostname", "library_version", "python", "writer")


def campaign(seed: int, data: Path, steps: int) -> None:
    """Drive one manager through ``steps`` random inputs."""
    rng = random.Random(seed)
    policy = PolicyConfig.from_dict(
        {
            "breakers": {
                "workflow": {"failure_threshold": 6, "window_seconds": 300},
                "global": {"failure_threshold": 25, "window_seconds": 300},
            },
            "audit": {"checkpoint_interval_seconds": 30_000_000},  # by hand only
        }
    )
    clock = FakeClock()
    workflows = ["invoice", "payroll", "orders", "claims"]
    outcomes = list(Outcome)
    with AutoHealManager(policy, data, clock=clock) as m:
        for i in range(steps):
            clock.advance(rng.choice([0.5, 2.0, 15.0, 60.0]))
            wid = rng.choice(workflows)
            step = f"s{rng.randint(1, 5)}"
            roll = rng.random()
            if roll < 0.01:
                m.force_transition(wid, rng.choice(["running", "degraded", "quarantined"]),
                                   reason=f"check {i}", actor="ops")  # fmt: skip
            elif roll < 0.013:
                m.resume_all(reason=f"resume {i}", actor="ops")
            elif roll < 0.015:
                m.activate_artifact_version(f"v{i}", reason="retrained")
            elif roll < 0.017:
                raw = policy.to_record()
                raw["breakers"]["workflow"]["failure_threshold"] = rng.choice([4, 6, 8])
                m.update_policy(PolicyConfig.from_dict(raw))
            elif roll < 0.02:
                m.checkpoint()
            elif m.should_execute_step(wid, step)[0]:
                conf = rng.choice([None, 0.3, 0.62, 0.81, 0.93, 0.99])
                outcome = Outcome.SUCCESS if rng.random() < 0.8 else rng.choice(outcomes)
                m.on_step_result(wid, step, StepResult(
                    outcome=outcome, confidence=conf,
                    second_best=None if conf is None else round(conf * rng.random(), 3),
                    validated=rng.random() < 0.7, duration_s=round(rng.random(), 3),
                ))  # fmt: skip


def lines(data: Path) -> list[str]:
    """Return the audit log's lines in order, byte for byte but for the writer id (replaced)
    and the session records' details that name the process."""
    out = []
    for segment in sorted((data / "audit").glob("*.jsonl")):
        for raw in segment.read_text().splitlines():
            record = json.loads(raw)
            line = raw.replace(record["writer"], "W")
            if record["kind"] == "session":
                record = json.loads(line)
                for key in VOLATILE_DETAILS:
                    (record.get("details") or {}).pop(key, None)
                line = json.dumps(record, sort_keys=True)
            out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--summary", action="store_true", help="print a count and a digest only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        campaign(args.seed, Path(folder), args.steps)
        found = lines(Path(folder))
    if args.summary:
        digest = hashlib.sha256("\n".join(found).encode()).hexdigest()[:16]
        kinds: dict[str, int] = {}
        for line in found:
            kind = json.loads(line)["kind"]
            kinds[kind] = kinds.get(kind, 0) + 1
        print(f"seed {args.seed}: {len(found)} lines, sha256 {digest}, {kinds}")
    else:
        sys.stdout.write("\n".join(found) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
