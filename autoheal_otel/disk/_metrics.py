"""The disk gauges: the data directory's bytes by part, the budget, free space and its floor.

Pull-based observable gauges (nothing is measured per decision): each scrape reads the last
measurement (:class:`~._usage.DiskMeter`, or a status report's ``disk``); before the first
one, the gauges report nothing rather than zeros that would look like an empty directory.
Names are :mod:`.semconv`'s; the ``autoheal.disk.part`` label takes the values of
:data:`~._usage.PARTS` only, so the label set stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import semconv as sc
from ._usage import DiskUsage

__all__ = ["register_disk_gauges"]

#: What a gauge reads: a measurement, a report's ``disk`` dict, or None (not measured yet).
Source = Callable[[], DiskUsage | dict[str, Any] | None]


def _figures(source: Source) -> dict[str, Any] | None:
    found = source()
    if isinstance(found, DiskUsage):
        return found.to_dict()
    return found


def register_disk_gauges(meter: Any, source: Source) -> None:
    """Register the four disk gauges on ``meter``, reading ``source`` at each collection."""
    from opentelemetry.metrics import CallbackOptions, Observation

    def usage(_options: CallbackOptions) -> Iterable[Observation]:
        disk = _figures(source)
        if disk is None:
            return []
        return [Observation(n, {sc.ATTR_DISK_PART: part}) for part, n in disk["parts"].items()]

    def figure(key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            disk = _figures(source)
            if disk is None or disk.get(key) is None:
                return []
            return [Observation(disk[key])]

        return observe

    meter.create_observable_gauge(
        sc.METRIC_DISK_USAGE, [usage], "By", "Bytes the data directory uses, by part."
    )
    meter.create_observable_gauge(
        sc.METRIC_DISK_BUDGET,
        [figure("max_bytes")],
        "By",
        "The data directory's disk budget (retention.max_bytes).",
    )
    meter.create_observable_gauge(
        sc.METRIC_DISK_FREE,
        [figure("free_bytes")],
        "By",
        "Free bytes on the data directory's device.",
    )
    meter.create_observable_gauge(
        sc.METRIC_DISK_FREE_FLOOR,
        [figure("keep_free_bytes")],
        "By",
        "The floor of free space on the device (retention.keep_free_bytes).",
    )
