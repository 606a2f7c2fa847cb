"""The Robot Framework listener, run in-process on suites of small Python keywords (no browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import robot

from autoheal_otel import InvalidInputError, Outcome, PolicyError
from autoheal_otel.robot import BLOCKED_TAG, ListenerConfig, OutcomeMapping
from tests.robot_harness import body_keywords, listener, run_suite

QUARANTINE_AT_4 = {"breakers": {"workflow": {"failure_threshold": 4}}}

# Four target-not-found failures inside TRY quarantine the workflow mid-task: the next step
# is refused, the rest of the task must not run, its teardown must.
BLOCKED_MIDWAY = """*** Tasks ***
Blocked Midway
    Act    before
    FOR    ${i}    IN RANGE    4
        TRY
            Find Target    id:gone
        EXCEPT    *    type=glob
            Act    recovered ${i}
        END
    END
    Act    refused
    Act    never
    [Teardown]    Act    teardown

Second Task Of The Workflow
    [Tags]    wf-shared
    Act    second
"""


def _policy(tmp_path: Path, policy: dict[str, object]) -> str:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("on_block", "keyword_status", "task_status"),
    [("FAIL", "FAIL", "FAIL"), ("SKIP", "SKIP", "SKIP"), ("NOT_RUN", "NOT RUN", "PASS")],
    ids=["fail", "skip", "not-run"],
)
def test_refused_step_does_not_run_and_the_rest_of_the_task_is_not_run(
    tmp_path: Path, on_block: str, keyword_status: str, task_status: str
) -> None:
    """A refused keyword's body never runs, later steps are NOT RUN, the teardown runs."""
    policy = _policy(tmp_path, QUARANTINE_AT_4)
    value = listener(tmp_path / "data", policy=policy, on_block=on_block)
    run = run_suite(tmp_path, BLOCKED_MIDWAY, listener_value=value)
    assert run.side == ["before", "recovered 0", "recovered 1", "recovered 2", "teardown", "second"]
    test = run.tests()["Blocked Midway"]
    assert test.status == task_status
    assert "autoheal blocked: quarantined since" in test.message
    calls = [(k.name, k.args, k.status) for k in body_keywords(test)]
    refused = calls.index(("Act", ("recovered ${i}",), keyword_status))
    assert refused == 8  # 1 + 3 × (Find Target, Act) + the 4th Find Target
    later = [status for _, _, status in calls[refused + 1 :]]
    assert later == ["NOT RUN", "NOT RUN"]  # by RF after a FAIL or SKIP, by the listener else
    assert test.teardown.status == "PASS"
    blocked = [k for k in body_keywords(test) if k.message.startswith("autoheal blocked:")]
    assert blocked[0].status == keyword_status


def test_task_of_a_quarantined_workflow_is_skipped_with_the_reason(tmp_path: Path) -> None:
    """Once a workflow is quarantined its next task is skipped whole: no setup, no step."""
    policy = _policy(tmp_path, {"breakers": {"workflow": {"failure_threshold": 2}}})
    body = """*** Tasks ***
First
    [Tags]    wf-invoice
    Crash
Second
    [Tags]    wf-invoice
    Crash
Third
    [Tags]    wf-invoice
    [Setup]    Act    setup
    Act    third
Other Workflow
    [Tags]    wf-payroll
    Act    other
"""
    value = listener(tmp_path / "data", policy=policy, workflow="tag")
    run = run_suite(tmp_path, body, listener_value=value)
    third = run.tests()["Third"]
    assert third.status == "SKIP"
    assert re.match(
        r"autoheal blocked: quarantined since \S+: workflow.failure_window", third.message
    )
    assert BLOCKED_TAG in third.tags and "robot:skip" not in third.tags
    assert run.side == ["other"]
    refused = run.audit("SELECT workflow_id, step_id FROM audit WHERE kind='gate' AND NOT allowed")
    assert refused == [{"workflow_id": "invoice", "step_id": "Act    third"}]


