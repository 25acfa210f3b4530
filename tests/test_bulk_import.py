"""Bulk import (record_many): the same store, aggregates and checks as observing live."""

from __future__ import annotations

import gc
import random
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import sounding
from sounding import _runtime
from sounding.collection._bulk import OneValueInterval
from sounding.core._gc import paused
from sounding.core.clock import set_clock
from sounding.core.sketch import QuantileSketch, single_value_sketch
from sounding.storage import open_store
from sounding.testing import ManualClock, MemorySink, capture, reset

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp()
MINUTES = 150
NAME = "bulk.latency"

#: (series, values per minute) -> how each minute's count is drawn
SHAPES = {
    "sparse": (16, lambda rng: 1),  # 2,400 intervals: more than one write (runtime.CHUNK)
    "dense": (3, lambda rng: 25),
    "mixed": (6, lambda rng: rng.choice((0, 1, 1, 2, 3))),
}


def _observations(shape: str) -> list[tuple[float, str, float]]:
    """(time, route, value) in time order, series interleaved as an export has them."""
    series, per_minute = SHAPES[shape]
    rng = random.Random(11)
    out = []
    for m in range(MINUTES):
        for s in range(series):
            n = per_minute(rng)
            for k in range(n):
                t = T0 + m * 60 + k * 60 / max(n, 1)
                # Some minutes repeat one value: single-valued rows with a count above one.
                v = 2.5 if (m + s) % 13 == 0 else round(rng.lognormvariate(0, 1), 6)
                out.append((t, f"r{s}", v))
    out.sort(key=lambda o: o[0])
    return out


def _snapshots(obs: list[tuple[float, str, float]]) -> list[sounding.MetricSnapshot]:
    return [
        sounding.MetricSnapshot("histogram", NAME, v, datetime.fromtimestamp(t, timezone.utc),
                                {"route": route, "region": "eu"})
        for t, route, v in obs
    ]  # fmt: skip


def _start(data_dir: Path, clock: ManualClock) -> None:
    reset()
    set_clock(clock)
    sounding.configure(app_name="bulk", data_dir=data_dir)
    _runtime.get_runtime().set_manual(True)


def _live(data_dir: Path, obs: list[tuple[float, str, float]]) -> None:
    """Observe each value at its time, flushing every interval as the writer does."""
    clock = ManualClock(T0)
    _start(data_dir, clock)
    hist = sounding.histogram(NAME)
    minute = T0
    for t, route, v in obs:
        while t >= minute + 60:
            minute += 60
            clock.set(minute)
            assert sounding.flush()
        clock.set(t)
        hist.observe(v, tags={"route": route, "region": "eu"})
    clock.set(minute + 60)
    assert sounding.flush()


def _bulk(data_dir: Path, obs: list[tuple[float, str, float]]) -> None:
    _start(data_dir, ManualClock(T0 + MINUTES * 60 + 60))
    assert sounding.record_many(_snapshots(obs)) == len(obs)
    assert sounding.flush()


def _answers(data_dir: Path) -> dict[tuple[object, ...], list[tuple[float, float | None]]]:
    end = T0 + MINUTES * 60 + 60
    out = {}
    with open_store(data_dir) as store:
        for stat in ("count", "sum", "min", "max", "p95", "p50"):
            for interval in (None, 60, 3600, 86400):
                for group_by in (None, "route"):
                    pts = store.query(NAME, T0, end, interval=interval, stat=stat,
                                      group_by=group_by)  # fmt: skip
                    out[(stat, interval, group_by)] = [
                        (p.start, p.group, p.value) for p in pts  # type: ignore[misc]
                    ]
    return out


def _same(got: dict[tuple[object, ...], list], want: dict[tuple[object, ...], list]) -> None:  # type: ignore[type-arg]
    assert got.keys() == want.keys()
    for key, points in want.items():
        if key[0] == "sum":
            # The same values summed in another order (per interval, then per batch).
            assert [(s, g) for s, g, _ in got[key]] == [(s, g) for s, g, _ in points], key
            assert [v for *_, v in got[key]] == pytest.approx([v for *_, v in points], rel=1e-12)
        else:
            assert got[key] == points, key


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_bulk_import_reads_back_as_live_observations(tmp_path: Path, shape: str) -> None:
    """Counts, sums, min, max, p50 and p95 at every resolution equal the live writer's."""
    obs = _observations(shape)
    _live(tmp_path / "live", obs)
    _bulk(tmp_path / "bulk", obs)
    want = _answers(tmp_path / "live")
    assert len(want[("count", 60, "route")]) > 100
    _same(_answers(tmp_path / "bulk"), want)


