"""Metric instruments: aggregation, tags, cardinality, validation, timing, record()."""

from __future__ import annotations

import asyncio
import gc
import math
import os
import random
import threading
import tracemalloc
from datetime import datetime, timezone

import pytest

import sounding
from sounding import MetricSnapshot, MetricType
from sounding.collection.metrics import LOCK_FREE, get_registry
from sounding.core import health
from sounding.exceptions import (
    InternalError,
    InvalidNameError,
    InvalidTypeError,
    InvalidValueError,
    MetricTypeConflictError,
)
from sounding.testing import ManualClock, capture, strict

SOUNDING_SRC = os.path.dirname(sounding.__file__)


def test_same_name_returns_same_instrument() -> None:
    """counter('x') twice is one instrument."""
    assert sounding.counter("app.clicks") is sounding.counter("app.clicks")


def test_type_conflict_raises() -> None:
    """A name used as a counter cannot become a histogram."""
    sounding.counter("app.thing")
    with pytest.raises(MetricTypeConflictError, match="counter"):
        sounding.histogram("app.thing")


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a..b", "a.", "é", "x" * 201, "a-b"])
def test_invalid_names_raise_at_definition(name: str) -> None:
    """Bad names are refused when the instrument is defined, with what is allowed."""
    with pytest.raises(InvalidNameError, match="letters, digits"):
        sounding.counter(name)


def test_non_string_name_is_a_type_error() -> None:
    """A name of the wrong type raises a TypeError subclass."""
    with pytest.raises(InvalidTypeError):
        sounding.counter(42)  # type: ignore[arg-type]


def test_counter_sums_per_series_with_default_tags() -> None:
    """Counters sum per tag set; app version and platform are added as default tags."""
    sounding.configure(app_version="3.1")
    with capture() as sink:
        c = sounding.counter("recorder.exports")
        c.inc()
        c.inc(2, tags={"format": "wav"})
        c.inc(tags={"format": "wav"})
        c.bind(format="mp3").inc(5)
        sounding.flush()
    assert sink.total("recorder.exports") == 9
    assert sink.total("recorder.exports", {"format": "wav"}) == 3
    assert sink.count("recorder.exports", {"format": "wav"}) == 2
    assert sink.total("recorder.exports", {"format": "mp3"}) == 5
    agg = sink.aggregates("recorder.exports", {"format": "wav"})[0]
    assert dict(agg.tags)["app_version"] == "3.1"
    assert agg.metric_type is MetricType.COUNTER


def test_tag_order_does_not_split_series() -> None:
    """{'a','b'} and {'b','a'} are the same series."""
    with capture() as sink:
        c = sounding.counter("t.order")
        c.inc(tags={"a": "1", "b": "2"})
        c.inc(tags={"b": "2", "a": "1"})
        sounding.flush()
    assert len(sink.aggregates("t.order")) == 1


def test_equal_tag_values_of_other_types_stay_separate_series() -> None:
    """Tag values 1, True and 1.0 (equal as dict keys) land in series "1", "True", "1.0"."""
    with capture() as sink:
        c = sounding.counter("t.typed")
        h = sounding.histogram("t.typed_h")
        for _ in range(2):  # the second round goes through the caches
            c.inc(1, {"n": 1})
            c.inc(2, {"n": True})
            c.inc(4, {"n": 1.0})
            c.inc(8, {"n": "1"})
            h.observe(5.0, {"n": True})
            h.observe(7.0, {"n": 1})
        sounding.flush()
    assert sink.total("t.typed", {"n": "1"}) == 18
    assert sink.total("t.typed", {"n": "True"}) == 4
    assert sink.total("t.typed", {"n": "1.0"}) == 8
    assert sink.count("t.typed_h", {"n": "True"}) == 2
    assert sink.count("t.typed_h", {"n": "1"}) == 2


def test_collect_resets_interval() -> None:
    """After a flush the next interval starts from zero."""
    with capture() as sink:
        c = sounding.counter("t.reset")
        c.inc(4)
        sounding.flush()
        c.inc(1)
        sounding.flush()
    assert [a.sum for a in sink.aggregates("t.reset")] == [4, 1]


def test_gauge_keeps_last_min_max() -> None:
    """A gauge reports last, min and max for the interval; inc/dec move the value."""
    with capture() as sink:
        g = sounding.gauge("mem.used", unit="By")
        for v in (5, 9, 2, 7):
            g.set(v)
        g.inc(3)
        g.dec(1)
        sounding.flush()
    (agg,) = sink.aggregates("mem.used")
    assert (agg.last, agg.min, agg.max) == (9, 2, 10)
    assert agg.unit == "By"


