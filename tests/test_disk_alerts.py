"""The disk alert rules, evaluated by Prometheus's own rule engine (``promtool test rules``).

The live Prometheus test (``test_prometheus.py``) checks that the rules load, evaluate and
fire against the served metrics; here synthetic series pin the thresholds: 80 % of the
budget, and 125 % of the free-space floor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMTOOL = shutil.which("promtool")

if PROMTOOL is None:
    if os.environ.get("CI"):
        raise RuntimeError("promtool is not installed: .ci/run installs it (Debian package)")
    pytest.skip("promtool is not installed (make test installs it)", allow_module_level=True)

GIB = 1024**3
TARGET = 'job="autoheal", instance="h:9464"'


def _series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


def _run(tmp_path: Path, tests: list[dict[str, object]]) -> subprocess.CompletedProcess[str]:
    spec = {
        "rule_files": [str(ROOT / "config" / "prometheus" / "alerts.yml")],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    path = tmp_path / "disk_alerts_test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )


def _budget_case(audit_gib: int, fires: bool) -> dict[str, object]:
    """10 GiB budget; the audit log at ``audit_gib`` plus 1 GiB of reports."""
    alert = {
        "exp_labels": {"severity": "warning", "job": "autoheal", "instance": "h:9464"},
        "exp_annotations": {
            "summary": "The data directory uses over 80 % of its disk budget",
            "description": "retention.max_bytes is nearly reached: see `autoheal status` for"
            " the parts. Lower the keep-days, compact the audit log (autoheal compact), or"
            " raise the budget.",
        },
    }
    return {
        "interval": "1m",
        "input_series": [
            _series(
                "autoheal_disk_usage_bytes",
                f'{TARGET}, autoheal_disk_part="audit_raw"',
                f"{audit_gib * GIB}x5",
            ),
            _series(
                "autoheal_disk_usage_bytes", f'{TARGET}, autoheal_disk_part="reports"', f"{GIB}x5"
            ),
            _series("autoheal_disk_budget_bytes", TARGET, f"{10 * GIB}x5"),
        ],
        "alert_rule_test": [
            {
                "eval_time": "3m",
                "alertname": "AutohealDiskBudget",
                "exp_alerts": [alert] if fires else [],
            }
        ],
    }


def _free_case(free_gib: float, fires: bool) -> dict[str, object]:
    """A 4 GiB floor; ``free_gib`` free."""
    return {
        "interval": "1m",
        "input_series": [
            _series("autoheal_disk_free_bytes", TARGET, f"{int(free_gib * GIB)}x5"),
            _series("autoheal_disk_free_floor_bytes", TARGET, f"{4 * GIB}x5"),
        ],
        "alert_rule_test": [
            {
                "eval_time": "3m",
                "alertname": "AutohealDiskFreeLow",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "severity": "warning",
                            "job": "autoheal",
                            "instance": "h:9464",
                        },
                        "exp_annotations": {
                            "summary": "Free space on the data directory's device is near its"
                            " floor",
                            "description": "Less than 125 % of retention.keep_free_bytes is"
                            " free; under the floor /health is degraded. Free space on the"
                            " device or move the data directory.",
                        },
                    }
                ]
                if fires
                else [],
            }
        ],
    }


@pytest.mark.parametrize(
    ("audit_gib", "fires"),
    [(6, False), (7, False), (8, True), (12, True)],
    ids=["70%", "80%-exactly", "90%", "over"],
)
def test_budget_alert_fires_past_80_percent(tmp_path: Path, audit_gib: int, fires: bool) -> None:
    """The budget alert fires when every part together passes 80 % of the budget."""
    done = _run(tmp_path, [_budget_case(audit_gib, fires)])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("free_gib", "fires"),
    [(20, False), (5.5, False), (4.9, True), (1, True)],
    ids=["plenty", "above-125%", "within-125%", "under-floor"],
)
def test_free_space_alert_fires_near_the_floor(
    tmp_path: Path, free_gib: float, fires: bool
) -> None:
    """The free-space alert fires when less than 125 % of the floor is free."""
    done = _run(tmp_path, [_free_case(free_gib, fires)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The harness can fail: expecting no alert at 90 % of the budget is reported."""
    done = _run(tmp_path, [_budget_case(9, False)])
    assert done.returncode != 0