def test_bulk_import_into_stored_rows_merges_with_them(tmp_path: Path) -> None:
    """An import into minutes, hours and days the store already holds adds to those rows."""
    obs = _observations("mixed")
    early, late = obs[::2], obs[1::2]
    _live(tmp_path / "live", obs)
    clock = ManualClock(T0 + MINUTES * 60 + 60)
    _start(tmp_path / "both", clock)
    sounding.record_many(_snapshots(early))
    assert sounding.flush()
    sounding.record_many(_snapshots(late))
    assert sounding.flush()
    _same(_answers(tmp_path / "both"), _answers(tmp_path / "live"))


def _stored_points(path: Path, batches: list[list[Any]]) -> list[tuple[object, ...]]:
    """Every points row a new store at ``path`` holds after writing ``batches`` in turn."""
    from sounding.core.config import MetricsConfig
    from sounding.storage import SQLiteSink

    sink = SQLiteSink(path, MetricsConfig())
    for batch in batches:
        sink.write(batch, [])
    sink.close()
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT resolution, bucket_start, count, sum, min, max, last, sketch FROM points "
            "ORDER BY resolution, bucket_start"
        ).fetchall()
    finally:
        conn.close()


def _view(sink: MemorySink) -> list[tuple[object, ...]]:
    sounding.flush()
    return sorted(
        (a.name, a.tags, a.start, a.count, a.min, a.max, a.last, a.sum,
         None if a.sketch is None else a.sketch.quantiles((0.01, 0.25, 0.5, 0.95, 0.99)),
         a.sketch)
        for a in sink.metrics
        if a.name.startswith("bulk.")
    )  # fmt: skip


def _mixed_kinds() -> list[sounding.MetricSnapshot]:
    when = [datetime.fromtimestamp(T0 + 60 * i, timezone.utc) for i in range(40)]
    out = []
    for i, t in enumerate(when):
        out.append(sounding.MetricSnapshot("histogram", "bulk.h", 0.5 + i % 7, t, {"a": "x"}))
        out.append(sounding.MetricSnapshot("summary", "bulk.s", -1.0 * (i % 3), t))
        out.append(sounding.MetricSnapshot("gauge", "bulk.g", float(i % 4), t, {"q": "1"}))
        out.append(sounding.MetricSnapshot("counter", "bulk.c", i % 2, t, {"b": "y", "a": "x"}))
    return out


class _Snapshot(sounding.MetricSnapshot):
    """A subclass (an application's own snapshot type)."""


class _Float(float):
    """A float subclass (as numpy's float64 is)."""


def _unusual() -> list[sounding.MetricSnapshot]:
    """What the careful loop takes: float subclasses, int tag values, a subclass of the
    snapshot, one tag set in two orders."""
    out: list[sounding.MetricSnapshot] = []
    for i in range(30):
        t = datetime.fromtimestamp(T0 + 20 * i, timezone.utc)
        out.append(sounding.MetricSnapshot("histogram", "bulk.u", _Float(i % 5 / 4 + 1), t,
                                           {"code": 200 + i % 2}))  # type: ignore[arg-type,dict-item]
        out.append(_Snapshot("gauge", "bulk.v", float(i), t, {"a": "1", "b": "2"}))  # type: ignore[arg-type]
        out.append(sounding.MetricSnapshot("gauge", "bulk.v", float(-i), t, {"b": "2", "a": "1"}))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize(
    "snaps",
    [
        pytest.param(_unusual(), id="unusual"),
        pytest.param(_mixed_kinds(), id="kinds"),
        pytest.param(_snapshots(_observations("sparse")), id="sparse"),
        pytest.param(_snapshots(_observations("mixed")), id="mixed"),
    ],
)
def test_record_many_hands_over_what_record_does(
    clock: ManualClock, snaps: list[sounding.MetricSnapshot]
) -> None:
    """Every aggregate (counts, sums, extremes, last values, sketches) equals record()'s."""
    with capture(clock) as one_by_one:
        for s in snaps:
            sounding.record(s)
        expected = _view(one_by_one)
    with capture(clock) as bulk:
        assert sounding.record_many(iter(snaps)) == len(snaps)
        got = _view(bulk)
    assert [g[:7] for g in got] == [e[:7] for e in expected]
    # record() adds a minute's values one by one, record_many with fsum (as it always did).
    assert [g[7] for g in got] == pytest.approx([e[7] for e in expected], rel=1e-12)
    assert [g[8:] for g in got] == [e[8:] for e in expected]  # the same buckets
    assert len(got) >= 20


