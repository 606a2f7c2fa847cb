"""Shadow policies, as the lab names them: a policy decided beside the live one, obeyed by none.

``manager.add_sink(ShadowSink(policy, data_dir))`` attaches one in code; a policy file names
one in its ``shadow`` section. The process that decides it is part of the runtime
(:mod:`autoheal_otel.runtime.shadow`); ``autoheal shadow report`` (:mod:`.shadow_report`)
compares its decisions with the live ones.
"""

from ..runtime.shadow import ShadowSink
from ..runtime.shadow._judge import Judge

__all__ = ["Judge", "ShadowSink"]
