"""The data directory's disk: what each part uses, the budget, and retention.

:mod:`._usage` measures each part against ``retention.max_bytes`` and the free-space floor;
:mod:`._metrics` publishes it; :mod:`._retention` deletes what the policy lets go, on a
thread of its own, through the journalled sweep of :mod:`._sweep`; each durable step of a run
is a crash point (:mod:`autoheal_otel.base._crash`), where a test ends the process to prove
recovery.
"""