def test_imports_and_records_into_one_series_hand_over_what_record_does(
    clock: ManualClock,
) -> None:
    """A sparse import kept as a run, then a second import and record() into the same
    series' minutes (some new, some already there), hand over what record() alone does."""
    rng = random.Random(3)

    def snap(minute: int, second: int) -> sounding.MetricSnapshot:
        when = datetime.fromtimestamp(T0 + 60 * minute + second, timezone.utc)
        return sounding.MetricSnapshot("histogram", "bulk.r", round(rng.uniform(1, 9), 3),
                                       when, {"route": "r1"})  # fmt: skip

    first = [snap(m, 1) for m in range(0, 40, 2)]
    second = [snap(m, 2) for m in range(0, 40, 3)]
    third = [snap(m, 3) for m in (5, 6, 41)]
    with capture(clock) as one_by_one:
        for s in [*first, *second, *third]:
            sounding.record(s)
        expected = _view(one_by_one)
    for split in ("import-import-record", "import-record-import"):
        with capture(clock) as bulk:
            sounding.record_many(first)
            if split == "import-import-record":
                sounding.record_many(second)
                for s in third:
                    sounding.record(s)
            else:
                for s in third:
                    sounding.record(s)
                sounding.record_many(second)
            got = _view(bulk)
        assert [g[:7] for g in got] == [e[:7] for e in expected], split
        assert [g[7] for g in got] == pytest.approx([e[7] for e in expected], rel=1e-12)
        assert [g[8:] for g in got] == [e[8:] for e in expected], split
    assert len(expected) == 20 + 7 + 2  # even minutes, odd multiples of 3, minutes 5 and 41


def test_tag_values_that_compare_equal_stay_separate_series(sink: MemorySink) -> None:
    """Tag values 1, 1.0 and True are equal as keys but give the series "1", "1.0", "True"."""
    t = datetime.fromtimestamp(T0, timezone.utc)
    snaps = [
        sounding.MetricSnapshot("counter", "bulk.codes", 1, t, {"code": value})  # type: ignore[dict-item]
        for value in (1, 1.0, True, "1")
    ]
    sounding.record_many(snaps)
    sounding.flush()
    got = sorted((dict(a.tags)["code"], a.count) for a in sink.aggregates("bulk.codes"))
    assert got == [("1", 2), ("1.0", 1), ("True", 1)]


def test_a_sparse_histogram_interval_builds_its_sketch_when_read(sink: MemorySink) -> None:
    """A one-observation interval's sketch is built on first use and equals add()'s."""
    t = datetime.fromtimestamp(T0, timezone.utc)
    sounding.record_many([sounding.MetricSnapshot("histogram", "bulk.one", 3.25, t)])
    sounding.flush()
    (agg,) = sink.aggregates("bulk.one")
    assert isinstance(agg, OneValueInterval)
    assert agg.lazy
    expected = QuantileSketch()
    expected.add(3.25)
    assert agg.sketch == expected
    assert not agg.lazy
    assert agg.sketch is not None
    assert agg.sketch.to_bytes() == expected.to_bytes()
    assert (agg.count, agg.sum, agg.min, agg.max) == (1, 3.25, 3.25, 3.25)


@pytest.mark.parametrize("later", [2.0, 9.0])
def test_record_into_an_imported_one_value_interval_keeps_both_values(
    sink: MemorySink, later: float
) -> None:
    """record() into a minute record_many left with one value counts both in the sketch
    (the sketch was built from the new minimum, losing the imported value)."""
    t = datetime.fromtimestamp(T0, timezone.utc)
    t2 = datetime.fromtimestamp(T0 + 5, timezone.utc)
    sounding.record_many([sounding.MetricSnapshot("histogram", "bulk.two", 5.0, t)])
    sounding.record(sounding.MetricSnapshot("histogram", "bulk.two", later, t2))
    sounding.flush()
    (agg,) = sink.aggregates("bulk.two")
    expected = QuantileSketch()
    expected.add_many([5.0, later])
    assert agg.sketch is not None
    assert agg.sketch.to_bytes() == expected.to_bytes()
    assert (agg.count, agg.min, agg.max) == (2, min(5.0, later), max(5.0, later))


