"""Storage benchmarks: ingest, query cost as data grows, bytes on disk.

Run: ``python bench/bench_storage.py`` (add ``--quick`` to skip the 10 M raw-table
measurement and extrapolate it from 1 M instead).

Every figure is printed next to the way a user would do it by hand: every raw observation in
a SQLite table (``INSERT`` in one transaction per batch) and the percentile computed from the
raw rows, either in SQL (``ORDER BY value LIMIT 1 OFFSET k``) or by fetching and sorting in
Python. Ratios are sounding / by-hand (below 1.0 means sounding is cheaper).
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np

import sounding
from _harness import Row, print_table
from sounding.core.config import MetricsConfig
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.storage import SQLiteSink, open_store

DAY = 86400
MINUTE = 60


def best_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best of ``repeat`` wall-clock runs of ``fn`` (seconds)."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def raw_db(path: Path) -> sqlite3.Connection:
    """The by-hand store: one row per observation."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS obs (name TEXT, ts REAL, value REAL)")
    return conn


def raw_insert(conn: sqlite3.Connection, name: str, ts: np.ndarray, values: np.ndarray) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO obs VALUES (?, ?, ?)",
        zip([name] * len(values), ts.tolist(), values.tolist(), strict=True),
    )
    conn.execute("COMMIT")


def raw_p95_sql(conn: sqlite3.Connection, lo: float, hi: float) -> float:
    (n,) = conn.execute("SELECT count(*) FROM obs WHERE ts >= ? AND ts < ?", (lo, hi)).fetchone()
    (v,) = conn.execute(
        "SELECT value FROM obs WHERE ts >= ? AND ts < ? ORDER BY value LIMIT 1 OFFSET ?",
        (lo, hi, math.floor(0.95 * (n - 1))),
    ).fetchone()
    return float(v)


def raw_p95_fetch(conn: sqlite3.Connection, lo: float, hi: float) -> float:
    vals = [r[0] for r in conn.execute("SELECT value FROM obs WHERE ts >= ? AND ts < ?", (lo, hi))]
    vals.sort()
    return float(vals[math.floor(0.95 * (len(vals) - 1))])


# -- ingest --------------------------------------------------------------------------------
def bench_ingest(tmp: Path) -> list[Row]:
    rng = np.random.default_rng(1)
    rows: list[Row] = []
    now = time.time() // 60 * 60

    # 1. SQLiteSink alone: one flush = 50 histogram series x 1 minute x 2,000 observations.
    series, per = 50, 2000
    flushes = 20
    batches = []
    raw_batches = []
    for f in range(flushes):
        aggs = []
        raw = []
        for s in range(series):
            vals = rng.lognormal(-3, 0.7, per)
            sk = QuantileSketch()
            sk.add_many(vals.tolist())
            start = now - (flushes - f) * 60
            aggs.append(
                IntervalAggregate(
                    "bench.ingest", MetricType.HISTOGRAM, (("series", str(s)),), start,
                    start + 60, count=per, sum=float(vals.sum()), min=float(vals.min()),
                    max=float(vals.max()), sketch=sk,
                )
            )  # fmt: skip
            raw.append((vals, np.full(per, start + 30.0)))
        batches.append(aggs)
        raw_batches.append(raw)
    observations = flushes * series * per

    sink = SQLiteSink(tmp / "ingest" / "telemetry.db", MetricsConfig())
    t0 = time.perf_counter()
    for aggs in batches:
        sink.write(aggs, [])
    sink_s = time.perf_counter() - t0
    sink.close()

    conn = raw_db(tmp / "ingest-raw.db")
    t0 = time.perf_counter()
    for raw in raw_batches:
        conn.execute("BEGIN")
        for s, (vals, ts) in enumerate(raw):
            conn.executemany(
                "INSERT INTO obs VALUES (?, ?, ?)",
                zip([f"bench.ingest.{s}"] * per, ts.tolist(), vals.tolist(), strict=True),
            )
        conn.execute("COMMIT")
    raw_s = time.perf_counter() - t0
    conn.close()
    rows.append(
        Row(
            "SQLiteSink.write, 50 series x 2k obs/flush",
            sink_s / observations * 1e9,
            {"raw INSERT per observation": raw_s / observations * 1e9},
            note=f"{observations / sink_s:,.0f} obs/s vs {observations / raw_s:,.0f} obs/s; "
            f"{sink_s / flushes * 1000:.1f} ms per flush of {series} series",
        )
    )

    # 2. End to end: histogram.observe through the aggregator, runtime flush and SQLiteSink.
    data_dir = tmp / "e2e"
    sounding.configure(app_name="bench", data_dir=data_dir)
    hist = sounding.histogram("bench.e2e.duration", unit="s")
    bound = [hist.bind(series=str(s)) for s in range(10)]
    values = rng.lognormal(-3, 0.7, 200_000).tolist()
    n_flush = 10
    chunk = len(values) // n_flush
    flush_s = 0.0
    t0 = time.perf_counter()
    for f in range(n_flush):
        for i, v in enumerate(values[f * chunk : (f + 1) * chunk]):
            bound[i % 10].observe(v)
        t1 = time.perf_counter()
        if not sounding.flush():
            raise RuntimeError("flush failed")
        flush_s += time.perf_counter() - t1
    e2e_s = time.perf_counter() - t0
    sounding.shutdown()
    conn = raw_db(tmp / "e2e-raw.db")
    arr = np.asarray(values)
    ts = np.full(len(values), now)
    t0 = time.perf_counter()
    for f in range(n_flush):
        raw_insert(
            conn, "bench.e2e", ts[f * chunk : (f + 1) * chunk], arr[f * chunk : (f + 1) * chunk]
        )
    raw_e2e_s = time.perf_counter() - t0
    conn.close()
    rows.append(
        Row(
            "observe() + flush() end to end",
            e2e_s / len(values) * 1e9,
            {"raw INSERT per observation": raw_e2e_s / len(values) * 1e9},
            note=f"{len(values) / e2e_s:,.0f} obs/s vs {len(values) / raw_e2e_s:,.0f} obs/s; "
            f"of which flush (aggregator + SQLiteSink) {flush_s / n_flush * 1000:.1f} ms "
            f"per flush of 10 series",
        )
    )
    return rows