def test_histogram_percentiles_are_within_one_percent() -> None:
    """Histogram aggregates carry a sketch whose percentiles are within 1 %."""
    rng = random.Random(3)
    values = [rng.lognormvariate(2, 0.8) for _ in range(10_000)]
    with capture() as sink:
        h = sounding.histogram("op.duration", unit="ms")
        for v in values:
            h.observe(v)
        sounding.flush()
    sk = sink.sketch("op.duration")
    assert sk.count == len(values)
    assert math.isclose(sk.sum, sum(values), rel_tol=1e-9)
    exact = sorted(values)
    for q in (0.5, 0.95, 0.99):
        lo = exact[math.floor(q * (len(exact) - 1))]
        hi = exact[math.ceil(q * (len(exact) - 1))]
        est = sk.quantile(q)
        assert est is not None
        assert lo * 0.99 <= est <= hi * 1.01


def test_summary_is_a_distribution_of_its_own_type() -> None:
    """Summaries aggregate like histograms but keep their type."""
    with capture() as sink:
        s = sounding.summary("req.size")
        s.observe(10)
        s.bind(kind="a").observe(20)
        sounding.flush()
    assert {a.metric_type for a in sink.aggregates("req.size")} == {MetricType.SUMMARY}
    assert sink.count("req.size") == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, "3", None])
def test_bad_counter_values_are_counted_not_raised(bad: object) -> None:
    """At run time a bad value is dropped and counted; the host sees no exception."""
    with capture() as sink:
        c = sounding.counter("t.bad")
        c.inc(bad)  # type: ignore[arg-type]
        c.bind(k="v").inc(bad)  # type: ignore[arg-type]
        sounding.flush()
    assert sink.total("t.bad") == 0
    assert health.counts()["metrics.invalid_value.t.bad"] == 2
    assert sink.total("sounding.internal.metrics.invalid_value.t.bad") == 2


@pytest.mark.parametrize("bad", [float("nan"), float("-inf"), "x", None, [1]])
def test_bad_observations_are_counted_not_raised(bad: object) -> None:
    """Histograms and gauges drop non-finite or non-numeric values and count them."""
    with capture():
        sounding.histogram("t.h").observe(bad)  # type: ignore[arg-type]
        sounding.gauge("t.g").set(bad)  # type: ignore[arg-type]
    counts = health.counts()
    assert counts["metrics.invalid_value.t.h"] == 1
    assert counts["metrics.invalid_value.t.g"] == 1


def test_strict_mode_raises_internal_errors() -> None:
    """In strict (test) mode run-time failures raise so tests notice them."""
    c = sounding.counter("t.strict")
    with strict(), pytest.raises(InternalError):
        c.inc(-5)


@pytest.mark.parametrize("tags", [{"bad key": "v"}, {"": "v"}, {1: "v"}, "notadict"])
def test_bad_tags_at_run_time_are_counted(tags: object) -> None:
    """Unusable tags drop the observation and count it, never raise."""
    with capture() as sink:
        sounding.counter("t.tags").inc(1, tags=tags)  # type: ignore[arg-type]
        sounding.flush()
    assert sink.total("t.tags") == 0
    assert health.counts()["metrics.invalid_tags.t.tags"] == 1


def test_bind_with_bad_tag_key_raises() -> None:
    """bind() is definition time: a bad tag key raises."""
    with pytest.raises(InvalidNameError, match="tag key"):
        sounding.counter("t.bind").bind(**{"bad key": "x"})


def test_long_tag_values_are_truncated_and_counted() -> None:
    """Tag values are capped so one call cannot store megabytes."""
    with capture() as sink:
        sounding.counter("t.long").inc(tags={"k": "v" * 5000})
        sounding.flush()
    (agg,) = sink.aggregates("t.long")
    assert len(dict(agg.tags)["k"]) == 200
    assert health.counts()["tags.truncated"] == 1


def test_cardinality_limit_sends_new_series_to_overflow() -> None:
    """Past the limit new series go to one overflow series, counted; totals are kept."""
    sounding.configure(cardinality_limit=10)
    with capture() as sink:
        c = sounding.counter("t.card")
        for i in range(50):
            c.inc(tags={"id": str(i)})
        sounding.flush()
    aggs = sink.aggregates("t.card")
    assert len(aggs) == 11
    assert sink.total("t.card") == 50
    assert sink.total("t.card", {"overflow": "true"}) == 40
    assert health.counts()["metrics.cardinality_overflow"] >= 40