@pytest.mark.parametrize("value", [3.25, -0.75, 0.0, 1e-12, 1e300])
@pytest.mark.parametrize("weight", [1, 7])
def test_single_value_sketch_equals_adding_the_value(value: float, weight: int) -> None:
    """single_value_sketch(v, w) is QuantileSketch() plus add(v, w), to the byte."""
    expected = QuantileSketch()
    expected.add(value, weight)
    got = single_value_sketch(value, weight)
    assert got == expected
    assert got.to_bytes() == expected.to_bytes()
    assert (got.count, got.sum, got.min, got.max) == (weight, value * weight, value, value)
    got.add(value * 2)  # a real, independent sketch
    assert got.count == weight + 1
    assert expected.count == weight


@pytest.mark.parametrize(
    "shape", ["lognormal", "three-values", "decades", "tiny", "one"],
)
def test_indexed_sketch_equals_add_many_to_the_byte(shape: str) -> None:
    """A rollup's sketch built from its values' bucket indices is add_many's, to the byte
    (also for spans past the run limit and one value); zeros and negatives get no indices."""
    from sounding.core.sketch import bucket_indices, indexed_sketch

    rng = random.Random(shape)
    draw = {
        "lognormal": lambda: rng.lognormvariate(0, 1),
        "three-values": lambda: rng.choice((1.0, 2.5, 3.0)),
        "decades": lambda: 10 ** rng.uniform(-8, 300),
        "tiny": lambda: rng.uniform(1e-9, 1e-6),
        "one": lambda: 7.25,
    }[shape]
    for n in (1, 2, 60, 1000, 5000):
        values = [draw() for _ in range(n)]
        idx = bucket_indices(values)
        assert idx is not None
        expected = QuantileSketch()
        expected.add_many(values)
        for got in (indexed_sketch(values, idx), indexed_sketch(values, idx, min(values),
                                                                 max(values))):
            assert got.to_bytes() == expected.to_bytes()
            assert got == expected
            assert got.quantile(0.95) == expected.quantile(0.95)
    assert bucket_indices([1.0, 0.0]) is None
    assert bucket_indices([2.0, -1.0]) is None
    assert bucket_indices([]) is None


def test_the_gc_pause_nests_and_restores_what_it_found() -> None:
    """The collector is off inside (nested) pauses and back as it was after the last one."""
    assert gc.isenabled()
    with paused():
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()  # the host had it off: it stays off
    finally:
        gc.enable()


def test_a_huge_int_observation_is_stored_as_a_float(tmp_path: Path) -> None:
    """One int observation beyond SQLite's INTEGER (a sketch minimum) lands as a REAL row."""
    _start(tmp_path / "big", ManualClock(T0 + 120))
    sounding.histogram("bulk.big").observe(10**300)
    assert sounding.flush()
    with open_store(tmp_path / "big") as store:
        [point] = store.query("bulk.big", T0, T0 + 3600, stat="max")
    assert point.value == 1e300


@pytest.mark.parametrize(
    ("offset", "backwards"),
    [(0.0, False), (0.0, True), (0.5, False)],
    ids=["in-order", "backwards", "fractional-starts"],
)
def test_runs_of_one_value_intervals_are_stored_as_built_ones(
    tmp_path: Path, offset: float, backwards: bool
) -> None:
    """A run of unbuilt one-value intervals writes the same rows as the same intervals with
    their sketches built (the one-by-one path), whatever their order and starts."""

    from sounding.core.types import IntervalAggregate, MetricType

    set_clock(ManualClock(T0 + 3 * 86400))
    rng = random.Random(5)
    starts = [T0 + 60 * i + offset for i in range(400)]
    if backwards:
        starts.reverse()
    values = [round(rng.lognormvariate(0, 1), 4) for _ in starts]
    kind, tags = MetricType.HISTOGRAM, (("route", "r1"),)
    pairs = list(zip(starts, values, strict=True))
    lazy = [OneValueInterval("bulk.w", kind, tags, s, s + 60, v) for s, v in pairs]
    built = [
        IntervalAggregate("bulk.w", kind, tags, s, s + 60, 1, v, v, v,
                          sketch=single_value_sketch(v))
        for s, v in pairs
    ]  # fmt: skip
    # The second batch merges into stored hours and days.
    rows = [
        _stored_points(tmp_path / f"{name}.db", [aggs[:150], aggs[150:]])
        for name, aggs in (("lazy", lazy), ("built", built))
    ]
    assert all(isinstance(a, OneValueInterval) and a.lazy for a in lazy)  # never built
    assert rows[0] == rows[1]
    assert len(rows[0]) > 400



