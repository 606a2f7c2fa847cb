"""PolicyConfig: defaults, validation with named fields, overrides, round trips, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoheal_otel import PolicyConfig, PolicyError, Trigger

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_the_design_defaults() -> None:
    """Every default of the design's table is the model's default."""
    p = PolicyConfig()
    assert p.confidence.normal_threshold == 0.75
    assert p.confidence.degraded_threshold == pytest.approx(0.85)
    assert p.confidence.degraded_cap == 0.95
    assert p.confidence.low_confidence_floor == 0.70
    assert p.confidence.ambiguity_margin == 0.05
    assert p.breakers.step.consecutive_target_not_found == 3
    assert p.breakers.step.consecutive_low_confidence == 3
    assert (p.breakers.workflow.failure_threshold, p.breakers.workflow.window_seconds) == (10, 600)
    assert (p.breakers.global_.failure_threshold, p.breakers.global_.window_seconds) == (50, 600)
    assert p.breakers.global_.quarantined_workflows_threshold == 3
    assert p.degraded.recovery_successes == 5
    assert (p.degraded.step_delay_ms, p.degraded.max_retries) == (500, 1)
    assert p.degraded.postcondition_required and p.degraded.freeze_learning
    assert (p.rollback.success_rate_drop_points, p.rollback.min_executions) == (20, 10)
    assert p.versioning.keep_versions == 5
    assert p.hot_reload.check_interval_seconds == 5


def test_committed_policy_file_is_the_complete_default() -> None:
    """config/auto_heal_policy.json loads and equals the model's defaults."""
    loaded = PolicyConfig.load(ROOT / "config" / "auto_heal_policy.json")
    assert loaded.to_dict() == PolicyConfig().to_dict()
    assert loaded.version == PolicyConfig().version


def test_committed_schema_matches_the_model() -> None:
    """config/auto_heal_policy.schema.json is what json_schema() exports today."""
    committed = json.loads((ROOT / "config" / "auto_heal_policy.schema.json").read_text())
    assert committed == PolicyConfig.json_schema()


def test_schema_validates_the_default_file_and_rejects_typos() -> None:
    """The exported schema accepts the default policy and refuses an unknown key."""
    import jsonschema

    schema = PolicyConfig.json_schema()
    data = json.loads((ROOT / "config" / "auto_heal_policy.json").read_text())
    jsonschema.validate(data, schema)
    data["confidence"]["normal_treshold"] = 0.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


BAD = [
    ({"confidence": {"normal_threshold": 1.5}}, "confidence.normal_threshold", 1.5),
    ({"confidence": {"ambiguity_margin": -0.1}}, "confidence.ambiguity_margin", -0.1),
    ({"confidence": {"normal_treshold": 0.5}}, "confidence.normal_treshold", 0.5),
    ({"confidence": {"normal_threshold": 0.99}}, "confidence.degraded_cap", 0.95),
    ({"confidence": {"low_confidence_floor": 0.8}}, "confidence.low_confidence_floor", 0.8),
    ({"breakers": {"workflow": {"window_seconds": 0}}}, "breakers.workflow.window_seconds", 0),
    ({"breakers": {"global": {"failure_threshold": 0}}}, "breakers.global.failure_threshold", 0),
    (
        {"breakers": {"step": {"consecutive_target_not_found": True}}},
        "breakers.step.consecutive_target_not_found",
        True,
    ),
    (
        {"breakers": {"step": {"consecutive_target_not_found": "3"}}},
        "breakers.step.consecutive_target_not_found",
        "3",
    ),
    ({"degraded": {"recovery_successes": 0}}, "degraded.recovery_successes", 0),
    (
        {"quarantine": {"probe_cooldown_seconds": 600, "probe_max_cooldown_seconds": 60}},
        "quarantine.probe_max_cooldown_seconds",
        60,
    ),
    ({"audit": {"fsync": "sometimes"}}, "audit.fsync", "sometimes"),
    (
        {"workflows": {"inv": {"confidence": {"normal_threshold": 7}}}},
        "workflows.inv.confidence.normal_threshold",
        7,
    ),
    (
        {"workflows": {"inv": {"confidence": {"normal_threshold": 0.99}}}},
        "workflows.inv.confidence.degraded_cap",
        0.95,
    ),
    ({"workflows": {"inv": {"audit": {}}}}, "workflows.inv.audit", {}),
    ({"workflows": {"inv": {"breakers": {"global": {}}}}}, "workflows.inv.breakers.global", {}),
    (
        {"workflows": {"inv": {"degraded": {"recovery_sucesses": 2}}}},
        "workflows.inv.degraded.recovery_sucesses",
        2,
    ),
    ({"schema_version": 2}, "schema_version", 2),
]


@pytest.mark.parametrize(
    ("data", "field", "value"), BAD, ids=[b[1] + "=" + repr(b[2]) for b in BAD]
)
def test_bad_policy_names_field_and_value(
    data: dict[str, Any], field: str, value: Any, tmp_path: Path
) -> None:
    """Loading a bad policy raises PolicyError with the dotted field path and the bad value."""
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PolicyError) as err:
        PolicyConfig.load(path)
    assert err.value.field == field
    assert err.value.value == value
    assert field in str(err.value)
    assert str(path) in str(err.value)


