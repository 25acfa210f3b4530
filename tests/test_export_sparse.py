"""Which le buckets remote-write may leave out: histogram_quantile with and without them."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines import Engine, engine, prometheus, victoria  # noqa: F401
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.exporters import RemoteWriteExporter
from sounding.exporters._convert import BucketGrid
from sounding.exporters._deliver import deliver
from sounding.storage import SQLiteSink

STEP = 300.0
QS = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``bucketQuantile`` (promql/quantile.go) over ``[(le, cumulative)]``."""
    buckets = sorted(buckets)
    assert buckets[-1][0] == float("inf")
    total = buckets[-1][1]
    rank = q * total
    b = next(i for i, (_, c) in enumerate([*buckets[:-1], (0.0, total)]) if c >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count)


def _full(grid: BucketGrid, sk: QuantileSketch) -> list[tuple[float, float]]:
    """Every boundary with its cumulative count, as a classic client would send them."""
    run, out = 0, []
    for k, c in enumerate(grid.slots(sk)):
        run += c
        out.append((grid.bounds[k] if k < len(grid) else float("inf"), float(run)))
    return out


def _sparse(grid: BucketGrid, sk: QuantileSketch) -> list[tuple[float, float]]:
    """Only the boundaries one series' quantile reads: buckets that hold values and the one
    below each (what a sparse encoding would send)."""
    held = grid.held(sk)
    out: list[tuple[float, float]] = []
    run, kept = 0, -1

    def le(k: int) -> float:
        return grid.bounds[k] if k < len(grid) else float("inf")

    for k in sorted(held):
        if k > 0 and kept != k - 1:
            out.append((le(k - 1), float(run)))
        run += held[k]
        out.append((le(k), float(run)))
        kept = k
    if kept != len(grid):
        out.append((float("inf"), float(run)))
    return out


def _sum_by_le(*installs: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """PromQL ``sum by (le)``: a boundary an install did not send adds nothing."""
    total: dict[float, float] = {}
    for buckets in installs:
        for le, c in buckets:
            total[le] = total.get(le, 0.0) + c
    return sorted(total.items())


@given(
    st.lists(
        st.one_of(st.floats(min_value=0.001, max_value=1e6), st.sampled_from([0.0, 5.0, 5.0])),
        min_size=1,
        max_size=300,
    )
)
def test_one_series_quantile_needs_only_held_buckets(values: list[float]) -> None:
    """For one series alone, the buckets holding values and the one below each suffice."""
    grid = BucketGrid(0.01, 60_000.0, 2)
    sk = QuantileSketch()
    sk.add_many(values)
    full, sparse = _full(grid, sk), _sparse(grid, sk)
    assert set(sparse) <= set(full)
    assert sparse[-1] == (float("inf"), float(len(values)))
    for q in QS:
        assert bucket_quantile(q, sparse) == bucket_quantile(q, full), q


def test_summed_installs_need_the_cumulative_duplicates() -> None:
    """Summed by le across installs, leaving out the duplicates of each total breaks the
    quantile, while what the exporter sends (from just below the data up) keeps it."""
    grid = BucketGrid(0.01, 60_000.0, 2)
    rng = random.Random(5)
    fast, slow = QuantileSketch(), QuantileSketch()
    fast.add_many([rng.lognormvariate(1.0, 0.3) for _ in range(500)])
    slow.add_many([rng.lognormvariate(5.0, 0.3) for _ in range(500)])

    def sent(sk: QuantileSketch) -> list[tuple[float, float]]:
        first, cum = grid.cumulative(sk)
        return _full(grid, sk)[first:][: len(cum)]

    full = _sum_by_le(_full(grid, fast), _full(grid, slow))
    exported = _sum_by_le(sent(fast), sent(slow))
    sparse = _sum_by_le(_sparse(grid, fast), _sparse(grid, slow))
    for q in (0.25, 0.5, 0.75):
        assert bucket_quantile(q, exported) == bucket_quantile(q, full), q
    assert bucket_quantile(0.75, sparse) > 1.5 * bucket_quantile(0.75, full)


def test_lowest_bucket_interpolates_from_the_boundary_below() -> None:
    """Values all in one bucket: the exported buckets put p50 in that bucket, not at le/2
    (the engine interpolates the lowest boundary it sees from 0)."""
    grid = BucketGrid(0.01, 60_000.0, 2)
    sk = QuantileSketch()
    sk.add_many([5.0] * 100)
    first, cum = grid.cumulative(sk)
    assert cum[0] == 0
    exported = _full(grid, sk)[first:]
    assert bucket_quantile(0.5, exported) == pytest.approx(5.0, rel=0.05)
    assert bucket_quantile(0.5, exported[1:]) < 3.0  # without the empty boundary below


@pytest.mark.needs_extras
def test_engines_put_a_one_bucket_histogram_in_its_bucket(
    engine: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    """On Prometheus and VictoriaMetrics a constant 5 ms latency reads back as about 5 ms."""
    now = time.time()
    start = (now // STEP) * STEP - 10 * STEP
    sink = SQLiteSink(tmp_path / "telemetry.db")
    aggs = []
    for i in range(6):
        sk = QuantileSketch()
        sk.add_many([5.0] * 40)
        t0 = start + i * STEP
        aggs.append(
            IntervalAggregate(
                "constant.duration", MetricType.HISTOGRAM, (("app_version", "1.0"),), t0,
                t0 + STEP, count=40, sum=200.0, min=5.0, max=5.0, sketch=sk, unit="ms",
            )
        )  # fmt: skip
    sink.write(aggs, [])
    sink.close()
    conn = sqlite3.connect(tmp_path / "telemetry.db", isolation_level=None)
    try:
        report = deliver(RemoteWriteExporter(engine.write_url, instance="c"), conn, since=0.0)
    finally:
        conn.close()
    assert report.stopped == "done", report
    at = start + 7 * STEP
    promql = (
        "histogram_quantile(0.5, sum by (le) "
        "(last_over_time(constant_duration_seconds_bucket[1d])))"
    )
    deadline = time.monotonic() + 20
    while not (res := engine.query(promql, at)):
        assert time.monotonic() < deadline, "no samples arrived"
        engine.flush()
        time.sleep(0.3)
    assert float(res[0]["value"][1]) == pytest.approx(0.005, rel=0.05)
