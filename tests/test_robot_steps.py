"""What a step is in a real suite: bookkeeping left alone, self-checking keywords, arguments, delay.

Each test runs a real Robot Framework suite in-process under the listener and reads the audit
log it left with DuckDB.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoheal_otel.robot._steps import MAX_ARG_CHARS
from tests.robot_harness import listener, run_suite

DEGRADE = """    FOR    ${i}    IN RANGE    3
        TRY
            Find Target    id:x
        EXCEPT    *    type=glob
            No Operation
        END
    END
"""


def _policy(tmp: Path, delay_ms: int = 0) -> Path:
    path = tmp / "policy.json"
    path.write_text(json.dumps({"degraded": {"step_delay_ms": delay_ms}}), encoding="utf-8")
    return path


def _results(run: object) -> list[dict[str, object]]:
    return run.audit(  # type: ignore[attr-defined, no-any-return]
        "SELECT step_id, validated, state, details FROM audit WHERE kind='result' ORDER BY seq"
    )


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            "app",
            [
                "Act    ${x}",
                "Wait Until Keyword Succeeds    1x    0s    Act    wrapped",
                "Should Be Equal    ${n}    1",
                "Act    ${l}",
            ],
        ),
        ("all", None),
    ],
    ids=["default-app", "all"],
)
def test_bookkeeping_keywords_are_not_steps(
    tmp_path: Path, steps: str, expected: list[str] | None
) -> None:
    """BuiltIn/Collections bookkeeping is not gated; actions, assertions and runners are."""
    body = """*** Settings ***
Library    Collections

*** Tasks ***
Task
    ${l}=    Create List    a
    Append To List    ${l}    b
    VAR    ${x}    one
    Log    ${x}
    ${n}=    Set Variable    1
    Act    ${x}
    Wait Until Keyword Succeeds    1x    0s    Act    wrapped
    Should Be Equal    ${n}    1
    Act    ${l}
"""
    run = run_suite(tmp_path, body, listener_value=listener(tmp_path / "data", steps=steps))
    ids = [r["step_id"] for r in _results(run)]
    if expected is None:  # steps=all: every keyword of the body (VAR is not a keyword)
        assert ids[:4] == ["Create List    a", "Append To List    ${l}    b", "Log    ${x}",
                           "Set Variable    1"]  # fmt: skip
        assert len(ids) == 8
    else:
        assert ids == expected
    assert run.side == ["one", "wrapped", "['a', 'b']"]


def test_a_log_between_an_action_and_its_assertion_keeps_it_validated(tmp_path: Path) -> None:
    """``Log`` is not a step: the action is still verified by the assertion after it."""
    body = (
        "*** Tasks ***\nTask\n    Act    click\n    Log    clicked\n    Value Should Be    a    a\n"
    )
    rows = _results(run_suite(tmp_path, body))
    assert [(r["step_id"], r["validated"]) for r in rows] == [
        ("Act    click", True),
        ("Value Should Be    a    a", True),
    ]


SELF_CHECKING = """*** Keywords ***
Enter Invoice
    [Arguments]    ${id}
    Act    ${id}
    Log    entered ${id}
    Value Should Be    saved    saved

Check Then Act
    Value Should Be    ready    ready
    Act    late

Submit Quietly
    Act    quiet
"""


def test_a_self_checking_keyword_is_validated_and_recovers_the_workflow(tmp_path: Path) -> None:
    """A user keyword whose own body verifies its action counts as validated: DEGRADED ends."""
    body = f"""*** Tasks ***
Invoices
{DEGRADE}    FOR    ${{i}}    IN RANGE    5
        Enter Invoice    inv-${{i}}
    END

{SELF_CHECKING}"""
    run = run_suite(
        tmp_path, body, listener_value=listener(tmp_path / "data", policy=str(_policy(tmp_path)))
    )
    enters = [r for r in _results(run) if str(r["step_id"]).startswith("Enter Invoice")]
    assert [r["validated"] for r in enters] == [True] * 5
    moves = run.audit(
        "SELECT previous_state, state FROM audit WHERE kind='transition' ORDER BY seq"
    )
    assert [(m["previous_state"], m["state"]) for m in moves] == [
        ("running", "degraded"),
        ("degraded", "running"),
    ]


def test_an_action_after_the_last_check_is_not_validated(tmp_path: Path) -> None:
    """Only an assertion that passed after the keyword's last action validates it."""
    body = f"*** Tasks ***\nTask\n    Check Then Act\n    Submit Quietly\n\n{SELF_CHECKING}"
    rows = _results(run_suite(tmp_path, body))
    assert [(r["step_id"], r["validated"]) for r in rows] == [
        ("Check Then Act", False),
        ("Submit Quietly", False),
    ]


def test_the_mapping_can_declare_a_keyword_self_validating(tmp_path: Path) -> None:
    """``validating_keywords`` in the mapping marks steps whose passing run is a validation."""
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"validating_keywords": "^Submit Quietly$"}), encoding="utf-8")
    body = f"*** Tasks ***\nTask\n    Submit Quietly\n    Act    other\n\n{SELF_CHECKING}"
    run = run_suite(
        tmp_path, body, listener_value=listener(tmp_path / "data", mapping=str(mapping))
    )
    assert [(r["step_id"], r["validated"]) for r in _results(run)] == [
        ("Submit Quietly", True),
        ("Act    other", False),
    ]


