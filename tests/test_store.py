"""Reading the store: metric queries, distributions, export records, events, status, migration."""

from __future__ import annotations

import itertools
import math
import random
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sounding.core.clock import set_clock
from sounding.core.config import MetricsConfig
from sounding.core.exceptions import InvalidTypeError, InvalidValueError, StoreError
from sounding.core.sketch import QuantileSketch
from sounding.core.snapshot import MetricSnapshot
from sounding.core.types import IntervalAggregate, MetricType, TagKey
from sounding.storage import QueryPoint, SQLiteSink, Store, open_store
from sounding.storage.migrations import STORAGE_MIGRATIONS
from sounding.storage.store import plan_ranges
from sounding.testing import ManualClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86400.0
HOUR = 3600.0
DAY_S = 86400


def hist(name: str, start: float, values: list[float], tags: TagKey = ()) -> IntervalAggregate:
    sk = QuantileSketch()
    sk.add_many(values)
    return IntervalAggregate(
        name, MetricType.HISTOGRAM, tags, start, start + 60, count=len(values),
        sum=sum(values), min=min(values), max=max(values), sketch=sk,
    )  # fmt: skip


def counter(name: str, start: float, total: float, tags: TagKey = ()) -> IntervalAggregate:
    return IntervalAggregate(name, MetricType.COUNTER, tags, start, start + 60, count=1, sum=total)


def exact_quantile(values: list[float], q: float) -> float:
    """The value of the rank the sketch targets (rank = q * (n - 1), rounded down)."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@pytest.fixture
def clock() -> ManualClock:
    c = ManualClock(T0 + 3 * DAY)
    set_clock(c)
    return c


@pytest.fixture
def path(tmp_path: Path, clock: ManualClock) -> Path:
    return tmp_path / "telemetry.db"


def write(path: Path, aggs: list[IntervalAggregate], metrics: MetricsConfig | None = None) -> None:
    sink = SQLiteSink(path, metrics or MetricsConfig())
    try:
        sink.write(aggs, [])
    finally:
        sink.close()


@pytest.fixture
def latencies(path: Path) -> dict[float, list[float]]:
    """Three days of a histogram, one interval every 10 minutes, tagged by version."""
    rng = random.Random(7)
    by_start: dict[float, list[float]] = {}
    aggs = []
    for i in range(3 * 24 * 6):
        start = T0 + i * 600
        values = [rng.lognormvariate(0, 1) for _ in range(30)]
        by_start[start] = values
        aggs.append(hist("export.duration", start, values, (("version", f"1.{i % 2}"),)))
    write(path, aggs)
    return by_start


def in_range(data: dict[float, list[float]], lo: float, hi: float) -> list[float]:
    return [v for start, vs in data.items() if lo <= start < hi for v in vs]


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(T0, T0 + 3 * DAY), (T0 + 1234, T0 + 2 * DAY + 5555), (T0 + 7 * 600, T0 + 9 * 600)],
)
@pytest.mark.parametrize("q", [0.0, 0.5, 0.95, 0.99, 0.999, 1.0])
def test_percentiles_within_one_percent(
    path: Path, latencies: dict[float, list[float]], lo: float, hi: float, q: float
) -> None:
    """Percentiles over any range (days, hours and minutes merged) are within 1 %."""
    expected = exact_quantile(in_range(latencies, lo, hi), q)
    stat = f"p{q * 100:g}"
    with open_store(path) as store:
        [point] = store.query("export.duration", start=lo, end=hi, stat=stat)
    assert point.value == pytest.approx(expected, rel=0.01)
    assert point.count == len(in_range(latencies, lo, hi))


@pytest.mark.parametrize("stat", ["count", "sum", "avg", "min", "max", "rate"])
def test_plain_stats_are_exact(path: Path, latencies: dict[float, list[float]], stat: str) -> None:
    """count, sum, avg, min, max and rate over a range equal the raw values' exactly."""
    lo, hi = T0 + 3000, T0 + DAY + 7200
    vals = in_range(latencies, lo, hi)
    expected = {
        "count": len(vals), "sum": sum(vals), "avg": sum(vals) / len(vals),
        "min": min(vals), "max": max(vals), "rate": len(vals) / (hi - lo),
    }[stat]  # fmt: skip
    with open_store(path) as store:
        [point] = store.query("export.duration", start=lo, end=hi, stat=stat)
    assert point.value == pytest.approx(expected, rel=1e-9)


