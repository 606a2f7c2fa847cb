"""The machine, and nothing else: pure decisions over the state it owns.

:class:`~._machine.Machine` takes every input (the executor's hooks, operator moves, upkeep,
the fleet, calibration, a restart) and its :class:`~._ledger.Ledger` holds the state and
builds the events. The rules behind it are functions over values: :mod:`._breakers`,
:mod:`._windows`, :mod:`._probe`, :mod:`._transitions` (the edge table),
:mod:`._calibration` / :mod:`._calibrator`, :mod:`._regression`, :mod:`._fleet_inputs`,
:mod:`._upkeep`, :mod:`._warm`, :mod:`._checkpoint` and :mod:`._report`.

Invariant, held by ``tests/test_layers.py``: nothing here reads a clock, touches a file or a
socket, takes a lock, starts a thread or speaks to DuckDB, SQLite, Redis or OpenTelemetry.
Time, span ids and the event list arrive as arguments, so live hooks, warm restart and replay
drive the same code.
"""
