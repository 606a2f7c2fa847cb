"""Snapshot and rollback cost for large FAISS indexes, against a plain file copy.

Run: ``.venv/bin/python bench/artifacts.py`` (sizes in MB with ``--sizes``). For each size it
builds a real faiss ``IndexFlatIP`` of about that size, then times, with medians of several
runs in this process: a plain ``shutil.copyfile`` of the index (the baseline), a snapshot of
a freshly saved index (its checksum was computed when it was saved, as the FAISS component
does), and a rollback between two sets. Saving itself (faiss.write_index + hashing) is
reported too: it is the cost of learning, paid once per new index.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from autoheal_otel.versioning import FaissIndexComponent, VersionedStore

DIM = 128


def median_ms(samples: list[float]) -> float:
    """Return the median of samples given in seconds, in milliseconds."""
    return statistics.median(samples) * 1000


def bench_size(megabytes: int, repeat: int) -> dict[str, float]:
    """Time copy, snapshot and rollback for one index size."""
    rows = megabytes * 2**20 // (DIM * 4)
    vectors = np.random.default_rng(0).standard_normal((rows, DIM)).astype("float32")
    index = faiss.IndexFlatIP(DIM)
    index.add(vectors)
    root = Path(tempfile.mkdtemp(prefix="autoheal-artifacts-"))
    try:
        component = FaissIndexComponent("invoice")
        store = VersionedStore(root, [component], keep=3)
        saves, snapshots, copies, rollbacks = [], [], [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            component.save(index)  # a new file (new inode), hashed while saving
            saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.snapshot("bench")
            snapshots.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            shutil.copyfile(component.working / "index.faiss", root / "copy.faiss")
            copies.append(time.perf_counter() - t0)
            (root / "copy.faiss").unlink()
        sets = [s.id for s in store.list()]
        for i in range(repeat):
            t0 = time.perf_counter()
            store.rollback(sets[-1 - (i % 2)])
            rollbacks.append(time.perf_counter() - t0)
        size = (component.working / "index.faiss").stat().st_size / 2**20
        return {
            "size_mb": size,
            "save": median_ms(saves),
            "copy": median_ms(copies),
            "snapshot": median_ms(snapshots),
            "rollback": median_ms(rollbacks),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """Print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200, 512])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'index':>9} {'save':>10} {'plain copy':>11} {'snapshot':>10} {'rollback':>10}"
        f" {'copy/snapshot':>14} {'copy/rollback':>14}"
    )
    for megabytes in args.sizes:
        r = bench_size(megabytes, args.repeat)
        print(
            f"{r['size_mb']:6.0f} MB {r['save']:8.1f} ms {r['copy']:9.1f} ms {r['snapshot']:8.2f} ms"
            f" {r['rollback']:8.2f} ms {r['copy'] / r['snapshot']:13.0f}x {r['copy'] / r['rollback']:13.0f}x"
        )


if __name__ == "__main__":
    main()