def test_result_is_a_metric_snapshot(path: Path, latencies: dict[float, list[float]]) -> None:
    """Results are MetricSnapshots with value, start, end, tags and group."""
    with open_store(path) as store:
        [point] = store.query(
            "export.duration", start=T0, end=T0 + DAY, tags={"version": "1.0"}, stat="max"
        )
    assert isinstance(point, MetricSnapshot)
    assert isinstance(point, QueryPoint)
    assert point.start == datetime(2026, 1, 1, tzinfo=timezone.utc) == point.timestamp
    assert point.end == datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert point.tags == {"version": "1.0"}
    assert point.metric_type is MetricType.HISTOGRAM
    assert point.stat == "max"


def test_tag_filter_matches_exactly(path: Path, latencies: dict[float, list[float]]) -> None:
    """A tag filter keeps only series with exactly that value."""
    with open_store(path) as store:
        [point] = store.query(
            "export.duration", start=T0, end=T0 + 3 * DAY, tags={"version": "1.1"}, stat="count"
        )
        assert store.query("export.duration", tags={"version": "1."}, stat="count") == []
    assert point.value == 30 * 3 * 24 * 3


def test_group_by_and_interval(path: Path, latencies: dict[float, list[float]]) -> None:
    """group_by gives one series per tag value; interval one value per aligned interval."""
    with open_store(path) as store:
        points = store.query(
            "export.duration", start=T0, end=T0 + DAY, group_by="version", interval="1h",
            stat="p50",
        )  # fmt: skip
    assert len(points) == 48
    assert [p.start for p in points] == sorted(p.start for p in points)
    first = {p.group: p for p in points if p.start.timestamp() == T0}
    for version, offset in (("1.0", 0), ("1.1", 1)):
        vals = [v for i in range(offset, 6, 2) for v in latencies[T0 + i * 600]]
        assert first[version].value == pytest.approx(exact_quantile(vals, 0.5), rel=0.01)
        assert first[version].tags == {"version": version}


def test_interval_coarsened_to_max_data_points(
    path: Path, latencies: dict[float, list[float]]
) -> None:
    """More intervals than max_data_points: the interval grows (a multiple of the asked one)."""
    with open_store(path, metrics=MetricsConfig(max_data_points=10)) as store:
        points = store.query(
            "export.duration", start=T0, end=T0 + DAY, interval="10m", stat="count"
        )
    assert len(points) <= 10
    widths = {(p.end - p.start).total_seconds() for p in points}
    assert all(w % 600 == 0 for w in widths)
    assert sum(p.value for p in points) == 30 * 6 * 24


def test_counter_rate_and_sum(path: Path) -> None:
    """Counters: sum adds increments, rate divides by the interval length."""
    write(path, [counter("exports", T0 + 60 * i, 2.0) for i in range(120)])
    with open_store(path) as store:
        hours = store.query("exports", start=T0, end=T0 + 2 * HOUR, interval=3600, stat="rate")
        [total] = store.query("exports", start=T0, end=T0 + 2 * HOUR, stat="sum")
        with pytest.raises(InvalidValueError, match="counter"):
            store.query("exports", stat="p95")
    assert [p.value for p in hours] == [pytest.approx(120 / 3600)] * 2
    assert total.value == 240.0