def test_output_xml_counts_equal_the_audit_log(tmp_path: Path) -> None:
    """Steps run, failures by kind and refusals in output.xml equal the audit log's (DuckDB)."""
    policy = _policy(tmp_path, QUARANTINE_AT_4)
    body = (
        BLOCKED_MIDWAY
        + """
Mixed
    Act    a
    Value Should Be    1    1
    IF    True
        Act    in if
    END
    Value Should Be    1    2
"""
    )
    run = run_suite(tmp_path, body, listener_value=listener(tmp_path / "data", policy=policy))
    ran = [k for t in run.result.suite.all_tests for k in body_keywords(t)]
    executed = [k for k in ran if k.status in ("PASS", "FAIL") and "autoheal" not in k.message]
    refused = [k for k in ran if k.message.startswith("autoheal blocked")]
    counts = run.audit(
        "SELECT count(*) FILTER (kind='result') AS results,"
        " count(*) FILTER (kind='result' AND outcome<>'success') AS failures,"
        " count(*) FILTER (kind='gate' AND NOT allowed) AS refused FROM audit"
    )[0]
    assert counts["results"] == len(executed) == 13
    assert counts["failures"] == sum(k.status == "FAIL" for k in executed) == 5
    # one refused gate per blocked task: later steps of that task are not asked again
    assert counts["refused"] == len(refused) == 1


@pytest.mark.parametrize(
    ("keywords", "outcome"),
    [
        ("Act    x\n    Find Target    id:x", "target_not_found"),
        ("Act    x\n    Value Should Be    1    2", "postcondition_failed"),
        ("Value Should Be    1    2", "error"),
        ("Act    x\n    Checked Step", "postcondition_failed"),
        ("Act    x\n    Crash", "error"),
        ("Act    x\n    Slow Step", "watchdog_timeout"),
        ("[Timeout]    0.3 s\n    Act    x\n    Hang    5", "watchdog_timeout"),
        ("Act    x\n    Show Captcha", "watchdog_timeout"),
        ("Act    x\n    Crash    session expired", "target_not_found"),
    ],
    ids=[
        "element-not-found",
        "assertion-after-action",
        "assertion-first",
        "user-keyword-asserting",
        "other-error",
        "keyword-timeout",
        "task-timeout",
        "mapping-exception-name",
        "mapping-message-pattern",
    ],
)
def test_failures_map_to_outcomes_as_the_table_says(
    tmp_path: Path, keywords: str, outcome: str
) -> None:
    """Each kind of failure reaches on_step_result with the outcome of the mapping table."""
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps(
            {
                "rules": [
                    {"exception": "CaptchaShown", "outcome": "watchdog_timeout"},
                    {"message": "(?i)session expired", "outcome": "target_not_found"},
                ]
            }
        ),
        encoding="utf-8",
    )
    body = f"""*** Tasks ***
Task
    {keywords}

*** Keywords ***
Checked Step
    Act    inner
    Value Should Be    saved    failed

Slow Step
    [Timeout]    0.2 s
    Hang    5
"""
    value = listener(tmp_path / "data", mapping=str(mapping))
    run = run_suite(tmp_path, body, listener_value=value)
    rows = run.audit("SELECT outcome FROM audit WHERE kind='result' ORDER BY seq")
    assert rows[-1]["outcome"] == outcome


