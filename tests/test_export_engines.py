"""Remote-write against real Prometheus and VictoriaMetrics on loopback."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest

from engines import Engine, engine, prometheus, victoria  # noqa: F401
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.exporters import RemoteWriteExporter
from sounding.exporters._deliver import deliver
from sounding.storage import SQLiteSink, open_store

pytestmark = pytest.mark.needs_extras

STEP = 300.0


def record_install(data_dir: Path, seed: int, mu: float, sigma: float, start: float, n: int) -> int:
    """Write ``n`` 5-minute intervals of a latency histogram and a counter; the total."""
    rng = random.Random(seed)
    sink = SQLiteSink(data_dir / "telemetry.db")
    total = 0
    aggs = []
    for i in range(n):
        t0 = start + i * STEP
        sk = QuantileSketch()
        values = [rng.lognormvariate(mu, sigma) for _ in range(200)]
        sk.add_many(values)
        hits = rng.randint(1, 50)
        total += hits
        tags = (("app_version", "1.0"), ("route", "save"))
        aggs.append(
            IntervalAggregate(
                "request.duration", MetricType.HISTOGRAM, tags, t0, t0 + STEP,
                count=len(values), sum=sum(values), min=min(values), max=max(values),
                sketch=sk, unit="ms",
            )
        )
        aggs.append(
            IntervalAggregate("requests", MetricType.COUNTER, tags, t0, t0 + STEP,
                              count=hits, sum=float(hits))
        )
    sink.write(aggs, [])
    sink.close()
    return total


def push(eng: Engine, data_dir: Path, instance: str, since: float, fmt: str = "le") -> int:
    """Deliver one install's store to ``eng``; the samples sent."""
    conn = sqlite3.connect(data_dir / "telemetry.db", isolation_level=None)
    try:
        exp = RemoteWriteExporter(eng.write_url, instance=instance, histogram_format=fmt)
        report = deliver(exp, conn, since=since)
    finally:
        conn.close()
    assert report.stopped == "done", report
    assert report.refused_samples == 0, report.errors
    return report.samples


def wait_for(eng: Engine, promql: str, at: float, want: int = 1) -> list[dict[str, object]]:
    """Poll until the query has ``want`` results (VictoriaMetrics needs a flush)."""
    deadline = time.monotonic() + 20
    while True:
        eng.flush()
        res = eng.query(promql, at)
        if len(res) >= want or time.monotonic() > deadline:
            return res
        time.sleep(0.3)