def test_default_range_is_all_data_until_now(path: Path, clock: ManualClock) -> None:
    """Without start the range begins at the first data; without end it ends now."""
    write(path, [counter("c", T0 + 5, 1.0), counter("c", T0 + DAY + 5, 1.0)])
    with open_store(path) as store:
        [p] = store.query("c", stat="sum")
        assert p.value == 2.0
        assert p.start.timestamp() == T0
        assert p.end.timestamp() == clock.time()
        [recent] = store.query("c", start="2d", stat="sum")
        assert recent.value == 1.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"stat": "p101"}, "stat"), ({"stat": "median"}, "stat"), ({"start": "yesterday"}, "start"),
     ({"interval": "-1h"}, "interval"), ({"start": T0 + 10, "end": T0}, "end")],
)  # fmt: skip
def test_bad_arguments_name_the_argument(path: Path, kwargs: dict[str, object], field: str) -> None:
    """Invalid stat, time or interval raises InvalidValueError naming the argument."""
    write(path, [hist("h", T0, [1.0])])
    with open_store(path) as store, pytest.raises(InvalidValueError) as info:
        store.query("h", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_tags_must_be_str_mapping(path: Path) -> None:
    """Tag filters must map str to str."""
    write(path, [hist("h", T0, [1.0])])
    with open_store(path) as store, pytest.raises(InvalidTypeError, match="tags"):
        store.query("h", tags={"a": 1})  # type: ignore[dict-item]


def test_distribution_for_baselines(path: Path, latencies: dict[float, list[float]]) -> None:
    """distribution() returns the merged sketch plus exact count/sum/min/max."""
    with open_store(path) as store:
        dist = store.distribution("export.duration", start=T0, end=T0 + DAY)
        by_version = store.distributions("export.duration", T0, T0 + DAY, group_by="version")
        empty = store.distribution("nothing", start=T0, end=T0 + DAY)
    vals = in_range(latencies, T0, T0 + DAY)
    assert dist.count == len(vals)
    assert dist.sum == pytest.approx(sum(vals))
    assert (dist.min, dist.max) == (min(vals), max(vals))
    assert dist.quantile(0.95) == pytest.approx(exact_quantile(vals, 0.95), rel=0.01)
    assert set(by_version) == {"1.0", "1.1"}
    assert sum(d.count for d in by_version.values()) == dist.count
    assert empty.count == 0
    assert empty.quantile(0.5) is None


def test_retention_drops_finest_rows_after_rollup(tmp_path: Path) -> None:
    """Past retention_days only hourly rows remain; totals over any range are unchanged and
    ranges reaching into the expired part widen to whole hours."""
    clock = ManualClock(T0)
    set_clock(clock)
    path = tmp_path / "telemetry.db"
    aggs = [counter("c", T0 + i * 900, 1.0) for i in range(4 * 24 * 40)]  # 40 days, every 15 min
    write(path, aggs, MetricsConfig(retention_days=30))
    clock.set(T0 + 40 * DAY)
    with open_store(path, metrics=MetricsConfig(retention_days=30)) as store:
        report = store.maintain()
        assert report.points_deleted == 4 * 24 * 10
        assert report.fine_cutoff == T0 + 10 * DAY
        [total] = store.query("c", start=T0, end=T0 + 40 * DAY, stat="sum")
        assert total.value == len(aggs)
        # 10:15 in the expired part: widened to 10:00 (the whole hour is counted).
        [old] = store.query("c", start=T0 + 2 * DAY + 36900, end=T0 + 2 * DAY + 39600, stat="sum")
        assert old.value == 4
        # The same range in the kept part is exact.
        [new] = store.query("c", start=T0 + 20 * DAY + 36900, end=T0 + 20 * DAY + 39600, stat="sum")
        assert new.value == 3
        assert store.maintain().points_deleted == 0  # incremental: nothing left to do
        status = store.status()
    assert status.fine_cutoff == datetime(2026, 1, 11, tzinfo=timezone.utc)


def test_hourly_rows_expire_after_about_13_months(tmp_path: Path) -> None:
    """Hourly rows go after 400 days; daily rows stay forever and still answer."""
    set_clock(ManualClock(T0))
    path = tmp_path / "telemetry.db"
    write(path, [counter("c", T0 + 3600 * i, 1.0) for i in range(48)])
    with open_store(path) as store:
        store.maintain(now=T0 + 450 * DAY)
        counts = dict(store.connection.execute(
            "SELECT resolution, count(*) FROM points GROUP BY resolution").fetchall())  # fmt: skip
        [total] = store.query("c", start=T0 + 5, end=T0 + 2 * DAY - 5, stat="sum")
    assert counts == {86400: 2}
    assert total.value == 48  # widened to whole days


@given(
    lo=st.floats(min_value=0, max_value=40 * DAY),
    length=st.floats(min_value=1, max_value=40 * DAY),
)
def test_plan_covers_range_exactly_with_few_pieces(lo: float, length: float) -> None:
    """The plan tiles [lo, hi) with aligned, disjoint pieces: at most 5 of them."""
    lo, hi = T0 + lo, T0 + lo + length
    pieces = plan_ranges(lo, hi, -math.inf, -math.inf)
    assert len(pieces) <= 5
    assert pieces[0][1] == lo
    assert pieces[-1][2] == hi
    for (_, _, b), (_, a, _) in itertools.pairwise(pieces):
        assert a == b
    for res, a, b in pieces:
        if res:
            assert a % res == 0
            assert b % res == 0
            assert a < b


def test_records_for_export(path: Path, latencies: dict[float, list[float]]) -> None:
    """records() gives each stored interval with percentiles, in time order per series."""
    with open_store(path) as store:
        recs = list(store.records("export.duration", start=T0, end=T0 + HOUR))
    assert len(recs) == 6
    assert [r.start for r in recs if r.tags == {"version": "1.0"}] == [T0, T0 + 1200, T0 + 2400]
    first = recs[0].to_dict()
    assert first["start"] == "2026-01-01T00:00:00Z"
    assert first["end"] == "2026-01-01T00:01:00Z"
    assert first["p95"] == pytest.approx(exact_quantile(latencies[T0], 0.95), rel=0.01)
    assert set(first) == {"name", "type", "tags", "start", "end", "count", "sum", "min", "max",
                          "last", "p50", "p95", "p99"}  # fmt: skip


def test_events_and_sessions_queries(path: Path) -> None:
    """events() filters by time, minimum level and category; sessions() lists sessions."""
    sink = SQLiteSink(path)
    ev = {"logger": "app", "session_id": "s1", "category": "user_action"}
    sink.write([], [
        {**ev, "timestamp": T0 + i, "level": lv, "event": f"e{i}", "n": i}
        for i, lv in enumerate(["debug", "info", "warning", "error", "critical"])
    ] + [{**ev, "timestamp": T0, "level": "info", "category": "session",
          "event": "session.start", "app_version": "2.0"}])  # fmt: skip
    sink.close()
    with open_store(path) as store:
        assert [e["event"] for e in store.events(level="warning")] == ["e2", "e3", "e4"]
        assert [e["event"] for e in store.events(since=T0 + 3)] == ["e3", "e4"]
        assert [e["event"] for e in store.events(limit=2)] == ["e3", "e4"]
        assert store.events(category="session")[0]["app_version"] == "2.0"
        assert store.events(until=T0 + 1, category="user_action")[0]["n"] == 0
        [session] = store.sessions()
        with pytest.raises(InvalidValueError, match="level"):
            store.events(level="loud")
    assert session.session_id == "s1"
    assert session.app_version == "2.0"


def test_status(path: Path, latencies: dict[float, list[float]]) -> None:
    """status() reports path, size, counts, time span and migrations."""
    with open_store(path) as store:
        status = store.status()
    assert status.path == path
    assert status.size_bytes > 0
    assert status.series_count == 2
    assert status.event_count == 0
    assert status.oldest == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert status.migrations == STORAGE_MIGRATIONS.names
    assert status.fine_resolutions == [60]


def test_open_store_missing_names_the_path(tmp_path: Path) -> None:
    """A missing store raises StoreError naming the path, unless create=True."""
    with pytest.raises(StoreError, match=str(tmp_path / "nope" / "telemetry.db")):
        open_store(tmp_path / "nope")
    with open_store(tmp_path / "new", create=True) as store:
        assert isinstance(store, Store)
        assert store.series() == []


def test_open_store_moves_corrupt_file_aside(tmp_path: Path) -> None:
    """Reading a corrupt store moves it aside and says where (recovered_from)."""
    bad = tmp_path / "telemetry.db"
    bad.write_bytes(b"\x00garbage" * 512)
    with open_store(tmp_path) as store:
        assert store.recovered_from is not None
        assert store.recovered_from.exists()
        assert store.status().corrupt_files == [store.recovered_from]


def test_migrates_a_file_created_at_migration_1(tmp_path: Path, clock: ManualClock) -> None:
    """A store at schema m001 (with data) is migrated on open and its data stays queryable."""
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    STORAGE_MIGRATIONS.apply(conn, stop_before="m002_meta_and_event_category")
    sk = QuantileSketch()
    sk.add_many([1.0, 2.0, 3.0])
    conn.execute("INSERT INTO series VALUES (1, 'old', 'histogram', 's', '', '[]', 0)")
    for res in (60, 3600, 86400):
        conn.execute(
            "INSERT INTO points VALUES (1, ?, ?, 3, 6.0, 1.0, 3.0, NULL, NULL, ?)",
            (res, T0 - T0 % res + (300 if res == 60 else 0), sk.to_bytes()),
        )
    conn.close()
    with open_store(path) as store:
        assert store.status().migrations == [
            "m001_initial",
            "m002_meta_and_event_category",
            "m003_events_by_time_only",
        ]
        [p] = store.query("old", start=T0 + 60, end=T0 + 600, stat="max")  # sub-hour: finest
        assert p.value == 3.0
        assert p.count == 3
    # Opening again does not re-run anything.
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM migrations").fetchone() == (3,)
    conn.close()


def test_old_file_loses_the_category_index_and_category_queries_stay_right(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A store made before m003 loses its category index on open; category queries stay exact."""
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    STORAGE_MIGRATIONS.apply(conn, stop_before="m003_events_by_time_only")
    cats = ["storage", "error", "storage", "user_action", "error"]
    conn.executemany(
        "INSERT INTO events (timestamp, level, category, event, logger, session_id, fields) "
        "VALUES (?, 'info', ?, ?, 'app', 's', '{}')",
        [(T0 + i, c, f"e{i}") for i, c in enumerate(cats)],
    )
    conn.close()
    with open_store(path) as store:
        indexes = {
            str(r[0])
            for r in store.connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            )
        }
        assert indexes == {"events_by_time"}
        assert [e["event"] for e in store.events(category="error", limit=None)] == ["e1", "e4"]
        assert [e["event"] for e in store.events(category="storage", limit=1)] == ["e2"]
        assert store.event_kinds()["category"] == ["error", "storage", "user_action"]


def test_closed_store_raises(path: Path) -> None:
    """Using a closed store raises StoreError; close() is idempotent."""
    write(path, [hist("h", T0, [1.0])])
    store = open_store(path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.series()


def test_exported_names_are_sorted_and_importable() -> None:
    """sounding.storage exports exactly its documented public names (ruff keeps them sorted)."""
    import sounding.storage as storage

    assert set(storage.__all__) == {
        "STATS", "Distribution", "ExportRecord", "MaintenanceReport", "Migrations",
        "QueryPoint", "SQLiteSink", "SeriesInfo", "SessionInfo", "Store", "StoreStatus",
        "open_store", "parse_duration", "parse_time",
    }  # fmt: skip
    for name in storage.__all__:
        assert getattr(storage, name) is not None


def test_range_before_any_data_is_empty_and_times_always_validated(path: Path) -> None:
    """A range ending before the first data gives nothing; bad times raise even for an
    unknown metric."""
    write(path, [counter("c", T0 + DAY, 1.0)])
    with open_store(path) as store:
        assert store.query("c", end=T0, stat="sum") == []
        with pytest.raises(InvalidValueError, match="start="):
            store.query("no.such.metric", start="last tuesday")


def test_cached_sketches_are_never_handed_out(path: Path) -> None:
    """Changing a returned distribution's sketch does not change later answers."""
    write(path, [hist("h", T0, [1.0, 2.0, 3.0])])
    with open_store(path) as store:
        first = store.distribution("h", start=T0, end=T0 + 60)
        first.sketch.add(1000.0, weight=100)
        again = store.distribution("h", start=T0, end=T0 + 60)
        [p] = store.query("h", start=T0, end=T0 + 60, stat="p100")
    assert again.sketch.count == 3
    assert p.value == 3.0


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    minutes=st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=60),
    lo=st.integers(0, 3 * DAY_S),
    length=st.integers(1, 3 * DAY_S),
    step=st.sampled_from([None, 60, 300, 3600, 7200, 86400, 1234, 7 * 86400]),
)
def test_any_range_and_interval_counts_exactly(
    tmp_path: Path, minutes: list[int], lo: int, length: int, step: int | None
) -> None:
    """For any range and interval, sums equal the brute-force sum of the aggregates whose
    interval starts in the range, and interval values add up to the whole."""
    set_clock(ManualClock(T0 + 4 * DAY))
    path = tmp_path / f"p{len(list(tmp_path.iterdir()))}.db"
    write(path, [counter("c", T0 + 60 * m, float(i + 1)) for i, m in enumerate(minutes)])
    start, end = T0 + lo, T0 + lo + length
    expected = sum(float(i + 1) for i, m in enumerate(minutes) if start <= T0 + 60 * m < end)
    with open_store(path) as store:
        points = store.query("c", start=start, end=end, interval=step, stat="sum")
    assert sum(p.value for p in points) == expected
    assert all(start <= p.start.timestamp() < p.end.timestamp() <= end for p in points)


