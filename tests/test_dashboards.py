"""Generated dashboards and alert rules: reproducible, schema-valid, structurally sound."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "dashboards"))

import alerts  # noqa: E402
import generate  # noqa: E402

SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "grafana_dashboard.schema.json").read_text()
)
NAMES = ["overview", "workflow"]


def strip_nulls(node: Any, key: str = "") -> Any:
    """Drop null fields (grafanalib writes many), but keep a threshold step's `value: null`."""
    if isinstance(node, dict):
        return {k: strip_nulls(v, k) for k, v in node.items() if v is not None or k == "value"}
    if isinstance(node, list):
        return [strip_nulls(v) for v in node]
    return node


@pytest.mark.parametrize("name", NAMES)
def test_committed_json_is_what_the_code_generates(name: str) -> None:
    """Regenerating a dashboard gives exactly the committed JSON."""
    assert (ROOT / "dashboards" / f"{name}.json").read_text() == generate.render(name)


def test_committed_alert_rules_are_what_the_code_generates() -> None:
    """Regenerating the alert rules gives exactly the committed file."""
    assert (ROOT / "config" / "prometheus" / "alerts.yml").read_text() == alerts.render()


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_validates_against_grafanas_schema(name: str) -> None:
    """The JSON validates against the schema derived from Grafana's published types."""
    dashboard = strip_nulls(json.loads((ROOT / "dashboards" / f"{name}.json").read_text()))
    jsonschema.validate(dashboard, SCHEMA)


def test_schema_check_can_fail() -> None:
    """A broken dashboard (a panel without a type, a bad gridPos) is rejected."""
    dashboard = strip_nulls(json.loads((ROOT / "dashboards" / "overview.json").read_text()))
    dashboard["panels"][0]["gridPos"] = {"x": "left"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dashboard, SCHEMA)


@pytest.mark.parametrize("name", NAMES)
def test_structure(name: str) -> None:
    """Unique panel ids, panels inside the 24-column grid without overlaps, known datasources."""
    dashboard = json.loads((ROOT / "dashboards" / f"{name}.json").read_text())
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
        assert p["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert p["maxDataPoints"] is None, p["title"]
        for target in p["targets"]:
            assert target["datasource"]["uid"] == "prometheus" and target["expr"]
    assert dashboard["uid"].startswith("autoheal-")


def test_workflow_dashboard_is_templated_and_links_to_traces() -> None:
    """The drill-down has a workflow variable and links from its panels to the trace store."""
    dashboard = json.loads((ROOT / "dashboards" / "workflow.json").read_text())
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "workflow" and "autoheal_workflow_id" in variable["query"]
    links = [link for p in dashboard["panels"] for link in p.get("links", [])]
    assert links and all('"tempo"' in link["url"] for link in links)
    assert all("$workflow" in t["expr"] for p in dashboard["panels"] for t in p["targets"])
