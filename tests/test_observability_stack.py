"""The compose stack, validated without a Docker engine: schema, mounts, configs, uids."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.observability.yml"


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    """check-jsonschema's built-in compose-spec schema accepts the file."""
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert exe is not None
    proc = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_mounted_file_exists() -> None:
    """Every bind mount of the repository's files points at a file that is there."""
    checked = 0
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if "${" in source:
                continue  # the executor's data directory, chosen at run time
            assert (ROOT / source).exists(), f"{name}: {source} is missing"
            checked += 1
    assert checked >= 10


def test_images_are_pinned_and_profiles_do_not_collide() -> None:
    """Images carry explicit tags; the all-in-one and the separate stack are separate profiles."""
    services = compose()["services"]
    for name, service in services.items():
        assert re.search(r":v?[0-9][\w.\-]*$", service["image"]), f"{name} image is not pinned"
    profiles = {n: tuple(s.get("profiles", ())) for n, s in services.items()}
    assert profiles.pop("lgtm") == ("all-in-one",)
    assert set(profiles.values()) == {("stack",)}


def test_collector_pipelines_use_defined_components() -> None:
    """Every receiver and exporter a pipeline names is defined; traces go to Tempo."""
    config = yaml.safe_load((ROOT / "config" / "otel-collector" / "config.yaml").read_text())
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{name}: {component} is not defined"
    assert "otlp/tempo" in config["service"]["pipelines"]["traces"]["exporters"]
    assert "filelog/audit" in config["service"]["pipelines"]["logs"]["receivers"]


def test_datasource_uids_match_the_dashboards() -> None:
    """The provisioned datasources have the uids the dashboards and their trace links use."""
    provisioned = yaml.safe_load(
        (
            ROOT / "config" / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
        ).read_text()
    )
    uids = {d["uid"] for d in provisioned["datasources"]}
    assert uids == {"prometheus", "tempo", "loki"}
    for name in ("overview", "workflow"):
        dashboard = json.loads((ROOT / "dashboards" / f"{name}.json").read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids
            for link in panel.get("links", []):
                assert '"tempo"' in link["url"]
    mounted = {v.split(":")[0] for v in compose()["services"]["grafana"]["volumes"]}
    assert {"./dashboards/overview.json", "./dashboards/workflow.json"} <= mounted


def test_prometheus_config_is_valid() -> None:
    """promtool accepts the stack's Prometheus config and its rule file."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (make test installs it)")
    proc = subprocess.run(
        [promtool, "check", "config", str(ROOT / "config" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
