"""Invariants of disk accounting and retention over generated directory trees (hypothesis)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoheal_otel import PolicyConfig
from autoheal_otel.disk._sweep import delete_units, plan
from autoheal_otel.disk._usage import PARTS, measure

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TOPS = {
    "audit": "audit_raw",
    "failure_cases": "failure_cases",
    "reports": "reports",
    "versions": "versions",
    "learning": "versions",
    "misc": "other",
}

files = st.lists(
    st.tuples(
        st.sampled_from(sorted(TOPS)),
        st.booleans(),  # under audit/compacted (for audit) or one folder deeper
        st.text("abcxyz", min_size=1, max_size=6),
        st.integers(0, 5000),
    ),
    max_size=40,
)


def _expected_part(top: str, deeper: bool) -> str:
    if top == "audit" and deeper:
        return "audit_compacted"
    return TOPS[top]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=files, links=st.integers(0, 3))
def test_parts_sum_to_every_file_size_once(
    files: list[tuple[str, bool, str, int]], links: int
) -> None:
    """Each regular file counts once in its part; a link counts as itself, never its target."""
    root = Path(tempfile.mkdtemp(prefix="autoheal-disk-prop-"))
    try:
        data, outside = root / "data", root / "outside"
        outside.mkdir()
        (outside / "big").write_bytes(b"o" * 100_000)
        expected = dict.fromkeys(PARTS, 0)
        written: set[Path] = set()
        for top, deeper, name, size in files:
            folder = (
                data / top / ("compacted" if top == "audit" else "sub") if deeper else data / top
            )
            path = folder / f"{name}.bin"
            if path in written:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * size)
            written.add(path)
            expected[_expected_part(top, deeper)] += size
        data.mkdir(exist_ok=True)
        for i in range(links):
            link = data / f"link{i}"
            link.symlink_to(outside if i % 2 else outside / "big")
            expected["other"] += link.lstat().st_size
        usage = measure(data, PolicyConfig().retention, NOW)
        assert usage.parts == expected
        assert usage.files == len(written) + links
    finally:
        shutil.rmtree(root)


units = st.lists(
    st.tuples(
        st.sampled_from(["failure_cases", "reports"]),
        st.sampled_from(["wf1", "wf2"]),
        st.integers(0, 120),  # age in days
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units=units, keep=st.integers(1, 90))
def test_retention_deletes_exactly_what_is_past_its_keep_days(
    units: list[tuple[str, str, int]], keep: int
) -> None:
    """After a run, every unit older than keep-days is gone and every younger one is whole."""
    root = Path(tempfile.mkdtemp(prefix="autoheal-sweep-prop-"))
    try:
        made: list[tuple[list[Path], bool]] = []
        for seq, (area, wf, age) in enumerate(units):
            stamp = (NOW - timedelta(days=age, seconds=1)).strftime("%Y%m%dT%H%M%S")
            folder = root / area / wf
            folder.mkdir(parents=True, exist_ok=True)
            suffixes = (".json", ".extra") if area == "failure_cases" else (".md", ".html")
            paths = [folder / f"{stamp}-{seq:08d}{s}" for s in suffixes]
            for path in paths:
                path.write_text("x" * 10)
            made.append((paths, age >= keep))
        doomed = plan(root, {"failure_cases": keep, "reports": keep}, NOW)
        assert [u.stamp for u in doomed] == sorted(u.stamp for u in doomed)
        assert delete_units(root, doomed)
        for paths, old in made:
            assert all(not p.exists() for p in paths) if old else all(p.exists() for p in paths)
    finally:
        shutil.rmtree(root)
