"""`make bench` runs every benchmark under bench/, and none leaves files in the temp directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SMALL = {
    "hot_path.py": ["--number", "300", "--repeat", "1"],
    "audited_step.py": ["--number", "200", "--repeat", "1"],
    "replay.py": ["--steps", "300"],
    "analytics.py": ["--events", "3000", "--repeat", "1"],
    "artifacts.py": ["--sizes", "1", "--repeat", "1"],
    "fleet.py": ["--hosts", "2", "--workflows", "5", "--seconds", "0.5", "--number", "200"],
    "fleet_hang.py": ["--runs", "1", "--seconds", "0.3"],
    "shared_decisions.py": ["--repeats", "1", "--steps", "50"],
    "disk.py": ["--steps", "300", "--runs", "1", "--repeat", "1"],
    "lab.py": ["--steps", "300", "--candidates", "3", "--runs", "1"],
    "shadow.py": ["--steps", "300", "--runs", "1"],
    "year.py": ["--days", "3", "--per-day", "240", "--samples", "2,3", "--repeat", "1"],
}


def test_make_bench_runs_every_script() -> None:
    """The bench target loops over bench/*.py (it ran hot_path.py alone), and each has small args here."""
    recipe = re.search(r"^bench:.*?\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None and "bench/*.py" in recipe.group(1)
    assert set(SMALL) <= {p.name for p in (ROOT / "bench").glob("*.py")}


@pytest.mark.parametrize("script", sorted(SMALL))
def test_benchmark_leaves_nothing_in_the_temp_directory(script: str, tmp_path: Path) -> None:
    """A small run of each benchmark removes what it wrote (hot_path.py left about 2 GB per run)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *SMALL[script]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TMPDIR": str(temp)},
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()
    assert list(temp.iterdir()) == []
