"""Sparse le buckets: the engines' histogram_quantile is the same as with every boundary sent."""

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
    positions, counts = grid.sparse(sk)
    return [
        (grid.bounds[p] if p < len(grid) else float("inf"), float(c))
        for p, c in zip(positions, counts, strict=True)
    ]


@given(
    st.lists(
        st.one_of(st.floats(min_value=0.001, max_value=1e6), st.sampled_from([0.0, 5.0, 5.0])),
        min_size=1,
        max_size=300,
    )
)
def test_sparse_buckets_give_the_same_quantiles_as_every_bucket(values: list[float]) -> None:
    """Prometheus' quantile over the sparse buckets equals the one over the full grid."""
    grid = BucketGrid(0.01, 60_000.0, 2)
    sk = QuantileSketch()
    sk.add_many(values)
    full, sparse = _full(grid, sk), _sparse(grid, sk)
    assert set(sparse) <= set(full)
    assert sparse[-1] == (float("inf"), float(len(values)))
    for q in QS:
        assert bucket_quantile(q, sparse) == bucket_quantile(q, full), q


def test_sparse_keeps_each_boundary_once_kept() -> None:
    """A running total's kept boundaries only grow as values arrive (stable series)."""
    grid = BucketGrid(0.01, 60_000.0, 2)
    rng = random.Random(5)
    sk = QuantileSketch()
    kept: set[int] = set()
    for _ in range(50):
        sk.add_many([rng.lognormvariate(3.0, 1.5) for _ in range(20)])
        now = set(grid.sparse(sk)[0])
        assert kept <= now
        kept = now
    assert len(kept) < len(grid) // 2


def test_lowest_bucket_interpolates_from_the_boundary_below() -> None:
    """Values all in one bucket: the quantile stays within that bucket, not 0..le."""
    grid = BucketGrid(0.01, 60_000.0, 2)
    sk = QuantileSketch()
    sk.add_many([5.0] * 100)
    for buckets in (_sparse(grid, sk), _full(grid, sk)[grid.cumulative(sk)[0] :]):
        assert bucket_quantile(0.5, buckets) == pytest.approx(5.0, rel=0.05)


def _record(data_dir: Path, start: float, n: int) -> None:
    """A bimodal latency histogram whose every bucket is seen in the first interval (so a
    rate() window never meets a boundary's first sample) and a constant-latency one."""
    rng = random.Random(11)
    pool = [rng.lognormvariate(1.0, 0.3) for _ in range(150)]
    pool += [rng.lognormvariate(6.0, 0.5) for _ in range(50)]
    sink = SQLiteSink(data_dir / "telemetry.db")
    aggs = []
    for i in range(n):
        t0 = start + i * STEP
        for name, values in (
            ("bimodal.duration", pool if i == 0 else rng.choices(pool, k=120)),
            ("constant.duration", [5.0] * 40),
        ):
            sk = QuantileSketch()
            sk.add_many(values)
            aggs.append(
                IntervalAggregate(
                    name, MetricType.HISTOGRAM, (("app_version", "1.0"),), t0, t0 + STEP,
                    count=len(values), sum=sum(values), min=min(values), max=max(values),
                    sketch=sk, unit="ms",
                )
            )  # fmt: skip
    sink.write(aggs, [])
    sink.close()


@pytest.mark.needs_extras
def test_engines_answer_the_same_for_sparse_and_full_buckets(
    engine: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Prometheus and VictoriaMetrics give the same histogram_quantile (instant and over a
    rate window) for sparse buckets as for every bucket, and fewer samples are sent."""
    now = time.time()
    start = (now // STEP) * STEP - 30 * STEP
    _record(tmp_path, start, 24)
    sent = {}
    conn = sqlite3.connect(tmp_path / "telemetry.db", isolation_level=None)
    try:
        for instance, sparse in (("sparse", True), ("full", False)):
            exp = RemoteWriteExporter(engine.write_url, instance=instance, sparse_buckets=sparse)
            report = deliver(exp, conn, since=start - 1)
            assert report.stopped == "done", report
            assert report.refused_samples == 0, report
            sent[instance] = report.samples
    finally:
        conn.close()
    assert sent["sparse"] * 3 < sent["full"]
    at = start + 24 * STEP
    deadline = time.monotonic() + 20
    while len(engine.query('count(last_over_time({__name__=~".+_bucket"}[1d]))', at)) < 1:
        assert time.monotonic() < deadline, "no samples arrived"
        engine.flush()
        time.sleep(0.3)
    engine.flush()
    for metric in ("bimodal_duration_seconds_bucket", "constant_duration_seconds_bucket"):
        for window in ("last_over_time({m}[1d])", "rate({m}[1h])"):
            for q in QS:
                got = {}
                for instance in ("sparse", "full"):
                    sel = window.format(m=f'{metric}{{instance="{instance}"}}')
                    got[instance] = engine.scalar(
                        f"histogram_quantile({q}, sum by (le) ({sel}))", at
                    )
                assert got["sparse"] == pytest.approx(got["full"], rel=1e-9), (metric, sel, q)
    constant = engine.scalar(
        "histogram_quantile(0.5, sum by (le) (last_over_time("
        'constant_duration_seconds_bucket{instance="sparse"}[1d])))',
        at,
    )
    assert constant == pytest.approx(0.005, rel=0.05)