@pytest.mark.parametrize(
    ("field", "new"),
    [("count", 3), ("sum", 9.5), ("min", 0.25), ("max", 8.0), ("last", 4.0), ("sketch", None)],
)
def test_a_changed_one_value_interval_is_no_longer_lazy_and_is_stored_as_changed(
    tmp_path: Path, field: str, new: object
) -> None:
    """Changing any field of a lazy interval stores the others and builds the sketch
    first (lazy ends); a run holding it is written with the change, not as one value."""

    from sounding.core.types import IntervalAggregate, MetricType

    set_clock(ManualClock(T0 + 3 * 86400))
    kind, tags = MetricType.HISTOGRAM, (("route", "r1"),)
    run = [OneValueInterval("bulk.c", kind, tags, T0 + 60 * i, T0 + 60 * i + 60, 2.0 + i)
           for i in range(20)]  # fmt: skip
    changed = run[7]
    assert changed.lazy
    assert (changed.count, changed.sum, changed.min, changed.max) == (1, 9.0, 9.0, 9.0)
    setattr(changed, field, new)
    assert not changed.lazy
    expected = {"count": 1, "sum": 9.0, "min": 9.0, "max": 9.0, "last": None}
    expected[field] = new  # type: ignore[assignment]
    assert {k: getattr(changed, k) for k in expected} == expected
    if field != "sketch":
        assert changed.sketch == single_value_sketch(9.0)
    plain = IntervalAggregate("bulk.c", kind, tags, changed.start, changed.end, changed.count,
                              changed.sum, changed.min, changed.max, changed.last,
                              changed.sketch)  # fmt: skip
    assert changed == plain
    rows = [
        _stored_points(tmp_path / f"{name}.db", [aggs])
        for name, aggs in (("run", run), ("plain", [*run[:7], plain, *run[8:]]))
    ]
    assert rows[0] == rows[1]
    fine = [r for r in rows[0] if r[0] == 60 and r[1] == changed.start]
    assert fine[0][2] == expected["count"]


