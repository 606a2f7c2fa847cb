"""The policy lab: what other policies would have decided on the recorded history.

- :mod:`.decoded` reads an audit log once into compact rows every candidate shares;
- :mod:`.prepass` computes once what every candidate's replay shares (what each restart
  reads back, the writers met);
- :mod:`.multi` replays many candidate policies over those rows, each exactly as
  ``autoheal what-if`` would, shared by processes;
- :mod:`.labels` infers which stops were right or wrong and records operators' labels;
- :mod:`.space`, :mod:`.objective`, :mod:`.censor`, :mod:`.tune` and :mod:`.tune_report`
  search policies on the labelled history (``autoheal tune``);
- :mod:`.shadow` runs a shadow policy beside the live one in a process of its own
  (:mod:`.shadow_process`, deciding with :mod:`.shadow_judge`), :mod:`.shadow_keeper` keeps
  the one the policy file names running, and :mod:`.shadow_report` compares the two.
"""

from __future__ import annotations

from .decoded import DecodedLog, decode
from .multi import Candidate, multi_replay

__all__ = ["Candidate", "DecodedLog", "decode", "multi_replay"]
