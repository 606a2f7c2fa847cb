"""The analysis notebooks run headless against demo data, and are committed without outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "analytics").glob("*.ipynb"))


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("nb") / "demo-data"
    exe = shutil.which("autoheal", path=str(Path(sys.executable).parent))
    assert exe is not None
    subprocess.run(
        [exe, "demo", "--data-dir", str(data), "--json"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return data


def test_there_are_four_notebooks() -> None:
    """States over time, failure taxonomy, regression evidence, what-if tuning."""
    assert [p.stem for p in NOTEBOOKS] == [
        "failure_taxonomy",
        "regression_evidence",
        "states_over_time",
        "what_if_tuning",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    """No committed cell carries outputs or execution counts."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_headless_against_demo_data(
    path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each notebook executes top to bottom without error and prints what it found."""
    monkeypatch.setenv("AUTOHEAL_DATA_DIR", str(demo_data))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert (str(demo_data) in printed and "rows" in printed) or "->" in printed
    assert os.environ["AUTOHEAL_DATA_DIR"] == str(demo_data)
