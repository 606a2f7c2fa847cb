"""The operator's read-only endpoint: ``/health``, ``/status`` and ``/metrics`` (``autoheal
serve``).

``AutoHealServer(manager).start()`` serves a manager embedded in an executor;
``AutoHealServer(LiveView(data_dir).start())`` serves a data directory from a process of your
own. Parts: :mod:`._endpoint` (the event loop and its workers), :mod:`._http` (what a request
is answered, byte for byte), :mod:`._live_view` (the view rebuilt from the audit log),
:mod:`._web_config` (TLS and basic auth).
"""

from ._endpoint import AutoHealServer, LiveView, StatusSource, prometheus_meter_provider

__all__ = ["AutoHealServer", "LiveView", "StatusSource", "prometheus_meter_provider"]
