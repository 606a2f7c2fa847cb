"""The policy: what the machine is configured with, validated field by field, and its file.

:mod:`._config` holds :class:`~autoheal_otel.PolicyConfig` (loading, per-workflow overrides,
the schema); :mod:`._sections` the breaker, degraded-mode, recovery, versioning and audit
sections; :mod:`._calibration`, :mod:`._retention` and :mod:`._fleet` their own sections.
A policy is data: nothing here decides or keeps state. See ``docs/architecture.md``.
"""