def _sounding_bytes() -> int:
    """Memory currently held by allocations made in sounding's own source files.

    tracemalloc sees every thread; counting only sounding's allocations keeps a leftover
    thread of another test (or the garbage collector's timing) out of the measurement.
    """
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, f"{SOUNDING_SRC}{os.sep}*")]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_memory_is_bounded_under_many_distinct_tag_values() -> None:
    """A stream of distinct tag values stops growing memory once the limits are reached."""
    c = sounding.counter("t.mem")

    def feed(start: int, stop: int) -> None:
        for i in range(start, stop):
            c.inc(tags={"id": str(i)})

    # No writer thread: its flush at a minute boundary would allocate a batch mid-measurement.
    with capture():
        # Fill the series (2000), the lookup cache (4 x the limit) and the tag guard's cache.
        feed(0, 20_000)
        tracemalloc.start()
        feed(20_000, 120_000)
        after_first = _sounding_bytes()
        feed(120_000, 220_000)
        after_second = _sounding_bytes()
        tracemalloc.stop()
    # 2000 tagged series, the untagged one and the overflow series.
    assert get_registry().series_count() <= 2002
    # Another 100,000 new values cost nothing more: growth is not proportional to input.
    assert after_second - after_first < 100_000
    assert sounding.get_settings().cardinality_limit == 2000


def test_histogram_memory_is_bounded_between_flushes() -> None:
    """Many observations between flushes keep only a bounded buffer and sketch."""
    h = sounding.histogram("t.hmem")

    def feed(n: int) -> None:
        for i in range(n):
            h.observe((i % 5000) + 1.0)

    with capture():  # no writer thread flushing mid-measurement
        feed(20_000)
        tracemalloc.start()
        feed(150_000)
        after_first = _sounding_bytes()
        feed(150_000)
        after_second = _sounding_bytes()
        tracemalloc.stop()
    assert after_second - after_first < 50_000


def test_threads_lose_no_increments() -> None:
    """Concurrent increments and observations from several threads are all counted."""
    c = sounding.counter("t.threads")
    h = sounding.histogram("t.threads.h")
    b = c.bind(k="v")
    with capture() as sink:

        def work() -> None:
            for _ in range(20_000):
                c.inc()
                b.inc()
                h.observe(1.5)

        threads = [threading.Thread(target=work) for _ in range(4)]
        flusher_stop = threading.Event()

        def flusher() -> None:
            while not flusher_stop.is_set():
                sounding.flush()

        f = threading.Thread(target=flusher)
        f.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        flusher_stop.set()
        f.join()
        sounding.flush()
    assert sink.total("t.threads") == 160_000
    assert sink.count("t.threads.h") == 80_000
    assert isinstance(LOCK_FREE, bool)


def test_histogram_time_decorator_and_context_manager() -> None:
    """time() works as a decorator and as a context manager, in the histogram's unit."""
    clock = ManualClock()
    with capture(clock) as sink:
        h = sounding.histogram("t.time", unit="ms")

        @h.time(tags={"k": "v"})
        def work() -> int:
            clock.advance(0.25)
            return 7

        assert work() == 7
        with h.time() as timer:
            clock.advance(0.5)
        assert timer.elapsed == 500
        sounding.flush()
    assert sink.sketch("t.time", {"k": "v"}).max == 250
    assert sink.count("t.time") == 2


def test_histogram_time_measures_the_await_of_async_functions() -> None:
    """Timing an async function measures the awaited work (prometheus_client #535)."""
    clock = ManualClock()
    with capture(clock) as sink:
        h = sounding.histogram("t.atime")

        @h.time()
        async def work() -> str:
            await asyncio.sleep(0)
            clock.advance(2.0)
            return "done"

        assert asyncio.run(work()) == "done"
        sounding.flush()
    assert sink.sketch("t.atime").max == pytest.approx(2.0, rel=0.01)


def test_time_records_even_when_the_function_raises() -> None:
    """An exception passes through untouched and the duration is still recorded."""
    with capture() as sink:
        h = sounding.histogram("t.raise")
        err = KeyError("x")

        @h.time()
        def boom() -> None:
            raise err

        with pytest.raises(KeyError) as info:
            boom()
        assert info.value is err
        sounding.flush()
    assert sink.count("t.raise") == 1