def test_the_default_table_covers_selenium_and_browser_messages() -> None:
    """SeleniumLibrary's and the Browser library's not-found messages are target_not_found."""
    mapping = OutcomeMapping()
    target = [
        ("Click Button", "Button with locator 'id:x' not found.", {"ElementNotFound"}),
        ("Wait Until Element Is Visible", "Element 'id:x' not visible after 5 seconds.", set()),
        ("Wait Until Page Contains Element", "Element 'id:x' did not appear in 5 seconds.", set()),
        (
            "Click",
            'TimeoutError: locator.click: Timeout 100ms exceeded.\n== logs ==\nwaiting for locator("#x")',
            set(),
        ),
        (
            "Click Element",
            "ElementNotInteractableException: element not interactable",
            {"ElementNotInteractableException"},
        ),
    ]
    for keyword, message, names in target:
        assert mapping.classify(keyword, message, names, True) is Outcome.TARGET_NOT_FOUND
    assert (
        mapping.classify("Log", "Test timeout 1 second exceeded.", set(), True)
        is Outcome.WATCHDOG_TIMEOUT
    )
    assert (
        mapping.classify(
            "Title Should Be", "Title should have been 'a' but was 'b'.", {"AssertionError"}, True
        )
        is Outcome.POSTCONDITION_FAILED
    )
    assert (
        OutcomeMapping(use_defaults=False).classify("Click", "x not found", set(), True)
        is Outcome.ERROR
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"rules": [{"exception": "X", "outcome": "success"}]}, "mapping.rules[0].outcome"),
        ({"rules": [{"message": "(", "outcome": "error"}]}, "mapping.rules[0].message"),
        ({"rules": [{"outcome": "error"}]}, "mapping.rules[0]"),
        ({"rules": [{"exception": "X", "outcome": "error", "kw": "y"}]}, "mapping.rules[0].kw"),
        ({"rule": []}, "mapping.rule"),
        ({"defaults": "yes"}, "mapping.defaults"),
    ],
    ids=[
        "success-outcome",
        "bad-regex",
        "no-condition",
        "unknown-rule-key",
        "unknown-key",
        "defaults-type",
    ],
)
def test_bad_mapping_file_names_the_field(data: object, field: str) -> None:
    """A bad mapping names the field and the value."""
    with pytest.raises(InvalidInputError) as info:
        OutcomeMapping.from_dict(data)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        (("data",), {}, "listener argument must be name=value"),
        ((), {"polcy": "p.json"}, "listener argument is not known (known: policy, data_dir"),
        ((), {"workflow": "job"}, "workflow must be test, suite or tag, but was 'job'"),
        ((), {"on_block": "STOP"}, "on_block must be FAIL, SKIP or NOT_RUN, but was 'STOP'"),
        ((), {"step": "path"}, "step must be call or keyword, but was 'path'"),
        ((), {"data_dir": ""}, "data_dir must not be empty"),
        ((), {"mapping": "/nonexistent/m.json"}, "mapping must be a readable file"),
    ],
    ids=["positional", "unknown", "workflow", "on-block", "step", "empty", "mapping-missing"],
)
def test_bad_listener_arguments_are_named(
    args: tuple[str, ...], kwargs: dict[str, str], needle: str
) -> None:
    """Every bad listener argument gives an error naming the argument and its value."""
    with pytest.raises(InvalidInputError, match=re.escape(needle)):
        ListenerConfig.from_args(args, kwargs)


def test_bad_policy_argument_names_the_policy_field(tmp_path: Path) -> None:
    """A policy file with a bad field fails at start, naming the field."""
    policy = _policy(tmp_path, {"breakers": {"workflow": {"failure_threshold": 0}}})
    with pytest.raises(PolicyError) as info:
        ListenerConfig.from_args((), {"policy": policy})
    assert info.value.field == "breakers.workflow.failure_threshold"


def test_misconfigured_listener_fails_every_task_with_one_error(tmp_path: Path) -> None:
    """A typo in the listener's arguments stops the run (one error line), never runs it ungated."""
    value = (
        "autoheal_otel.robot.AutoHealListener;data_dir=" + str(tmp_path / "data") + ";on_blok=SKIP"
    )
    body = "*** Tasks ***\nOne\n    Act    one\nTwo\n    Act    two\n"
    run = run_suite(tmp_path, body, listener_value=value)
    message = "autoheal listener: listener argument is not known (known: "
    assert [t.status for t in run.tests().values()] == ["FAIL", "FAIL"]
    assert all(t.message.startswith(message) for t in run.tests().values())
    assert run.stderr.count("[ ERROR ]") == 1 and "'on_blok'" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.side == [] and not (tmp_path / "data").exists()


