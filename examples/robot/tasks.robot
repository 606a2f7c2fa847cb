*** Settings ***
Documentation       Submit invoices on a local web application while it loses its Submit
...                 button, gets it back, then starts failing every submission. Run with the
...                 auto-heal listener, the workflow walks RUNNING → DEGRADED → RUNNING →
...                 QUARANTINED, and the last task is skipped with the reason.
...
...                 robot --rpa --listener autoheal_otel.robot.AutoHealListener:policy=policy.json:data_dir=data:workflow=tag
...                 --variable URL:http://127.0.0.1:8270 tasks.robot
Library             SeleniumLibrary
Library             autoheal_otel.robot.AutoHealLibrary
Library             AppControl.py
Suite Setup         Open Headless Chromium
Suite Teardown      Close All Browsers
Test Tags           wf-invoice

*** Variables ***
${URL}              http://127.0.0.1:8270
${PROFILE}          ${TEMPDIR}${/}autoheal-robot-profile
${CHROMIUM}         /usr/bin/chromium
${CHROMEDRIVER}     /usr/bin/chromedriver

*** Tasks ***
Invoice 01 (application healthy)
    [Setup]    Prepare Application    ok
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 02 (application healthy)
    [Setup]    Prepare Application    ok
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 03 (Submit button gone)
    [Setup]    Prepare Application    missing
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 04 (Submit button gone)
    [Setup]    Prepare Application    missing
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 05 (Submit button gone: DEGRADED)
    [Setup]    Prepare Application    missing
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 06 (button back, verified)
    [Setup]    Prepare Application    ok
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 07 (button back: RUNNING again)
    [Setup]    Prepare Application    ok
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 08 (submissions fail)
    [Setup]    Prepare Application    broken
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 09 (submissions fail: QUARANTINED)
    [Setup]    Prepare Application    broken
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

Invoice 10 (skipped: quarantined)
    [Setup]    Prepare Application    ok
    Go To    ${URL}
    Title Should Be    Invoices
    Click Button    id:submit
    Element Text Should Be    id:status    Saved

*** Keywords ***
Prepare Application
    [Documentation]    Setup (never gated): set the application's mode. (DEGRADED's delay
    ...    needs nothing here: the listener waits it once before each gated step.)
    [Arguments]    ${mode}
    Set Application Mode    ${URL}    ${mode}

Open Headless Chromium
    # One profile folder per robot process: pabot's processes must not share one Chromium.
    ${pid}=    Evaluate    os.getpid()    modules=os
    ${profile}=    Set Variable    ${PROFILE}${/}${pid}
    ${options}=    Catenate    SEPARATOR=;
    ...    binary_location="${CHROMIUM}"
    ...    add_argument("--headless")
    ...    add_argument("--no-sandbox")
    ...    add_argument("--disable-gpu")
    ...    add_argument("--disable-dev-shm-usage")
    ...    add_argument("--disable-background-networking")
    ...    add_argument("--disable-component-update")
    ...    add_argument("--disable-sync")
    ...    add_argument("--no-first-run")
    ...    add_argument("--user-data-dir=${profile}")
    Open Browser    about:blank    chrome    options=${options}    service=executable_path="${CHROMEDRIVER}"