@pytest.mark.parametrize("values", [[14.294], [3.0, 1000.0], [5.0, 5.0, 5.0]])
def test_quantiles_within_observed_range_and_exact_for_few(path: Path, values: list[float]) -> None:
    """Every percentile lies in [min, max]; with one or two observations it is one of them."""
    write(path, [hist("h", T0, values)])
    with open_store(path) as store:
        got = {
            q: store.query("h", start=T0, end=T0 + 60, stat=f"p{q}")[0].value
            for q in (1, 25, 50, 75, 95, 99)
        }
    assert all(min(values) <= v <= max(values) for v in got.values())
    if len(values) <= 2:
        assert set(got.values()) <= set(values)
        assert got[50] == min(values)
        assert got[95] == max(values)


def test_weekly_intervals_start_on_monday(path: Path) -> None:
    """--interval week buckets start on Monday 00:00 UTC (ISO weeks), not on Thursday."""
    # 2026-01-01 is a Thursday; write one value a day for 14 days.
    write(path, [counter("c", T0 + i * DAY, 1.0) for i in range(14)])
    with open_store(path) as store:
        weeks = store.query("c", start=T0, end=T0 + 14 * DAY, interval="week", stat="sum")
    assert all(p.start.weekday() == 0 or p.start.timestamp() == T0 for p in weeks)
    assert [p.start.isoformat()[:10] for p in weeks] == ["2026-01-01", "2026-01-05", "2026-01-12"]
    assert [p.value for p in weeks] == [4.0, 7.0, 3.0]