def test_fleet_percentiles_and_totals(engine: Engine, tmp_path: Path) -> None:  # noqa: F811
    """Three installs' buckets summed by the engine give the merged sketch's p50/p95/p99
    within 1.5 % and the exact counter total."""
    now = time.time()
    start = (now // STEP) * STEP - 48 * STEP
    dists = [(2.0, 0.4), (3.0, 0.8), (4.5, 0.3)]
    merged = QuantileSketch()
    total = 0
    for k, (mu, sigma) in enumerate(dists):
        d = tmp_path / f"install{k}"
        d.mkdir()
        total += record_install(d, k, mu, sigma, start, 40)
        with open_store(d) as store:
            merged.merge(store.distribution("request.duration").sketch)
        assert push(engine, d, f"i{k}", since=start - 1) > 0
    at = start + 41 * STEP
    got = wait_for(engine, "sum(last_over_time(requests_total[1d]))", at)
    assert float(got[0]["value"][1]) == total
    for q in (0.5, 0.95, 0.99):
        promql = (
            f"histogram_quantile({q}, sum by (le) "
            "(last_over_time(request_duration_seconds_bucket[1d])))"
        )
        res = wait_for(engine, promql, at)
        want = merged.quantile(q)
        assert want is not None
        assert float(res[0]["value"][1]) == pytest.approx(want / 1000, rel=0.015), q


def test_offline_day_then_reconnect_delivers_each_interval_once(
    victoria: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A day offline, then a reconnect: every interval reaches VictoriaMetrics exactly once
    (it keeps duplicates, so a re-send would show), and the running total is exact."""
    from sounding.exporters._fake import FakeTransport

    now = time.time()
    start = (now // STEP) * STEP - 2 * 288 * STEP
    d = tmp_path / "laptop"
    d.mkdir()
    total = record_install(d, 5, 2.0, 0.5, start, 2 * 288)
    conn = sqlite3.connect(d / "telemetry.db", isolation_level=None)
    try:
        day1 = start + 288 * STEP
        online = RemoteWriteExporter(victoria.write_url, instance="laptop")
        first = deliver(online, conn, since=start - 1, until=day1)
        assert first.stopped == "done"
        assert first.samples > 0
        offline = RemoteWriteExporter(
            victoria.write_url, instance="laptop", transport=FakeTransport([0] * 10)
        )
        failed = deliver(offline, conn, since=start - 1, backoff=0.0, max_attempts=2)
        assert failed.stopped == "failed"
        assert failed.samples == 0
        again = deliver(online, conn, since=start - 1)
        assert again.stopped == "done"
        assert again.samples > 0
        assert deliver(online, conn, since=start - 1).samples == 0
    finally:
        conn.close()
    at = start + 2 * 288 * STEP + 1
    res = wait_for(victoria, "count_over_time(requests_total[3d])", at)
    assert float(res[0]["value"][1]) == 2 * 288
    res = wait_for(victoria, "last_over_time(requests_total[3d])", at)
    assert float(res[0]["value"][1]) == total


def test_demo_backfill_with_push_command(victoria: Engine, tmp_path: Path) -> None:  # noqa: F811
    """`sounding push remote-write` back-fills 14 demo days; every counter's total and every
    histogram's count in VictoriaMetrics match the local store."""
    from click.testing import CliRunner

    from sounding.exporters._convert import metric_name
    from sounding.presentation.cli import main
    from sounding.presentation.demo import run_demo

    d = tmp_path / "demo"
    run_demo(days=14, seed=3, data_dir=d)
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(d), "push", "remote-write", victoria.write_url, "--since", "30d",
         "--instance", "demo"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "refused 0 samples" in result.output
    checked = 0
    at = time.time()
    with open_store(d) as store:
        for info in store.series():
            if info.name.startswith("sounding.internal."):
                continue
            dist = store.distribution(info.name, tags=info.tags)
            name = metric_name(info.name, info.metric_type, info.unit)
            sel = ",".join(f'{k}="{v}"' for k, v in sorted(info.tags.items()))
            if info.metric_type is MetricType.COUNTER:
                q, want = f"last_over_time({name}{{{sel}}}[31d])", dist.sum
            elif info.metric_type in (MetricType.HISTOGRAM, MetricType.SUMMARY):
                q, want = f"last_over_time({name}_count{{{sel}}}[31d])", float(dist.count)
            else:
                continue
            got = wait_for(victoria, q, at)
            assert len(got) == 1, (q, got)
            assert float(got[0]["value"][1]) == pytest.approx(want), q
            checked += 1
    assert checked >= 30


def test_vmrange_fleet_percentiles(victoria: Engine, tmp_path: Path) -> None:  # noqa: F811
    """VictoriaMetrics' vmrange buckets (only non-empty ranges) give the merged sketch's
    percentiles within 1.5 % too, with fewer samples than le buckets."""
    now = time.time()
    start = (now // STEP) * STEP - 48 * STEP
    merged = QuantileSketch()
    sent = 0
    for k, (mu, sigma) in enumerate([(2.0, 0.4), (3.0, 0.8), (4.5, 0.3)]):
        d = tmp_path / f"install{k}"
        d.mkdir()
        record_install(d, k, mu, sigma, start, 40)
        with open_store(d) as store:
            merged.merge(store.distribution("request.duration").sketch)
        sent += push(victoria, d, f"v{k}", since=start - 1, fmt="vmrange")
    at = start + 41 * STEP
    for q in (0.5, 0.95, 0.99):
        promql = (
            f"histogram_quantile({q}, sum by (vmrange) "
            "(last_over_time(request_duration_seconds_bucket[1d])))"
        )
        res = wait_for(victoria, promql, at)
        want = merged.quantile(q)
        assert want is not None
        assert float(res[0]["value"][1]) == pytest.approx(want / 1000, rel=0.015), q


def test_prometheus_too_old_is_counted_and_skipped(
    prometheus: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    """History older than Prometheus' out-of-order window is refused (500 "too old sample"):
    counted and skipped, and the recent history behind it still lands."""
    now = time.time()
    recent = (now // STEP) * STEP - 10 * STEP
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    record_install(fresh, 1, 2.0, 0.5, recent, 5)
    assert push(prometheus, fresh, "fresh", since=recent - 1) > 0
    # A laptop back after 45 days: its old history is outside the 30-day window.
    d = tmp_path / "late"
    d.mkdir()
    old = (now // 3600) * 3600 - 45 * 86400
    record_install(d, 2, 2.0, 0.5, old, 3)
    record_install(d, 3, 2.0, 0.5, recent, 5)
    conn = sqlite3.connect(d / "telemetry.db", isolation_level=None)
    try:
        exp = RemoteWriteExporter(prometheus.write_url, instance="late")
        report = deliver(exp, conn, since=old - 1, batch_size=2)
    finally:
        conn.close()
    assert report.refused_samples > 0
    assert any("too old" in e or "out of bounds" in e for e in report.errors), report.errors
    assert report.samples > 0
    assert report.stopped == "done"
    res = wait_for(prometheus, 'count_over_time(requests_total{instance="late"}[1d])',
                   recent + 6 * STEP)  # fmt: skip
    assert float(res[0]["value"][1]) == 5


def test_configured_exporters_from_the_public_api(
    victoria: Engine,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three installs record through the public API with a configured RemoteWriteExporter;
    the worker's cycles land every interval: exact total, percentiles within 1.5 %."""
    import sounding
    from sounding.exporters import _worker
    from sounding.testing import ManualClock, reset, simulated_time

    monkeypatch.setattr(_worker, "FIRST_CYCLE_DELAY", 3600.0)  # the test drives the cycles
    now = time.time()
    start = (now // 3600) * 3600 - 3 * 3600
    merged = QuantileSketch()
    total = 0
    ids = set()
    for k, (mu, sigma) in enumerate([(1.5, 0.3), (2.5, 0.6), (3.5, 0.4)]):
        reset()
        d = tmp_path / f"app{k}"
        sounding.configure(
            app_name="svc", data_dir=d, telemetry_level="all",
            exporters=[RemoteWriteExporter(victoria.write_url)],
        )  # fmt: skip
        worker = _worker.current()
        assert worker is not None
        rng = random.Random(k)
        with simulated_time(ManualClock(start)) as clock:
            hist = sounding.histogram("op.duration", unit="ms")
            ops = sounding.counter("ops")
            for minute in range(60):
                for _ in range(50):
                    hist.observe(rng.lognormvariate(mu, sigma))
                ops.inc(3)
                total += 3
                clock.advance(60)
                assert sounding.flush()
                if minute % 20 == 19:  # an export cycle every 20 minutes
                    assert worker.run_once(until=clock.time())[0].stopped == "done"
        assert worker.run_once(until=start + 3600)[0].stopped == "done"
        ids.add(next(iter(worker.exporters)).policy.instance)
        with open_store(d) as store:
            merged.merge(store.distribution("op.duration").sketch)
    assert len(ids) == 3
    at = start + 3600 + 1
    res = wait_for(victoria, 'sum(last_over_time(ops_total{job="svc"}[2h]))', at)
    assert float(res[0]["value"][1]) == total
    res = wait_for(victoria, "sum(count_over_time(ops_total[2h]))", at)
    assert float(res[0]["value"][1]) == 3 * 60
    for q in (0.5, 0.95, 0.99):
        promql = (
            f"histogram_quantile({q}, sum by (le) "
            "(last_over_time(op_duration_seconds_bucket[2h])))"
        )
        got = float(wait_for(victoria, promql, at)[0]["value"][1])
        want = merged.quantile(q)
        assert want is not None
        assert got == pytest.approx(want / 1000, rel=0.015), q


def test_native_histograms_on_prometheus(tmp_path: Path) -> None:
    """Live (recent) data as native histograms: Prometheus' histogram_quantile over three
    installs agrees with the merged sketch within 1.5 %."""
    from engines import _stop, start_prometheus

    eng = start_prometheus(tmp_path, native=True)
    try:
        now = time.time()
        step = 60.0
        start = (now // step) * step - 30 * step
        merged = QuantileSketch()
        for k, (mu, sigma) in enumerate([(2.0, 0.4), (3.0, 0.8), (4.5, 0.3)]):
            d = tmp_path / f"n{k}"
            d.mkdir()
            rng = random.Random(k)
            sink = SQLiteSink(d / "telemetry.db")
            aggs = []
            for i in range(29):
                sk = QuantileSketch()
                values = [rng.lognormvariate(mu, sigma) for _ in range(100)]
                sk.add_many(values)
                t0 = start + i * step
                aggs.append(IntervalAggregate(
                    "request.duration", MetricType.HISTOGRAM, (), t0, t0 + step,
                    count=100, sum=sum(values), min=min(values), max=max(values), sketch=sk,
                    unit="ms",
                ))  # fmt: skip
                merged.merge(sk)
            sink.write(aggs, [])
            sink.close()
            assert push(eng, d, f"n{k}", since=start - 1, fmt="native") > 0
        at = start + 29 * step
        for q in (0.5, 0.95, 0.99):
            res = wait_for(eng, f"histogram_quantile({q}, sum(request_duration_seconds))", at)
            want = merged.quantile(q)
            assert want is not None
            assert float(res[0]["value"][1]) == pytest.approx(want / 1000, rel=0.015), q
    finally:
        _stop(eng.proc)