# -- query cost ----------------------------------------------------------------------------
QUERY_NAME = "bench.query.duration"
#: The query bench keeps 35 days of finest rows so the fixed range below stays complete.
QUERY_METRICS = MetricsConfig(retention_days=35)


def query_range() -> tuple[float, float]:
    """30 days ending yesterday 18:37 UTC, so every run reads the same mix of rows:
    23 minute + 5 hourly rows at the start, 29 daily, 18 hourly + 37 minute rows at the end."""
    end = time.time() // DAY * DAY - DAY + 18 * 3600 + 37 * 60
    return end - 30 * DAY, end


def build(tmp: Path, total: int, *, with_raw: bool) -> tuple[Path, Path | None]:
    """30 days of one histogram at the default 60 s interval holding ``total`` observations
    (and the same observations in a raw table when ``with_raw``)."""
    rng = np.random.default_rng(total)
    start, _ = query_range()
    per = total // (30 * 24 * 60)
    path = tmp / f"q{total}" / "telemetry.db"
    raw_path = tmp / f"q{total}-raw.db" if with_raw else None
    sink = SQLiteSink(path, QUERY_METRICS)
    conn = raw_db(raw_path) if raw_path is not None else None
    for day in range(30):
        aggs = []
        day_vals = []
        day_ts = []
        for m in range(24 * 60):
            t = start + day * DAY + m * MINUTE
            vals = rng.lognormal(-3, 0.7, per)
            sk = QuantileSketch()
            sk.add_many(vals.tolist())
            aggs.append(
                IntervalAggregate(
                    QUERY_NAME, MetricType.HISTOGRAM, (), t, t + 60, count=per,
                    sum=float(vals.sum()), min=float(vals.min()), max=float(vals.max()),
                    sketch=sk,
                )
            )  # fmt: skip
            if conn is not None:
                day_vals.append(vals)
                day_ts.append(np.full(per, t + 30.0))
        sink.write(aggs, [])
        if conn is not None:
            raw_insert(conn, QUERY_NAME, np.concatenate(day_ts), np.concatenate(day_vals))
    sink.close()
    if conn is not None:
        conn.close()
    return path, raw_path


def rows_touched(path: Path, start: float, end: float) -> int:
    """How many stored rows the whole-range query reads (from its plan)."""
    from sounding.storage.store import plan_ranges

    conn = sqlite3.connect(path)
    n = 0
    for res, a, b in plan_ranges(start, end, -math.inf, -math.inf):
        where = "resolution NOT IN (3600, 86400)" if res == 0 else f"resolution = {res}"
        n += conn.execute(
            f"SELECT count(*) FROM points WHERE {where} AND bucket_start >= ? AND bucket_start < ?",
            (a, b),
        ).fetchone()[0]
    conn.close()
    return n


