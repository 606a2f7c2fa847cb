"""Keywords for the listener's tests: each records that it ran, or fails in a chosen way."""

from __future__ import annotations

from pathlib import Path

from SeleniumLibrary.errors import ElementNotFound


class CaptchaShown(Exception):
    """A failure the default mapping does not know (a mapping file names it)."""


class StepLib:
    """Side effects go to one file, a line per keyword that really ran."""

    ROBOT_LIBRARY_SCOPE = "GLOBAL"

    def __init__(self, side_file: str) -> None:
        self.side = Path(side_file)

    def act(self, name: str) -> None:
        """Record that the action ``name`` ran."""
        with self.side.open("a", encoding="utf-8") as f:
            f.write(name + "\n")

    def find_target(self, locator: str) -> None:
        """Fail as SeleniumLibrary does when an element is missing."""
        raise ElementNotFound(f"Element with locator '{locator}' not found.")

    def value_should_be(self, actual: str, expected: str) -> None:
        """Fail with an AssertionError when the values differ."""
        if actual != expected:
            raise AssertionError(f"{actual} != {expected}")

    def click_image(self, best: str, runner_up: str) -> None:
        """Act like a vision library: match, then hand the scores to auto-heal from Python."""
        from autoheal_otel.robot import AutoHealLibrary

        AutoHealLibrary().report_match_confidence(float(best), float(runner_up), "template")
        self.act("clicked image")

    def crash(self, message: str = "boom") -> None:
        """Fail with an unexpected error."""
        raise RuntimeError(message)

    def show_captcha(self) -> None:
        """Fail with an exception only a mapping file knows."""
        raise CaptchaShown("a captcha blocks the page")

    def hang(self, seconds: str = "5") -> None:
        """Wait on a real event that never fires (RF's timeout ends it)."""
        import threading

        threading.Event().wait(float(seconds))
