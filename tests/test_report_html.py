"""report.html as a reader sees it: rendered by headless Chromium (Debian's), checked by pixel.

The page's timeline must show a labelled time axis, a legend without hovering, every state
including one held for an instant (the demo's rollback lasts no time at all), and link each
breaker trip to its own report.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from autoheal_otel.integrations._timeline import COLORS

from .cli_support import run
from .png import read_png

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def page(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's report written by `autoheal report` into a folder of its own."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    proc = run(["report", "--out", str(out), "--data-dir", str(demo_data)])
    assert proc.returncode == 0, proc.stderr
    return out


def _mask(image: npt.NDArray[np.uint8], color: str) -> npt.NDArray[np.bool_]:
    rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return np.asarray(np.abs(image.astype(int) - rgb).max(axis=2) <= 3)


def _clusters(values: npt.NDArray[np.intp], gap: int = 20) -> int:
    """Count the groups of sorted values separated by more than ``gap``."""
    return 0 if values.size == 0 else 1 + int((np.diff(np.unique(values)) > gap).sum())


def test_per_trip_reports_are_linked(page: Path) -> None:
    """Each breaker trip's row links to its own report, by a relative link that resolves."""
    text = page.read_text()
    links = re.findall(r'<a href="([^"]+)">report</a>', text)
    assert len(links) >= 5
    for link in links:
        assert (page.parent / html.unescape(link)).is_file(), link
    assert "time (UTC" in text and text.count("<text") > 20


def test_screenshot_shows_axis_legend_and_instant_states(page: Path, tmp_path: Path) -> None:
    """In Chromium the axis, the legend and every state (the instant rollback too) are visible."""
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (make test installs it as root: apt-get install chromium)"
        )
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1000,700",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    image = read_png(shot)
    for state, color in COLORS.items():
        rows = np.nonzero(_mask(image, color).any(axis=1))[0]
        # Each state shows in the timeline and again, separately, in the legend below it.
        assert _clusters(rows) >= 2, f"{state} is not visible in both the timeline and legend"
    rollback = _mask(image, COLORS["rollback"])
    rows = np.unique(np.nonzero(rollback.any(axis=1))[0])
    legend_top = rows[np.nonzero(np.diff(rows) > 20)[0][-1] + 1]
    # The demo's rollback lasts no time; it still shows as a band and a marker of its own.
    assert rollback[: legend_top - 10].sum() >= 40, "the instant rollback is not visible"
    gray = image.max(axis=2) - image.min(axis=2) < 8
    dark = gray & (image.max(axis=2) < 100)
    axis_rows = [y for y in range(image.shape[0]) if dark[y].sum() > 600]
    assert axis_rows, "no time axis line across the timeline"


def test_hostile_ids_and_reasons_render_as_text_in_chromium(tmp_path: Path) -> None:
    """Regression (stored XSS): a reason shaped `[x](" autofocus onfocus="…" x=".md)` became a
    link with an event handler, `javascript:` hrefs passed and report.md carried a raw
    `<script>`; now every data string is text in both files and in the browser's DOM."""
    from autoheal_otel import AutoHealManager

    from .conftest import POST

    wid = '<img src=x onerror="document.body.dataset.pwned=1">'
    reason = '[x](" autofocus onfocus="document.body.dataset.pwned=2" x=".md)'
    with AutoHealManager(data_dir=tmp_path / "d") as m:
        for _ in range(10):
            m.on_step_result(wid, "<script>document.body.dataset.pwned=3</script>", POST)
        m.force_transition(wid, "running", reason=reason)
        m.force_transition(wid, "paused", reason="[js](javascript:alert(1).md)")
    out = tmp_path / "out"
    out.mkdir()
    proc = run(
        ["report", "--data-dir", str(tmp_path / "d"), "--out", str(out / "r.md"),
         "--out", str(out / "r.html")]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    markdown, page = (out / "r.md").read_text(), (out / "r.html").read_text()
    assert not re.search(r"(?<!\\)[<\[]", markdown.split("\n", 1)[1])  # markup only escaped
    assert "<script>" not in page and "<img" not in page and 'href="javascript' not in page
    assert not re.search(r"<a [^>]*href=\"(?!\.\.?/|[\w-]+/)", page)  # only relative links
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it as root)")
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         (out / "r.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    ).stdout  # fmt: skip
    assert "<h1>" in dom and "pwned" in dom  # rendered, the payloads shown as text ...
    assert "data-pwned" not in dom and "<img" not in dom  # nothing ran, no element injected
    assert not re.search(r"<[a-z][^<>]*\son\w+=", dom)  # no tag carries an event handler
