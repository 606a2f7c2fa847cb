"""The host of the machine: the manager facade and what runs around the pure core.

- :mod:`._manager`: :class:`~autoheal_otel.AutoHealManager`, the facade users call (its
  read-only parts and background jobs on demand: :mod:`._parts_view`);
- :mod:`._build`: builds a manager's parts in order from its arguments;
- :mod:`._runner`: the one input path (span, clocks, lock, closed check, publishing);
- :mod:`._data_dir`: a data directory's sinks and warm restart, and the telemetry;
- :mod:`._publisher`: hands events to the sinks in order, containing their failures;
- threads that never run on a hook: :mod:`._polling`, :mod:`._compactor`,
  :mod:`._checkpointer`, :mod:`._follow`;
- processes sharing one data directory: :mod:`._shared` (decision turns), :mod:`._tail`,
  :mod:`._delivery`; the fleet link's start: :mod:`._fleet_start`;
- around the executor: :mod:`._step` (the step wrapper), :mod:`._artifacts` (snapshots and
  restores), :mod:`._policy_watch` (hot reload).
"""
