"""Write the dashboards' JSON next to this file (``make generate`` runs it).

The committed JSON must equal what this writes (a test regenerates and compares).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from autoheal_dashboards import DASHBOARDS  # noqa: E402


def render(name: str) -> str:
    """Return one dashboard as the committed JSON text."""
    data: Any = json.loads(json.dumps(DASHBOARDS[name]().to_json_data(), cls=DashboardEncoder))
    _fix_thresholds(data)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _fix_thresholds(node: Any) -> None:
    """grafanalib writes the base threshold step's value as the string "null"; Grafana wants null."""
    if isinstance(node, dict):
        if node.get("value") == "null" and "color" in node:
            node["value"] = None
        for value in node.values():
            _fix_thresholds(value)
    elif isinstance(node, list):
        for value in node:
            _fix_thresholds(value)


def main() -> None:
    """Write every dashboard."""
    for name in DASHBOARDS:
        (HERE / f"{name}.json").write_text(render(name), encoding="utf-8")
        print(f"wrote dashboards/{name}.json")


if __name__ == "__main__":
    main()
