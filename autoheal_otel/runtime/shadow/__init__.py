"""A shadow policy, decided beside the live one in a process of its own; no gate obeys it.

:class:`ShadowSink` (:mod:`._sink`) names the live writer to the shadow process
(:mod:`._process`, ``python -m autoheal_otel.runtime.shadow._process``), which follows that
writer's audit segments and decides every input again with :mod:`._judge`;
:class:`ShadowKeeper` (:mod:`._keeper`) keeps the one the policy's ``shadow`` section names
running across hot reloads. The public names are also in :mod:`autoheal_otel.lab.shadow`.
"""

from ._keeper import ShadowKeeper
from ._sink import ShadowSink

__all__ = ["ShadowKeeper", "ShadowSink"]