def test_dry_run_is_never_gated(tmp_path: Path) -> None:
    """RF's dry run of a quarantined workflow's suite neither asks the gate nor writes."""
    policy = _policy(tmp_path, {"breakers": {"workflow": {"failure_threshold": 1}}})
    body = "*** Tasks ***\nOne\n    Crash\nTwo\n    Act    two\n"
    value = listener(tmp_path / "data", policy=policy, workflow="suite")
    run_suite(tmp_path, body, listener_value=value)
    before = sorted(p.name for p in (tmp_path / "data" / "audit").iterdir())
    dry = run_suite(tmp_path, body, listener_value=value, dryrun=True)
    assert [t.status for t in dry.tests().values()] == ["PASS", "PASS"]
    assert sorted(p.name for p in (tmp_path / "data" / "audit").iterdir()) == before


def test_steps_are_body_keywords_never_setup_teardown_or_internals(tmp_path: Path) -> None:
    """Keywords of the body (through FOR, IF, TRY, GROUP) are steps; others are not."""
    body = """*** Tasks ***
Task
    [Setup]    Act    setup
    Act    one
    Composite
    FOR    ${i}    IN RANGE    2
        Act    loop
    END
    IF    True
        Act    branch
    END
    TRY
        Act    try
    FINALLY
        Act    finally
    END
    [Teardown]    Act    teardown

*** Keywords ***
Composite
    Act    nested
"""
    run = run_suite(tmp_path, body)
    steps = run.audit("SELECT step_id FROM audit WHERE kind='result' ORDER BY seq")
    assert [r["step_id"] for r in steps] == [
        "Act    one",
        "Composite",
        "Act    loop",
        "Act    loop",
        "Act    branch",
        "Act    try",
        "Act    finally",
    ]
    assert run.side[0] == "setup" and run.side[-1] == "teardown"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "Suite.Task"),
        ({"workflow": "suite"}, "Suite"),
        ({"workflow": "tag"}, "invoice"),
        ({"workflow": "tag", "tag_prefix": "job-"}, "Suite.Task"),
    ],
    ids=["test-full-name", "suite", "tag", "tag-missing-falls-back"],
)
def test_workflow_is_the_task_the_suite_or_a_tag(
    tmp_path: Path, args: dict[str, str], expected: str
) -> None:
    """The workflow id follows the ``workflow`` argument."""
    body = "*** Tasks ***\nTask\n    [Tags]    wf-invoice\n    Act    x\n"
    run = run_suite(tmp_path, body, listener_value=listener(tmp_path / "data", **args))
    rows = run.audit("SELECT DISTINCT workflow_id FROM audit WHERE kind='result'")
    assert rows == [{"workflow_id": expected}]


def test_confidence_validation_and_settings_reach_the_robot(tmp_path: Path) -> None:
    """Match scores land in the step's result; a verified action is validated; DEGRADED settings reach the robot."""
    body = """*** Tasks ***
Degrade
    FOR    ${i}    IN RANGE    3
        TRY
            Find Target    id:x
        EXCEPT    *    type=glob
            No Operation
        END
    END
    Act    click
    Report Match Confidence    0.91    0.52    method=faiss
    Value Should Be    saved    saved
    ${settings}=    Get Autoheal Settings
    Act    ${settings}[state] ${settings}[min_confidence] ${settings}[step_delay]
"""
    run = run_suite(tmp_path, body)
    rows = run.audit(
        "SELECT step_id, confidence, second_best, validated, details FROM audit"
        " WHERE kind='result' AND step_id LIKE 'Act    click%'"
    )
    assert len(rows) == 1
    assert (rows[0]["confidence"], rows[0]["second_best"], rows[0]["validated"]) == (
        0.91,
        0.52,
        True,
    )
    assert "faiss" in str(rows[0]["details"])
    assert run.side[-1] == "degraded 0.85 0.5"