@pytest.mark.parametrize("cap", [2, 7, 10, 13, 50])
def test_max_data_points_never_exceeded(path: Path, cap: int) -> None:
    """However the interval is coarsened, a query returns at most max_data_points values."""
    write(path, [counter("c", T0 + 60 * i + 37 * 60, 1.0) for i in range(0, 3 * 24 * 60, 7)])
    with open_store(path, metrics=MetricsConfig(max_data_points=cap)) as store:
        for step in ("1m", "5m", "1h", "day"):
            points = store.query("c", start=T0 + 1234, end=T0 + 3 * DAY, interval=step)
            assert 0 < len(points) <= cap


@pytest.mark.parametrize("interval", ["10s", "1", "59s"])
def test_interval_finer_than_stored_resolution_refused(path: Path, interval: str) -> None:
    """An interval finer than the stored 1 min rows is refused, naming the resolution."""
    write(path, [counter("c", T0, 1.0)])
    with open_store(path) as store, pytest.raises(InvalidValueError, match="1 min rows"):
        store.query("c", start=T0, end=T0 + HOUR, interval=interval)


def test_interval_between_multiples_grows_to_whole_rows(path: Path) -> None:
    """A 90 s interval over 1 min rows becomes 2 min: every bucket holds whole rows."""
    write(path, [counter("c", T0 + 60 * i, 1.0) for i in range(10)])
    with open_store(path) as store:
        points = store.query("c", start=T0, end=T0 + 600, interval="90s")
    assert {(p.end - p.start).total_seconds() for p in points} == {120.0}
    assert [p.value for p in points] == [2.0] * 5


