"""The policy lab: what other policies would have decided on the recorded history.

- :mod:`.decoded` reads an audit log once into compact rows every candidate shares;
- :mod:`.multi` replays many candidate policies over those rows, each exactly as
  ``autoheal what-if`` would, split across processes.
"""

from __future__ import annotations

from .decoded import DecodedLog, decode
from .multi import Candidate, multi_replay

__all__ = ["Candidate", "DecodedLog", "decode", "multi_replay"]