def test_listener_module_loads_through_robot_command_line_syntax(tmp_path: Path) -> None:
    """The one option of the README (colon-separated) is accepted by the robot command line."""
    suite = tmp_path / "s.robot"
    suite.write_text("*** Tasks ***\nT\n    No Operation\n", encoding="utf-8")
    rc = robot.run_cli(
        [
            "--listener",
            f"autoheal_otel.robot.AutoHealListener:data_dir={tmp_path / 'data'}:workflow=suite",
            "--output", str(tmp_path / "o.xml"), "--log", "NONE", "--report", "NONE",
            "--console", "none", str(suite),
        ],
        exit=False,
    )  # fmt: skip
    assert rc == 0
    assert any((tmp_path / "data" / "audit").glob("audit-*.jsonl"))


def test_readme_mapping_example_is_a_valid_mapping() -> None:
    """The mapping file shown in the README loads and its rules apply."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```json\n(.*?)```", readme, re.S) if '"rules"' in b)
    mapping = OutcomeMapping.from_dict(json.loads(block))
    assert (
        mapping.classify("Click Image", "No match above 0.8", set(), True)
        is Outcome.TARGET_NOT_FOUND
    )
    assert mapping.classify("Verify Total", "12 != 13", set(), True) is Outcome.POSTCONDITION_FAILED


def test_robot_public_api_is_pinned() -> None:
    """The robot subpackage exports exactly its documented names."""
    import autoheal_otel.robot as package

    assert package.__all__ == [
        "ARGUMENTS",
        "BLOCKED_TAG",
        "DEFAULT_RULES",
        "AutoHealLibrary",
        "AutoHealListener",
        "ListenerConfig",
        "OutcomeMapping",
        "OutcomeRule",
    ]


def test_settings_keyword_works_without_the_listener(tmp_path: Path) -> None:
    """A suite run without the listener still gets the default RUNNING settings."""
    body = """*** Tasks ***
Task
    ${settings}=    Get Autoheal Settings
    Act    ${settings}[state] ${settings}[min_confidence] ${settings}[step_delay]
    Report Match Confidence    0.9    0.1
"""
    run = run_suite(tmp_path, body, listener_value="")
    assert run.tests()["Task"].status == "PASS"
    assert run.side == ["running 0.75 0.0"]
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(
    tuple(int(p) for p in robot.version.VERSION.split(".")[:2]) < (7, 2),
    reason="GROUP blocks exist from Robot Framework 7.2",
)
def test_keywords_inside_a_group_are_steps(tmp_path: Path) -> None:
    """A keyword inside a GROUP block is a step like one in the body."""
    body = """*** Tasks ***
Task
    GROUP    Fill the form
        Act    in group
    END
"""
    run = run_suite(tmp_path, body)
    steps = run.audit("SELECT step_id FROM audit WHERE kind='result'")
    assert steps == [{"step_id": "Act    in group"}]


def test_a_vision_library_reports_scores_from_python(tmp_path: Path) -> None:
    """Scores a Python keyword reports through AutoHealLibrary land in its own step's result."""
    body = "*** Tasks ***\nTask\n    Click Image    0.42    0.40\n    Act    after\n"
    run = run_suite(tmp_path, body)
    rows = run.audit(
        "SELECT step_id, confidence, second_best, signals FROM audit WHERE kind='result' ORDER BY seq"
    )
    assert (rows[0]["step_id"], rows[0]["confidence"], rows[0]["second_best"]) == (
        "Click Image    0.42    0.40",
        0.42,
        0.40,
    )
    assert "low_confidence" in rows[0]["signals"]  # 0.42 is below the 0.70 floor
    assert rows[1]["confidence"] is None