def test_a_series_whose_run_comes_back_in_a_batch_or_is_stored_merges_as_built() -> None:
    """A run taken whole, then the same series' minutes again (in the batch, in the file),
    writes the same rows as the same intervals with built sketches."""
    import tempfile

    from sounding.core.config import MetricsConfig
    from sounding.core.types import IntervalAggregate, MetricType
    from sounding.storage import SQLiteSink

    set_clock(ManualClock(T0 + 3 * 86400))
    rng = random.Random(11)
    kind = MetricType.HISTOGRAM
    a, b = (("route", "a"),), (("route", "b"),)

    def run(tags: Any, first: int, n: int) -> list[tuple[Any, float, float]]:
        return [(tags, T0 + 60 * (first + i), round(rng.lognormvariate(0, 1), 4))
                for i in range(n)]  # fmt: skip

    # a's minutes 0-29, b's, three of a's again (too few for a run), more of b's, a's 20-49
    # (ten minutes twice in one batch, three of them three times); then most of it again.
    batch = run(a, 0, 30) + run(b, 0, 30) + run(a, 25, 3) + run(b, 40, 10) + run(a, 20, 30)
    batches = [batch, run(a, 10, 40) + run(b, 25, 10)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("lazy", "built"):
            sink = SQLiteSink(Path(tmp) / f"{name}.db", MetricsConfig())
            for triples in batches:
                aggs = [
                    OneValueInterval("bulk.m", kind, t, s, s + 60, v) if name == "lazy"
                    else IntervalAggregate("bulk.m", kind, t, s, s + 60, 1, v, v, v,
                                           sketch=single_value_sketch(v))
                    for t, s, v in triples
                ]  # fmt: skip
                sink.write(aggs, [])
            sink.close()
            conn = sqlite3.connect(Path(tmp) / f"{name}.db")
            rows.append(conn.execute(
                "SELECT series_id, resolution, bucket_start, count, sum, min, max, last, sketch "
                "FROM points ORDER BY series_id, resolution, bucket_start"
            ).fetchall())  # fmt: skip
            conn.close()
    assert rows[0] == rows[1]
    fine = [r for r in rows[0] if r[1] == 60]
    assert len(fine) == 50 + 45  # a's minutes 0-49, b's 0-34 and 40-49
    assert max(r[3] for r in fine) == 4  # a's minutes 25-27: three times, then once more


class _SecondWriteFails:
    """An output that stores every chunk but the second one it is handed."""

    name = "second"

    def __init__(self) -> None:
        self.calls = 0
        self.stored: list[str] = []

    def write(self, metrics: list[Any], events: list[Any], deadline: float | None) -> bool:
        self.calls += 1
        if self.calls == 2:
            raise OSError("down for one write")
        self.stored.extend(dict(agg.tags)["i"] for agg in metrics)
        return True

    def close(self) -> None:
        pass


def test_a_write_in_chunks_keeps_exactly_the_unstored_rest_for_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk failing mid-batch leaves the rest (not the stored chunk) for the next flush."""
    monkeypatch.setattr(_runtime, "CHUNK", 5)
    rt = _runtime.get_runtime()
    out = _SecondWriteFails()
    with capture():
        rt.add_output(out)
        c = sounding.counter("bulk.chunks")
        for i in range(12):
            c.inc(tags={"i": f"{i:02d}"})
        sounding.flush()
        first = list(out.stored)
        assert rt.pending()[0] == 12 - len(first)
        sounding.flush()
    assert len(first) == 5
    assert sorted(out.stored) == [f"{i:02d}" for i in range(12)]  # each stored once


def test_what_is_kept_of_a_write_in_flight_is_the_batch_past_its_stored_offsets() -> None:
    """A slot's in-flight batch goes back to its retry buffer past inflight_done, then resets."""
    from sounding.outputs import Slot

    slot = Slot(_SecondWriteFails())  # type: ignore[arg-type]
    slot.pending_metrics = ["older"]  # type: ignore[list-item]
    events: list[Any] = [{"e": 1}, {"e": 2}]
    slot.inflight = (list(range(6)), events)  # type: ignore[arg-type]
    slot.inflight_done = (4, 1)
    _runtime.get_runtime()._keep_slot(slot)
    assert slot.pending_metrics == [4, 5, "older"]  # type: ignore[comparison-overlap]
    assert slot.pending_events == [{"e": 2}]
    assert slot.inflight == ([], [])
    assert slot.inflight_done == (0, 0)


def _one_value_run(n: int, first: float) -> list[OneValueInterval]:
    """``n`` one-observation minutes of one histogram series from ``first``."""
    from sounding.core.types import MetricType

    tags = (("route", "a"),)
    return [
        OneValueInterval(NAME, MetricType.HISTOGRAM, tags, first + 60 * i, first + 60 * i + 60,
                         float(i % 7))
        for i in range(n)
    ]  # fmt: skip


def test_a_bulk_write_checks_its_series_and_a_small_write_turns_the_keys_on(
    tmp_path: Path,
) -> None:
    """A bulk chunk checks its series itself (a stale cached id raises, no orphan rows);
    the next small write runs with the connection's foreign keys on again."""
    from sounding.core.exceptions import StoreError
    from sounding.storage.sink import BULK_WRITE_AGGREGATES, SQLiteSink

    sink = SQLiteSink(tmp_path / "t.db")
    first = time.time() // 86400 * 86400 - 3 * 86400  # recent: retention keeps the rows
    sink.write(_one_value_run(BULK_WRITE_AGGREGATES, first), [])
    ((sid, kind),) = sink._known.values()
    sink._known = dict.fromkeys(sink._known, (sid + 1000, kind))  # a stale cache
    later = first + 86400
    with pytest.raises(StoreError, match="not in the store"):
        sink.write(_one_value_run(BULK_WRITE_AGGREGATES, later), [])
    sink.write(_one_value_run(BULK_WRITE_AGGREGATES, later), [])  # ids looked up again
    sink.write(_one_value_run(1, later + 86400), [])
    conn = sink._conn
    assert conn is not None
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    orphans = conn.execute(
        "SELECT count(*) FROM points WHERE series_id NOT IN (SELECT id FROM series)"
    ).fetchone()[0]
    finest = conn.execute(
        "SELECT count(*) FROM points WHERE series_id = ? AND resolution = 60", (sid,)
    ).fetchone()[0]
    sink.close()
    assert orphans == 0
    assert finest == 2 * BULK_WRITE_AGGREGATES + 1


class _Pragmas:
    """A connection that keeps the ``PRAGMA foreign_keys`` statements run on it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.pragmas: list[str] = []

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("PRAGMA foreign_keys"):
            self.pragmas.append(sql)
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_bulk_writes_in_a_row_switch_the_keys_off_once_and_maintenance_has_them_on(
    tmp_path: Path,
) -> None:
    """Chunks of an import keep their prepared statements (the pragma is not switched
    between them); maintenance after them runs with the foreign keys on."""
    from sounding.storage.sink import BULK_WRITE_AGGREGATES, SQLiteSink

    sink = SQLiteSink(tmp_path / "t.db")
    first = time.time() // 86400 * 86400 - 3 * 86400
    sink.write(_one_value_run(1, first - 3600), [])  # opens the connection (and maintains)
    spy = _Pragmas(sink._conn)
    sink._conn = spy  # type: ignore[assignment]
    for day in range(3):
        sink.write(_one_value_run(BULK_WRITE_AGGREGATES, first + day * 86400), [])
    assert spy.pragmas == ["PRAGMA foreign_keys = OFF"]
    sink.maintain()
    assert spy.pragmas == ["PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON"]
    assert spy.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    rows = spy.execute("SELECT count(*) FROM points WHERE resolution = 60").fetchone()[0]
    sink.close()
    assert rows == 3 * BULK_WRITE_AGGREGATES + 1


def test_a_bulk_write_leaves_the_sketch_cache_to_live_flushes(tmp_path: Path) -> None:
    """A bulk chunk's new hourly and daily sketches are not kept decoded (a live flush's
    are); a later write into one of those rows merges with what is stored."""
    from sounding.core.types import IntervalAggregate, MetricType
    from sounding.storage.sink import BULK_WRITE_AGGREGATES, SQLiteSink

    sink = SQLiteSink(tmp_path / "t.db")
    first = time.time() // 86400 * 86400 - 3 * 86400
    run = _one_value_run(BULK_WRITE_AGGREGATES, first)
    sink.write(run, [])
    assert len(sink._cache._items) == 0
    last = run[-1]
    sk = QuantileSketch()
    sk.add_many([1.5, 2.5])
    live = IntervalAggregate(NAME, MetricType.HISTOGRAM, last.tags, last.end, last.end + 60, 2,
                             4.0, 1.5, 2.5, sketch=sk)  # fmt: skip
    sink.write([live], [])
    assert len(sink._cache._items) > 0  # the live flush's rollups are kept
    conn = sink._conn
    assert conn is not None
    hour = last.end // 3600 * 3600
    (count,) = conn.execute(
        "SELECT count FROM points WHERE resolution = 3600 AND bucket_start = ?", (hour,)
    ).fetchone()
    sink.close()
    in_hour = sum(1 for a in run if a.start // 3600 * 3600 == hour)
    assert count == in_hour + 2


class _KeysStayOff:
    """A connection whose ``PRAGMA foreign_keys = ON`` fails (a broken connection)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "PRAGMA foreign_keys = ON":
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def test_a_connection_whose_foreign_keys_stay_off_is_not_reused(tmp_path: Path) -> None:
    """The bulk write is kept; the next (small) write, whose keys cannot be turned on
    again, opens a new connection, keys on."""
    from sounding.storage.sink import BULK_WRITE_AGGREGATES, SQLiteSink

    sink = SQLiteSink(tmp_path / "t.db")
    first = time.time() // 86400 * 86400 - 3 * 86400
    sink.write(_one_value_run(1, first - 3600), [])  # opens the connection
    broken = _KeysStayOff(sink._conn)
    sink._conn = broken  # type: ignore[assignment]
    sink.write(_one_value_run(BULK_WRITE_AGGREGATES, first), [])  # does not raise
    sink.write(_one_value_run(1, first + 86400), [])
    conn = sink._conn
    assert conn is not None
    assert conn is not broken
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    rows = conn.execute("SELECT count(*) FROM points WHERE resolution = 60").fetchone()[0]
    sink.close()
    assert rows == BULK_WRITE_AGGREGATES + 2