def test_nan_in_policy_is_rejected(tmp_path: Path) -> None:
    """A NaN threshold (Python's json writes NaN) is refused, naming the field."""
    path = tmp_path / "p.json"
    path.write_text('{"confidence": {"normal_threshold": NaN}}')
    with pytest.raises(PolicyError) as err:
        PolicyConfig.load(path)
    assert err.value.field == "confidence.normal_threshold"


@pytest.mark.parametrize(
    ("text", "needle"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ("", "not valid JSON")],
    ids=["syntax", "array", "empty"],
)
def test_unparseable_policy(tmp_path: Path, text: str, needle: str) -> None:
    """Malformed JSON is a PolicyError that says so, never a JSONDecodeError."""
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(PolicyError, match=needle):
        PolicyConfig.load(path)


def test_missing_policy_file(tmp_path: Path) -> None:
    """A missing file is a PolicyError naming the path."""
    with pytest.raises(PolicyError, match="cannot read policy"):
        PolicyConfig.load(tmp_path / "nope.json")


def test_constructing_in_code_raises_policy_error_too() -> None:
    """PolicyConfig(...) with a bad value raises PolicyError, not a raw ValidationError."""
    with pytest.raises(PolicyError) as err:
        PolicyConfig(confidence={"normal_threshold": 2})
    assert err.value.field == "confidence.normal_threshold"


def test_overrides_merge_over_global_sections() -> None:
    """A workflow override changes only the fields it names; others keep the global value."""
    p = PolicyConfig.from_dict(
        {
            "confidence": {"normal_threshold": 0.7, "low_confidence_floor": 0.6},
            "workflows": {
                "inv": {
                    "confidence": {"normal_threshold": 0.8},
                    "breakers": {"workflow": {"failure_threshold": 4}},
                }
            },
        }
    )
    inv = p.for_workflow("inv")
    other = p.for_workflow("other")
    assert inv.confidence.normal_threshold == 0.8
    assert inv.confidence.low_confidence_floor == 0.6
    assert inv.workflow_breaker.failure_threshold == 4
    assert inv.workflow_breaker.window_seconds == 600
    assert other.confidence.normal_threshold == 0.7
    assert other.workflow_breaker.failure_threshold == 10


def test_version_changes_with_content() -> None:
    """Equal policies have equal versions; a changed field changes it."""
    assert PolicyConfig().version == PolicyConfig().version
    assert PolicyConfig().version != PolicyConfig(degraded={"recovery_successes": 4}).version


probabilities = st.floats(0, 1, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn) -> PolicyConfig:
    normal = draw(probabilities)
    floor = draw(st.floats(0, normal))
    cap = draw(st.floats(normal, 1))
    cooldown = draw(st.floats(1, 1000))
    triggers = draw(st.lists(st.sampled_from(Trigger), min_size=1, max_size=4, unique=True))
    return PolicyConfig.from_dict(
        {
            "confidence": {
                "normal_threshold": normal,
                "low_confidence_floor": floor,
                "degraded_cap": cap,
                "degraded_boost": draw(probabilities),
                "ambiguity_margin": draw(probabilities),
            },
            "breakers": {
                "step": {
                    "consecutive_target_not_found": draw(st.integers(1, 50)),
                    "window_failure_threshold": draw(st.none() | st.integers(1, 50)),
                },
                "workflow": {
                    "failure_threshold": draw(st.integers(1, 500)),
                    "window_seconds": draw(st.floats(0.001, 1e6)),
                    "counted_triggers": [t.value for t in triggers],
                },
            },
            "quarantine": {
                "probe_enabled": draw(st.booleans()),
                "probe_cooldown_seconds": cooldown,
                "probe_max_cooldown_seconds": cooldown * draw(st.floats(1, 10)),
            },
            "audit": {"fsync": draw(st.sampled_from(["never", "interval", "always"]))},
            "workflows": draw(
                st.dictionaries(
                    st.text(min_size=1, max_size=8),
                    st.fixed_dictionaries(
                        {
                            "degraded": st.fixed_dictionaries(
                                {"recovery_successes": st.integers(1, 20)}
                            )
                        }
                    ),
                    max_size=3,
                )
            ),
        }
    )


@given(policies())
def test_load_dump_load_is_identity(policy: PolicyConfig) -> None:
    """Any valid policy survives dump -> load unchanged (and keeps its version)."""
    again = PolicyConfig.from_json(policy.dump_json())
    assert again == policy
    assert again.version == policy.version
    assert again.dump_json() == policy.dump_json()


@given(policies())
def test_effective_thresholds_are_consistent(policy: PolicyConfig) -> None:
    """For every workflow: floor <= normal <= degraded threshold <= cap <= 1."""
    for wid in [*policy.workflows, "anything"]:
        c = policy.for_workflow(wid).confidence
        assert c.low_confidence_floor <= c.normal_threshold <= c.degraded_threshold
        assert c.degraded_threshold <= c.degraded_cap <= 1.0


def test_dump_is_atomic_and_loadable(tmp_path: Path) -> None:
    """dump writes a file that load reads back equal, with no temp file left behind."""
    p = PolicyConfig(degraded={"recovery_successes": 7})
    p.dump(tmp_path / "p.json")
    assert PolicyConfig.load(tmp_path / "p.json") == p
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]