def test_autoheal_keywords_are_never_steps_whatever_the_library_is_called(tmp_path: Path) -> None:
    """AutoHealLibrary imported under another name still gives no steps of its own."""
    body = """*** Settings ***
Library    autoheal_otel.robot.AutoHealLibrary    AS    Heal

*** Tasks ***
Task
    ${settings}=    Heal.Get Autoheal Settings
    Act    x
    Heal.Report Match Confidence    0.9    0.2
"""
    run = run_suite(tmp_path, body)
    rows = run.audit("SELECT step_id, confidence FROM audit WHERE kind='result'")
    assert rows == [{"step_id": "Act    x", "confidence": 0.9}]


def test_a_deeply_nested_policy_fails_every_task_never_runs_it_ungated(tmp_path: Path) -> None:
    """Regression: a policy nested past Python's recursion limit made the listener fail to
    load and the tasks ran ungated and PASSED; now it is a PolicyError naming the file, and
    every task fails with it."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"workflows": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(PolicyError, match="nested too deeply"):
        ListenerConfig.from_args((), {"policy": str(deep)})
    body = "*** Tasks ***\nOne\n    Act    one\nTwo\n    Act    two\n"
    run = run_suite(tmp_path, body, listener_value=listener(tmp_path / "data", policy=str(deep)))
    assert [t.status for t in run.tests().values()] == ["FAIL", "FAIL"]
    assert all("nested too deeply" in t.message for t in run.tests().values())
    assert run.side == []  # no step ran


def test_a_hot_reload_of_a_deeply_nested_policy_keeps_the_last_good_one(tmp_path: Path) -> None:
    """Regression: a hot reload of such a file made the next gate raise into the executor."""
    from autoheal_otel import AutoHealManager
    from autoheal_otel.testing import FakeClock

    path = Path(_policy(tmp_path, {"breakers": {"workflow": {"failure_threshold": 3}}}))
    clock = FakeClock()
    with AutoHealManager(policy=path, data_dir=tmp_path / "d", clock=clock) as m:
        version = m.policy.version
        path.write_text('{"workflows": ' + "[" * 100_000 + "]" * 100_000 + "}")
        clock.advance(10)
        assert m.should_execute_step("w", "s")[0]
        assert m.policy.version == version
        error = m.last_policy_error
        assert error is not None and "nested too deeply" in str(error) and str(path) in str(error)


QUEUE_LOOP = """*** Tasks ***
Queue
    FOR    ${i}    IN RANGE    10
        TRY
            Find Target    item ${i}
        EXCEPT    *    type=glob
            CONTINUE
        END
    END