def test_record_ingests_history_at_its_own_timestamp() -> None:
    """record() places values in the interval of their timestamp, merging same-interval ones."""
    t = datetime(2026, 3, 1, 12, 0, 30, tzinfo=timezone.utc)
    with capture() as sink:
        for v in (10.0, 20.0, 30.0):
            sounding.record(MetricSnapshot(MetricType.HISTOGRAM, "hist.lat", v, t, {"v": "1"}))
        sounding.record(MetricSnapshot("counter", "hist.n", 2, t.timestamp(), {}))
        sounding.flush()
    (agg,) = sink.aggregates("hist.lat")
    assert agg.start == datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
    assert agg.end - agg.start == 60
    assert (agg.count, agg.sum, agg.min, agg.max) == (3, 60.0, 10.0, 30.0)
    assert sink.total("hist.n") == 2


@pytest.mark.parametrize(
    ("snapshot", "error"),
    [
        (MetricSnapshot(MetricType.GAUGE, "bad name", 1, 0), InvalidNameError),
        (MetricSnapshot(MetricType.GAUGE, "ok", float("nan"), 0), InvalidValueError),
        (MetricSnapshot(MetricType.COUNTER, "ok2", -1, 0), InvalidValueError),
        ("not a snapshot", InvalidTypeError),
    ],
)
def test_record_validates_strictly(snapshot: object, error: type[Exception]) -> None:
    """record() is an import API: bad input raises with a clear message."""
    with pytest.raises(error):
        sounding.record(snapshot)  # type: ignore[arg-type]


def test_default_tags_can_be_turned_off() -> None:
    """default_tags={} removes the version and platform tags."""
    sounding.configure(default_tags={})
    with capture() as sink:
        sounding.counter("t.notags").inc()
        sounding.flush()
    assert sink.aggregates("t.notags")[0].tags == ()


def test_reconfigure_flushes_under_the_old_default_tags() -> None:
    """Data recorded before a version change keeps the old version tag."""
    sounding.configure(app_version="1.0")
    with capture() as sink:
        c = sounding.counter("t.ver")
        c.inc()
        sounding.configure(app_version="2.0")
        c.inc()
        sounding.flush()
    assert sink.total("t.ver", {"app_version": "1.0"}) == 1
    assert sink.total("t.ver", {"app_version": "2.0"}) == 1


def test_locked_paths_aggregate_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the lock-free paths off (Python 3.10, free-threaded builds) nothing changes."""
    from sounding.collection import metrics as metrics_module

    monkeypatch.setattr(metrics_module, "LOCK_FREE", False)
    with capture() as sink:
        c = sounding.counter("lk.c")
        h = sounding.histogram("lk.h")
        g = sounding.gauge("lk.g")
        b = c.bind(k="v")
        bh = h.bind(k="v")

        def work() -> None:
            for i in range(5_000):
                c.inc()
                c.inc(2, tags={"k": "v"})
                b.inc()
                h.observe(float(i % 100 + 1))
                bh.observe(1.0)
                g.set(float(i))

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        c.inc(-1)
        sounding.flush()
    assert sink.total("lk.c") == 3 * 5_000 * 4
    assert sink.total("lk.c", {"k": "v"}) == 3 * 5_000 * 3
    assert sink.count("lk.h") == 3 * 5_000 * 2
    assert sink.aggregates("lk.g")[0].max == 4_999
    assert health.counts()["metrics.invalid_value.lk.c"] == 1


def test_interval_aggregates_compare_and_print_by_their_fields() -> None:
    """IntervalAggregate is compared and shown by value, also from a subclass with slots."""
    from sounding.core.types import IntervalAggregate, MetricType

    class Tagged(IntervalAggregate):
        __slots__ = ("extra",)

    a = IntervalAggregate("a", MetricType.COUNTER, (("k", "v"),), 0.0, 60.0, count=2, sum=3.0)
    b = Tagged("a", MetricType.COUNTER, (("k", "v"),), 0.0, 60.0, count=2, sum=3.0)
    b.extra = 1
    assert a == b
    assert a != IntervalAggregate("a", MetricType.COUNTER, (("k", "v"),), 0.0, 60.0, count=2)
    assert "sum=3.0" in repr(b)
    assert "count=2" in repr(b)
