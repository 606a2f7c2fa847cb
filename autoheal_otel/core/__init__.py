"""The machine, and nothing else: pure decisions over the state it owns.

:class:`~._machine.Machine` takes every input as a method (the executor's hooks and the
operator's in :mod:`._machine`, the others from :mod:`._inputs`: upkeep, the fleet,
calibration, checkpoints, a restart, other writers' moves and decisions, labels) and its
:class:`~._ledger.Ledger` holds the state (the scopes' in :mod:`._scopes`) and builds the
events. The rules behind it are functions over values: :mod:`._breakers`, :mod:`._windows`,
:mod:`._probe`, :mod:`._versions`, :mod:`._transitions` (the edge table),
:mod:`._calibration` / :mod:`._calibrator`, :mod:`._regression`, :mod:`._fleet_inputs`,
:mod:`._upkeep`, :mod:`._moves`, :mod:`._facts`, :mod:`._records`, :mod:`._warm`,
:mod:`._checkpoint` and :mod:`._report`.

Invariant, held by ``tests/test_layers.py``: nothing here reads a clock, touches a file or a
socket, takes a lock, starts a thread or speaks to DuckDB, SQLite, Redis or OpenTelemetry.
Time, span ids and the event list arrive as arguments, so live hooks, warm restart and replay
drive the same code.
"""