def measure_size(tmp: Path, total: int, with_raw: bool) -> tuple[Row, Row, Row, tuple[float, ...]]:
    start, end = query_range()
    t_build = time.perf_counter()
    path, raw_path = build(tmp, total, with_raw=with_raw)
    build_s = time.perf_counter() - t_build

    def cold(interval: str | None = None) -> object:
        # A fresh Store each time (as the CLI does): nothing decoded is reused.
        with open_store(path, metrics=QUERY_METRICS) as store:
            return store.query(QUERY_NAME, start=start, end=end, interval=interval, stat="p95")

    ours_s = best_seconds(cold, repeat=10)
    hourly_s = best_seconds(lambda: cold("1h"), repeat=5)
    with open_store(path, metrics=QUERY_METRICS) as store:
        [ours] = store.query(QUERY_NAME, start=start, end=end, stat="p95")
        warm_s = best_seconds(
            lambda: store.query(QUERY_NAME, start=start, end=end, stat="p95"), repeat=10
        )
    touched = rows_touched(path, start, end)
    size_mb = os.path.getsize(path) / 1e6
    note = (
        f"reads {touched} rows; store {size_mb:.1f} MB; build {build_s:.0f} s; "
        f"p95={ours.value:.5f} from {ours.count:,} obs"
    )
    timings: tuple[float, ...] = ()
    peers: dict[str, float] = {}
    if raw_path is not None:
        conn = sqlite3.connect(raw_path)
        reps = 3 if total <= 1_000_000 else 1
        exact = raw_p95_sql(conn, start, end)
        sql_s = best_seconds(lambda: raw_p95_sql(conn, start, end), reps)
        fetch_s = best_seconds(lambda: raw_p95_fetch(conn, start, end), reps)
        conn.close()
        raw_mb = os.path.getsize(raw_path) / 1e6
        peers = {"raw ORDER BY/OFFSET": sql_s * 1e3, "raw fetch+sort": fetch_s * 1e3}
        note += (
            f"; exact={exact:.5f} (error {abs(ours.value - exact) / exact:.2%}); "
            f"raw table {raw_mb:.0f} MB"
        )
        timings = (sql_s, fetch_s)
    for p in (path.parent, raw_path):
        if p is not None and p.exists():
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    whole = Row(f"p95 over 30 days, {total:,} obs", ours_s * 1e3, peers, note=note)
    warm = Row(
        f"same, repeated on an open Store, {total:,}",
        warm_s * 1e3,
        {},
        note="decoded sketches reused (dashboard refresh)",
    )
    hourly = Row(
        f"p95 per hour (720 points), {total:,} obs",
        hourly_s * 1e3,
        {},
        note="fresh Store; one merged sketch per hour",
    )
    return whole, warm, hourly, timings


def bench_query(tmp: Path, quick: bool) -> list[Row]:
    small_whole, small_warm, small_hourly, small = measure_size(tmp, 1_000_000, True)
    big_whole, big_warm, big_hourly, big = measure_size(tmp, 10_000_000, not quick)
    if not big:
        # Sorting n values costs ~ n log n: scale the 1 M measurement.
        scale = 10 * math.log(10_000_000) / math.log(1_000_000)
        big_whole.peers = {
            "raw ORDER BY/OFFSET (extrapolated)": small[0] * scale * 1e3,
            "raw fetch+sort (extrapolated)": small[1] * scale * 1e3,
        }
        big_whole.note += "; raw figures extrapolated from 1 M (n log n), not measured"
    scaling = Row(
        "p95 30 d: 10 M obs against 1 M",
        big_whole.ours_ns,
        {"the same query on 1 M obs": small_whole.ours_ns},
        budget=1.2,
        note="10x the observations, same rows read: the time should barely move",
    )
    return [small_whole, big_whole, scaling, small_warm, big_warm, small_hourly, big_hourly]


# -- bytes on disk -------------------------------------------------------------------------
def db_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return os.path.getsize(path)


