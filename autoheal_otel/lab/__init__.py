"""The policy lab: what other policies would have decided on the recorded history.

- :mod:`.decoded` reads an audit log once into compact rows every candidate shares;
- :mod:`.prepass` computes once what every candidate's replay shares (what each restart
  reads back, the writers met);
- :mod:`.multi` replays many candidate policies over those rows, each exactly as
  ``autoheal what-if`` would, shared by processes;
- :mod:`.labels` infers which stops were right or wrong and records operators' labels;
- :mod:`.space`, :mod:`.objective`, :mod:`.censor`, :mod:`.tune` and :mod:`.tune_report`
  search policies on the labelled history (``autoheal tune``);
- :mod:`.shadow` names a shadow policy's sink (the process that runs it beside the live one
  is the runtime's: :mod:`autoheal_otel.runtime.shadow`), and :mod:`.shadow_report`
  compares the two.
"""

from __future__ import annotations

from .decoded import DecodedLog, decode
from .multi import Candidate, multi_replay

__all__ = ["Candidate", "DecodedLog", "decode", "multi_replay"]