"""


@pytest.mark.parametrize(
    ("on_block", "task_status"),
    [("FAIL", "FAIL"), ("SKIP", "SKIP"), ("NOT_RUN", "PASS")],
    ids=["fail", "skip", "not-run"],
)
def test_a_refusal_caught_by_the_queue_loop_still_ends_the_task(
    tmp_path: Path, on_block: str, task_status: str
) -> None:
    """Regression: `FOR … TRY  Step  EXCEPT  CONTINUE` caught the refusals of items 6-10 and
    the task came out PASS; now it ends FAIL (SKIP with on_block=SKIP; NOT_RUN opts out)."""
    policy = _policy(tmp_path, {"breakers": {"workflow": {"failure_threshold": 5}}})
    value = listener(tmp_path / "data", policy=policy, on_block=on_block)
    run = run_suite(tmp_path, QUEUE_LOOP, listener_value=value)
    test = run.tests()["Queue"]
    assert test.status == task_status
    assert "autoheal blocked: quarantined since" in test.message
    finds = [k for k in body_keywords(test) if k.name == "Find Target"]
    refused = [k for k in finds if k.message.startswith("autoheal blocked:")]
    # Items 1-5 ran (and failed), every later one was refused (a SKIP ends the loop at once).
    assert len(finds) - len(refused) == 5 and len(refused) == (1 if on_block == "SKIP" else 5)


@pytest.mark.parametrize("version", ["6.1.1", "7.0.1"])
def test_a_robot_framework_that_cannot_gate_fails_every_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    """Regression: under RF 6.1.1 every task ran ungated (only session records in the log),
    and 7.0.1 said nothing; now the listener refuses: every task fails with the reason."""
    import robot.version

    from autoheal_otel.robot._support import unsupported_version

    assert unsupported_version("7.1.1") is None and unsupported_version("7.5") is None
    monkeypatch.setattr(robot.version, "VERSION", version)
    body = "*** Tasks ***\nOne\n    [Setup]    Act    setup\n    Act    one\nTwo\n    Act    two\n"
    run = run_suite(tmp_path, body)
    assert [t.status for t in run.tests().values()] == ["FAIL", "FAIL"]
    assert all(
        f"Robot Framework {version} cannot be gated (supported: 7.1 or newer)" in t.message
        for t in run.tests().values()
    )
    assert run.side == []  # no setup, no step ran


def test_a_data_dir_error_fails_every_task_with_one_error_line(tmp_path: Path) -> None:
    """Regression: a data_dir that cannot be used failed the tasks but printed no [ ERROR ]
    line (argument errors did); now it says it once, on the console too."""
    bad = tmp_path / "a-file"
    bad.write_text("not a directory")
    body = "*** Tasks ***\nOne\n    Act    one\nTwo\n    Act    two\n"
    run = run_suite(tmp_path, body, listener_value=listener(bad))
    assert [t.status for t in run.tests().values()] == ["FAIL", "FAIL"]
    assert all("data_dir" in t.message for t in run.tests().values())
    assert run.stderr.count("[ ERROR ]") == 1 and "data_dir" in run.stderr
    assert run.side == []


def test_a_failed_suite_setup_is_reported_as_such_not_as_a_block(tmp_path: Path) -> None:
    """Regression: with the workflow quarantined too, a failed suite setup was reported as
    "autoheal blocked…"; RF's own "Parent suite setup failed" is the truth."""
    policy = _policy(tmp_path, {"breakers": {"workflow": {"failure_threshold": 1}}})
    value = listener(tmp_path / "data", policy=policy, workflow="suite")
    run_suite(tmp_path, "*** Tasks ***\nOne\n    Crash\n", listener_value=value)  # quarantines
    body = "*** Settings ***\nSuite Setup    Crash    setup broke\n\n*** Tasks ***\nTwo\n    Act    two\n"
    run = run_suite(tmp_path, body, listener_value=value)
    test = run.tests()["Two"]
    assert test.status == "FAIL" and test.message.startswith("Parent suite setup failed")
    assert "autoheal blocked" not in test.message


def test_a_misspelled_keyword_is_a_recorded_failure(tmp_path: Path) -> None:
    """Regression: a step RF cannot run (a typo in its name) failed the task but was never
    recorded; now it is gated and recorded like any failing step."""
    body = "*** Tasks ***\nOne\n    Act    one\n    Clik Submitt    id:x\n"
    run = run_suite(tmp_path, body)
    assert run.tests()["One"].status == "FAIL"
    rows = run.audit("SELECT step_id, outcome FROM audit WHERE kind = 'result' ORDER BY seq")
    assert [r["step_id"].split("    ")[0] for r in rows] == ["Act", "Clik Submitt"]
    assert rows[-1]["outcome"] != "success"


def test_silent_fallbacks_say_so(tmp_path: Path) -> None:
    """workflow=tag on a task without the tag, and Get Autoheal Settings without a listener,
    each print a warning instead of quietly falling back."""
    body = "*** Tasks ***\nUntagged\n    Act    one\n    Act    two\n"
    run = run_suite(tmp_path, body, listener_value=listener(tmp_path / "data", workflow="tag"))
    assert run.tests()["Untagged"].status == "PASS"
    assert run.stderr.count("has no 'wf-<workflow>' tag") == 1
    body = "*** Tasks ***\nNo Listener\n    ${s}=    Get Autoheal Settings\n"
    (tmp_path / "bare").mkdir()
    bare = run_suite(tmp_path / "bare", body, listener_value="")
    assert bare.tests()["No Listener"].status == "PASS"
    assert "no auto-heal listener is active" in bare.stderr
