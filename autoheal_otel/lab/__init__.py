"""The policy lab: what other policies would have decided on the recorded history.

- :mod:`.decoded` reads an audit log once into compact rows every candidate shares;
- :mod:`.multi` replays many candidate policies over those rows, each exactly as
  ``autoheal what-if`` would, split across processes;
- :mod:`.labels` infers which stops were right or wrong and records operators' labels;
- :mod:`.space`, :mod:`.objective`, :mod:`.censor`, :mod:`.tune` and :mod:`.tune_report`
  search policies on the labelled history (``autoheal tune``);
- :mod:`.shadow` and :mod:`.shadow_report` run a shadow policy beside the live one.
"""

from __future__ import annotations

from .decoded import DecodedLog, decode
from .multi import Candidate, multi_replay

__all__ = ["Candidate", "DecodedLog", "decode", "multi_replay"]