def test_counter_default_stat_is_sum(path: Path) -> None:
    """A counter's default statistic is sum (a histogram's avg), and the point says so."""
    write(path, [counter("c", T0 + 60 * i, 2.0) for i in range(3)] + [hist("h", T0, [1.0, 3.0])])
    with open_store(path) as store:
        [c] = store.query("c", start=T0, end=T0 + HOUR)
        [h] = store.query("h", start=T0, end=T0 + HOUR)
    assert (c.stat, c.value) == ("sum", 6.0)
    assert (h.stat, h.value) == ("avg", 2.0)


def test_whole_range_starts_at_first_data(path: Path, clock: ManualClock) -> None:
    """Without a start, the whole-range row starts at the first stored interval, not midnight."""
    write(path, [counter("c", T0 + 13 * HOUR + 120, 1.0), counter("c", T0 + DAY + 5, 1.0)])
    with open_store(path) as store:
        [p] = store.query("c")
    assert p.start.timestamp() == T0 + 13 * HOUR + 120
    assert p.value == 2.0


def test_more_groups_than_max_data_points_is_refused(path: Path) -> None:
    """group_by over more tag values than max_data_points raises instead of exceeding it."""
    write(path, [counter("c", T0, 1.0, (("k", f"v{i}"),)) for i in range(5)])
    with open_store(path, metrics=MetricsConfig(max_data_points=4)) as store:
        with pytest.raises(InvalidValueError, match="max_data_points=4"):
            store.query("c", start=T0, end=T0 + HOUR, group_by="k")
        assert len(store.query("c", start=T0, end=T0 + HOUR, tags={"k": "v1"}, group_by="k")) == 1