ARGS_SUITE = """*** Variables ***
${INVOICE}     inv-42
${PASSWORD}    s3cret-value
${LONG}        %s

*** Tasks ***
Task
    Act    ${INVOICE}
    Act    ${PASSWORD}
    Act    ${LONG}
    Act    ${{'inline'}}
""" % ("x" * 200)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "resolved",
            [["inv-42"], ["***"], ["x" * (MAX_ARG_CHARS - 1) + "…"], ["${{'inline'}}"]],
        ),
        ("written", [["${INVOICE}"], ["${PASSWORD}"], ["${LONG}"], ["${{'inline'}}"]]),
        ("off", [None, None, None, None]),
    ],
)
def test_a_step_records_its_arguments_bounded_and_without_secrets(
    tmp_path: Path, mode: str, expected: list[list[str] | None]
) -> None:
    """The log says which item a step worked on; a secret's value never reaches it."""
    run = run_suite(
        tmp_path, ARGS_SUITE, listener_value=listener(tmp_path / "data", record_args=mode)
    )
    recorded = [json.loads(str(r["details"])).get("args") for r in _results(run)]
    assert recorded == expected
    raw = "".join(p.read_text() for p in (tmp_path / "data" / "audit").glob("*.jsonl"))
    assert "s3cret-value" not in raw
    assert run.side[0] == "inv-42"  # the robot itself got the value


def test_the_degraded_delay_is_waited_once_per_gated_step(tmp_path: Path) -> None:
    """DEGRADED's step delay is applied per gated step, not per command inside it."""
    body = f"""*** Tasks ***
Invoices
{DEGRADE}    Enter Invoice    a
    Log    bookkeeping is not delayed
    Act    b

{SELF_CHECKING}"""
    policy = _policy(tmp_path, delay_ms=5)
    run = run_suite(tmp_path, body, listener_value=listener(tmp_path / "data", policy=str(policy)))
    rows = [r for r in _results(run) if r["state"] == "degraded"]
    delays = [json.loads(str(r["details"])).get("delay_s") for r in rows]
    assert [r["step_id"] for r in rows] == ["Enter Invoice    a", "Act    b"]
    assert delays == [0.005, 0.005]  # one wait each, though Enter Invoice ran 3 keywords
    (tmp_path / "off").mkdir()
    off = run_suite(
        tmp_path / "off",
        body,
        listener_value=listener(tmp_path / "off" / "data", policy=str(policy), step_delay="off"),
    )
    assert all("delay_s" not in str(r["details"]) for r in _results(off))


def test_builtin_keywords_that_can_act_are_steps(tmp_path: Path) -> None:
    """``Call Method`` and ``Evaluate`` reach the application: gated and counted."""
    body = """*** Tasks ***
Task
    ${text}=    Evaluate    'abc'.upper()
    ${n}=    Call Method    ${text}    count    A
    Log    ${n}
"""
    ids = [r["step_id"] for r in _results(run_suite(tmp_path, body))]
    assert ids == ["Evaluate    'abc'.upper()", "Call Method    ${text}    count    A"]


SECRETS_SUITE = """*** Variables ***
&{LOGIN}       user=bob    password=hunter2-secret
${PIN}         4711-pin
${DB_URI}      postgres://bob:hunter2db@db.example/app

*** Tasks ***
Task
    Act    ${LOGIN}[password]
    Act    password=${PIN}
    Act    ${DB_URI}
    Value Should Be    ${LOGIN}[password]    expected
"""


def test_no_secret_reaches_the_log_in_any_form(tmp_path: Path) -> None:
    """An item, a named argument, a URL's credentials and a failure message that repeats the
    secret: none of the values is in the audit log."""
    run = run_suite(tmp_path, SECRETS_SUITE)
    recorded = [json.loads(str(r["details"])) for r in _results(run)]
    assert [d.get("args") for d in recorded[:3]] == [
        ["***"],
        ["***"],
        ["postgres://***:***@db.example/app"],
    ]
    assert recorded[3]["message"] == "*** != expected"
    raw = "".join(p.read_text() for p in (tmp_path / "data" / "audit").glob("*.jsonl"))
    for secret in ("hunter2-secret", "4711-pin", "hunter2db"):
        assert secret not in raw


def test_a_self_check_counts_only_after_the_last_action_whatever_its_status(
    tmp_path: Path,
) -> None:
    """An action that fails after the check (caught inside the keyword) undoes the check; an
    assertion run through a wrapper still checks."""
    body = """*** Tasks ***
Task
    Check Then Failing Action
    Act Then Wrapped Check

*** Keywords ***
Check Then Failing Action
    Value Should Be    a    a
    TRY
        Crash    late
    EXCEPT    *    type=glob
        No Operation
    END

Act Then Wrapped Check
    Act    x
    Wait Until Keyword Succeeds    2x    0s    Value Should Be    b    b
"""
    rows = _results(run_suite(tmp_path, body))
    assert [(r["step_id"], r["validated"]) for r in rows] == [
        ("Check Then Failing Action", False),
        ("Act Then Wrapped Check", True),
    ]


def test_the_probe_of_a_quarantined_workflow_goes_to_its_first_real_step(tmp_path: Path) -> None:
    """A task starting with bookkeeping: the half-open probe is the first step that acts, so
    a quarantined workflow can recover."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({
        "breakers": {"workflow": {"failure_threshold": 2}},
        "quarantine": {"probe_enabled": True, "probe_cooldown_seconds": 0.001,
                       "release_to": "running"},
    }), encoding="utf-8")  # fmt: skip
    body = """*** Tasks ***
Fail One
    Crash    one
Fail Two
    Crash    two
Probe
    ${x}=    Set Variable    1
    Act    probe
"""
    value = listener(tmp_path / "data", policy=str(policy), workflow="suite")
    run = run_suite(tmp_path, body, listener_value=value)
    assert run.tests()["Probe"].status == "PASS", run.tests()["Probe"].message
    assert run.side == ["probe"]
    admitted = run.audit("SELECT step_id FROM audit WHERE kind = 'probe'")
    assert admitted and admitted[0]["step_id"] == "Act    probe"
