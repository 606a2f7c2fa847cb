"""The ``retention`` section of the policy: how long things are kept and how much disk is used.

Invariants: every number is bounded (a typo such as ``keep_days: 1e9`` is an error naming the
field, like every other section); the section is global, not overridable per workflow,
because the data directory is shared by every workflow.

What each field does today: ``failure_cases_keep_days`` and ``reports_keep_days`` delete whole
files past their age (:mod:`~autoheal_otel.disk._retention`); ``max_bytes`` and ``keep_free_bytes`` are measured
against (:mod:`~autoheal_otel.disk._usage`) in ``autoheal status``, ``/status``, ``/health`` and the
``autoheal.disk.*`` metrics, and the audit log's compacted files are deleted, oldest first,
behind a kept checkpoint, past ``keep_days`` and while the budget or the floor is not met
(:mod:`~autoheal_otel.disk._audit_retention`: never what a live decision reads, nor a pinned range).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from ._sections import _Section  # the one config every policy section shares

__all__ = ["MAX_BYTES", "MAX_DAYS", "RetentionPolicy"]

#: The longest keep-days a policy may set (ten years: the clock's datetime arithmetic).
MAX_DAYS = 3650
#: The largest byte figure a policy may set (1 PiB).
MAX_BYTES = 2**50

_GB = 1024**3

Days = Annotated[int, Strict()]
Bytes = Annotated[int, Strict()]


class RetentionPolicy(_Section):
    """How long the data directory keeps things, and the disk it may use.

    On out of the box: failure cases, mini reports and the audit log's compacted files past
    their keep-days are deleted by whole files, oldest first, on a background thread (never a
    hook's), each run recorded in the audit log; the disk budget and the free-space floor
    delete more of the audit log, never what a live decision reads; when they still cannot
    be met, ``/health`` is degraded.
    """

    enabled: Annotated[bool, Strict()] = Field(
        True,
        description="Run retention on a background thread of a writing manager (off: nothing"
        " is deleted automatically; disk use is still measured and reported).",
    )
    keep_days: Days = Field(
        90,
        ge=1,
        le=MAX_DAYS,
        description="Days of decisions the audit log keeps: its compacted files wholly before"
        " the newest checkpoint at or before now - keep_days are deleted (restart and replay"
        " start from that checkpoint).",
    )
    max_bytes: Bytes = Field(
        10 * _GB,
        ge=1024 * 1024,
        le=MAX_BYTES,
        description="Disk budget of the whole data directory in bytes (audit log raw and"
        " compacted, success store, failure cases, reports, artifact versions, everything"
        " else). Past it, the audit log's oldest compacted files are deleted up to the newest"
        " checkpoint before what live decisions read; if that is not enough, /health is"
        " degraded (saying why) and the disk alert fires.",
    )
    keep_free_bytes: Bytes = Field(
        1 * _GB,
        ge=0,
        le=MAX_BYTES,
        description="Floor of free space on the data directory's device in bytes; under it,"
        " the audit log's oldest compacted files are deleted as for max_bytes, else /health"
        " is degraded and the disk alert fires (0: no floor).",
    )
    failure_cases_keep_days: Days = Field(
        30,
        ge=1,
        le=MAX_DAYS,
        description="Days a failure case (its JSON and attachments) is kept in failure_cases/.",
    )
    reports_keep_days: Days = Field(
        30,
        ge=1,
        le=MAX_DAYS,
        description="Days a mini report (its Markdown and HTML) is kept in reports/.",
    )
    check_interval_seconds: Annotated[float, Strict()] = Field(
        3600.0,
        gt=0,
        le=7 * 86_400,
        description="How often (seconds of real time) the retention thread measures the data"
        " directory and deletes what is past its keep-days.",
    )