def bench_bytes(tmp: Path) -> list[Row]:
    rows: list[Row] = []
    rng = np.random.default_rng(9)
    days, series = 2, 5
    end = time.time() // 86400 * 86400
    start = end - days * DAY
    per_minute = 100
    for kind in (MetricType.HISTOGRAM, MetricType.COUNTER):
        path = tmp / f"bytes-{kind.value}" / "telemetry.db"
        sink = SQLiteSink(path, MetricsConfig())
        raw_path = tmp / f"bytes-{kind.value}-raw.db"
        conn = raw_db(raw_path)
        for d in range(days):
            aggs = []
            for s in range(series):
                day_vals = []
                for m in range(24 * 60):
                    t = start + d * DAY + m * MINUTE
                    vals = rng.lognormal(-3, 0.7, per_minute)
                    if kind is MetricType.HISTOGRAM:
                        sk = QuantileSketch()
                        sk.add_many(vals.tolist())
                        aggs.append(
                            IntervalAggregate(
                                "bench.bytes", kind, (("series", str(s)), ("app_version", "1.4.2")),
                                t, t + 60, count=per_minute, sum=float(vals.sum()),
                                min=float(vals.min()), max=float(vals.max()), sketch=sk,
                            )
                        )  # fmt: skip
                    else:
                        aggs.append(
                            IntervalAggregate(
                                "bench.bytes", kind, (("series", str(s)), ("app_version", "1.4.2")),
                                t, t + 60, count=per_minute, sum=float(per_minute),
                            )
                        )  # fmt: skip
                    day_vals.append(vals)
                vals_all = np.concatenate(day_vals)
                raw_insert(
                    conn, f"bench.bytes.{s}", np.full(len(vals_all), start + d * DAY), vals_all
                )
            sink.write(aggs, [])
        sink.close()
        conn.close()
        # Subtract what an empty store (schema, first pages) takes, so small runs do not
        # overstate the per-day cost.
        empty_path = tmp / f"bytes-{kind.value}-empty" / "telemetry.db"
        open_store(empty_path, create=True).close()
        empty = db_bytes(empty_path)
        ours = (db_bytes(path) - empty) / (series * days)
        raw = db_bytes(raw_path) / (series * days)
        # After retention_days only the hourly and daily rows of a day remain.
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM points WHERE resolution NOT IN (3600, 86400)")
        conn.commit()
        conn.execute("VACUUM")
        conn.close()
        later = (db_bytes(path) - empty) / (series * days)
        rows.append(
            Row(
                f"{kind.value}, 60 s intervals, {per_minute} obs/min",
                ours,
                {"raw row per observation": raw},
                note=f"finest + hourly + daily rows; {ours * 30 / 1e6:.1f} MB per series for "
                f"the 30 d of finest rows, then {later / 1e3:.1f} kB per series per day "
                "(hourly + daily only)",
            )
        )
    return rows


def vacuumed_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    return os.path.getsize(path)


def bench_sparse_bytes(tmp: Path) -> list[Row]:
    """A sparse histogram series (one observation a minute): bytes per series-day, after
    VACUUM, against one raw row per observation. Budget: no more than the raw rows."""
    rng = np.random.default_rng(11)
    days, series = 2, 5
    end = time.time() // DAY * DAY
    start = end - days * DAY
    path = tmp / "sparse" / "telemetry.db"
    sink = SQLiteSink(path, MetricsConfig())
    raw_path = tmp / "sparse-raw.db"
    conn = raw_db(raw_path)
    for d in range(days):
        aggs = []
        for s in range(series):
            vals = rng.lognormal(-3, 0.7, 24 * 60)
            ts = start + d * DAY + np.arange(24 * 60) * MINUTE
            for t, v in zip(ts.tolist(), vals.tolist(), strict=True):
                sk = QuantileSketch()
                sk.add(v)
                aggs.append(
                    IntervalAggregate(
                        "bench.sparse", MetricType.HISTOGRAM,
                        (("series", str(s)), ("app_version", "1.4.2")), t, t + 60,
                        count=1, sum=v, min=v, max=v, sketch=sk,
                    )
                )  # fmt: skip
            raw_insert(conn, f"bench.sparse.{s}", ts + 30.0, vals)
        sink.write(aggs, [])
    sink.close()
    conn.close()
    empty_path = tmp / "sparse-empty" / "telemetry.db"
    open_store(empty_path, create=True).close()
    empty = vacuumed_bytes(empty_path)
    ours = (vacuumed_bytes(path) - empty) / (series * days)
    raw = vacuumed_bytes(raw_path) / (series * days)
    return [
        Row(
            "sparse histogram, 1 obs/min",
            ours,
            {"raw row per observation": raw},
            budget=1.0,
            note="finest + hourly + daily rows, per series-day, after VACUUM",
        )
    ]


def main() -> None:
    """Run every storage benchmark and print the tables."""
    quick = "--quick" in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="sounding-bench-"))
    try:
        print_table("Ingest (per observation)", bench_ingest(tmp))
        print_table(
            "Bytes on disk per series per day",
            bench_bytes(tmp) + bench_sparse_bytes(tmp),
            unit="bytes",
        )
        print_table("Query cost: p95 over 30 days", bench_query(tmp, quick), unit="ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