def test_writer_keeps_app_name_and_when_the_level_changed(path: Path, clock: ManualClock) -> None:
    """The writer records the app's name and telemetry level, and the time only on change."""
    import sounding

    sounding.configure(app_name="meta-test", data_dir=str(path.parent))
    write(path, [counter("c", T0, 1.0)])
    clock.advance(3600)
    write(path, [counter("c", T0 + 60, 1.0)])
    with open_store(path) as store:
        meta = store.app_meta()
    assert meta["app.name"] == "meta-test"
    assert meta["app.telemetry_level"] == "off"
    assert float(meta["app.telemetry_level_set"]) == T0 + 3 * DAY


def test_read_only_open_falls_back_to_immutable(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where SQLite cannot create the WAL index (a read-only directory), the store is opened
    immutable and still reads; nothing is created next to it."""
    write(path, [counter("c", T0, 2.0)])
    real_connect = sqlite3.connect
    uris: list[str] = []

    def connect(database: str, *args: object, **kwargs: object) -> sqlite3.Connection:
        uris.append(database)
        if "immutable=1" not in database:
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", connect)
    with open_store(path, read_only=True) as store:
        [p] = store.query("c", start=T0, end=T0 + 60)
    assert p.value == 2.0
    assert [("mode=ro" in u, "immutable=1" in u) for u in uris] == [(True, False), (True, True)]


def test_read_only_open_reports_corruption_without_moving(tmp_path: Path) -> None:
    """A corrupt file opened read-only raises StoreError and stays where it is."""
    bad = tmp_path / "telemetry.db"
    bad.write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError, match="damaged"):
        open_store(tmp_path, read_only=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["telemetry.db"]


def test_filtered_view_sees_only_matching_series(path: Path) -> None:
    """store.filtered(tags) filters queries, distributions, records and series lists."""
    write(path, [counter("c", T0, 1.0, (("k", "a"),)), counter("c", T0, 2.0, (("k", "b"),)),
                 hist("h", T0, [1.0, 2.0])])  # fmt: skip
    with open_store(path) as store:
        view = store.filtered({"k": "b"})
        assert [s.name for s in view.series()] == ["c"]
        [p] = view.query("c", start=T0, end=T0 + 60)
        assert p.value == 2.0
        assert view.query("c", start=T0, end=T0 + 60, tags={"k": "a"}) == []
        assert [r.sum for r in view.records("c")] == [2.0]
        assert view.distribution("h", start=T0, end=T0 + 60).count == 0
        view.close()  # the base store stays open
        assert store.query("c", start=T0, end=T0 + 60)[0].value == 3.0
