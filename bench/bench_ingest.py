"""Benchmark: bulk import with ``sounding.record_many`` until the data is on disk.

Run: ``python bench/bench_ingest.py``

Snapshots are built beforehand (the caller has them); the timed part is
``record_many(snapshots)`` plus the ``flush()`` that writes them into the SQLite store, so the
privacy checks, the aggregation and the write are all included. The peer is what a user would
do by hand: one raw row per observation, ``executemany`` in one transaction. Budgets: at
least 1 M observations/s dense (many per series and minute) and 300 k/s sparse (one per
series and minute).

For the writer's normal path there is also "observe() + flush()": live observations into the
same series, flushed at every interval as the background writer does (a manual clock moves
a minute between flushes), per observation; no budget of its own, it is there so a faster
import is never paid for by the live path.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import Row, print_table


def _snapshots(series: int, minutes: int, per_minute: int) -> list:  # type: ignore[type-arg]
    import sounding

    rng = random.Random(7)
    t0 = time.time() // 86400 * 86400 - 2 * 86400
    out = []
    for m in range(minutes):
        for k in range(per_minute):
            when = datetime.fromtimestamp(t0 + m * 60 + k * 60 / per_minute, tz=timezone.utc)
            for s in range(series):
                out.append(
                    sounding.MetricSnapshot(
                        "histogram", "import.latency", rng.lognormvariate(0, 1), when,
                        {"route": f"r{s}", "region": "eu"},
                    )
                )  # fmt: skip
    return out


def _ours(tmp: Path, snaps: list) -> float:  # type: ignore[type-arg]
    import sounding
    from sounding import _runtime

    best = float("inf")
    for i in range(3):
        sounding.configure(data_dir=tmp / f"ours{len(snaps)}-{i}")
        _runtime.get_runtime().set_manual(True)
        sounding.flush()  # open the store before timing
        t0 = time.perf_counter()
        sounding.record_many(snaps)
        if not sounding.flush():
            raise RuntimeError("flush failed")
        best = min(best, time.perf_counter() - t0)
        sounding.reset()
    return best


def _raw(tmp: Path, snaps: list) -> float:  # type: ignore[type-arg]
    rows = [(s.name, s.epoch, s.value) for s in snaps]
    best = float("inf")
    for i in range(3):
        conn = sqlite3.connect(tmp / f"raw{len(snaps)}-{i}.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("CREATE TABLE obs (name TEXT, ts REAL, value REAL)")
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO obs VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
        best = min(best, time.perf_counter() - t0)
        conn.close()
    return best


def _live(tmp: Path, series: int, minutes: int, per_minute: int) -> float:
    """Seconds for ``observe()`` of every value plus a ``flush()`` per interval (best of 3)."""
    import sounding
    from sounding import _runtime
    from sounding.core.clock import set_clock
    from sounding.testing import ManualClock

    rng = random.Random(7)
    values = [rng.lognormvariate(0, 1) for _ in range(minutes * per_minute * series)]
    tags = [{"route": f"r{s}", "region": "eu"} for s in range(series)]
    best = float("inf")
    for i in range(3):
        clock = ManualClock(time.time() // 86400 * 86400 - 2 * 86400)
        set_clock(clock)
        sounding.configure(data_dir=tmp / f"live{series}-{per_minute}-{i}")
        _runtime.get_runtime().set_manual(True)
        hist = sounding.histogram("live.latency")
        sounding.flush()
        t0 = time.perf_counter()
        for m in range(minutes):
            observe = hist.observe
            for k in range(per_minute):
                first = (m * per_minute + k) * series
                row = values[first : first + series]
                for v, t in zip(row, tags, strict=True):
                    observe(v, tags=t)
            clock.advance(60)
            if not sounding.flush():
                raise RuntimeError("flush failed")
        best = min(best, time.perf_counter() - t0)
        sounding.reset()
    set_clock(None)
    return best


def main() -> list[Row]:
    """Time dense and sparse imports and print the rows."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="sounding-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for label, (series, minutes, per_minute), limit in (
            ("dense", (20, 10, 1000), 1000.0),
            ("sparse", (100, 1000, 1), 3333.0),
        ):
            snaps = _snapshots(series, minutes, per_minute)
            ours = _ours(tmp, snaps) / len(snaps) * 1e9
            raw = _raw(tmp, snaps) / len(snaps) * 1e9
            rows.append(
                Row(
                    f"record_many+flush, {label}",
                    ours,
                    {"raw executemany per obs": raw},
                    limit=limit,
                    note=f"{1e9 / ours:,.0f} obs/s (raw rows {1e9 / raw:,.0f}/s); {series} "
                    f"series x {per_minute} obs/min, {len(snaps):,} observations",
                )
            )
        for label, (series, minutes, per_minute) in (
            ("dense", (20, 10, 1000)),
            ("sparse", (100, 60, 1)),
        ):
            live = _live(tmp, series, minutes, per_minute) / (series * minutes * per_minute) * 1e9
            rows.append(
                Row(
                    f"observe()+flush(), {label}",
                    live,
                    note=f"{series} series x {per_minute} obs/min, a flush per minute "
                    f"({minutes} minutes)",
                )
            )
    print_table("Bulk import to disk (per observation)", rows, unit="ns/obs")
    return rows


if __name__ == "__main__":
    main()
