"""The vocabulary every layer shares; it imports nothing of the package but ``semconv``.

:mod:`._models` (results, states, settings), :mod:`._events` (the decision event and its
audit line), :mod:`._errors`, :mod:`._clock` (time, injected), :mod:`._fleet_event` (one
fleet decision as a value) and :mod:`._fs` (no-follow, atomic file access that stays inside
the data directory). See ``docs/architecture.md`` for the layers.
"""
