"""The arguments of the policy lab's commands: ``label``, ``tune`` and ``shadow``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_lab_commands"]

Command = Callable[..., argparse.ArgumentParser]


def add_lab_commands(command: Command, text: Callable[[str], str]) -> None:
    """Add ``label``, ``tune`` and ``shadow`` through the parser's ``command`` helper."""
    label = command("label", "label a stop right (true) or wrong (false); recorded, audited")
    label.add_argument("transition", help="WRITER:SEQ (or SEQ) as `autoheal query labels` lists")
    label.add_argument("verdict", choices=["true", "false"])
    label.add_argument("--reason", required=True, type=text)
    label.add_argument("--actor", default=os.environ.get("USER", "operator"), type=text)
    tune = command("tune", "search policies for the one the labelled history favours")
    tune.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="FIELD=A..B|A,B,C",
        help="a policy field and the values to try (repeat for more fields)",
    )
    tune.add_argument("--policy", type=Path, help="the policy in force (default: the log's)")
    tune.add_argument("--search", choices=["grid", "random", "halving"], default="grid")
    tune.add_argument("--samples", type=int, default=50, help="candidates drawn by random")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument(
        "--weights",
        default="",
        help="objective weights, e.g. missed=1000,false=10,delay=1,blocked=0.001",
    )
    tune.add_argument("--release-seconds", type=float, default=1800.0)
    tune.add_argument("--clean-seconds", type=float, default=1800.0)
    tune.add_argument("--workers", type=int, help="processes (default: the CPUs available)")
    tune.add_argument(
        "--write",
        type=Path,
        help="the candidate policy file (default <data-dir>/tune/candidate-policy.json)",
    )
    tune.add_argument("--out", type=Path, help="also write an HTML report here")
    shadow = command("shadow", "compare a shadow policy's decisions with the live ones")
    shadow.add_argument("shadow_command", choices=["report"])
    shadow.add_argument("--weights", default="", help="objective weights, as tune takes them")
