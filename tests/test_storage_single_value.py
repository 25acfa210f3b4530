"""Single-value intervals (one observation, or all equal) are stored without a sketch blob."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sounding.core.clock import set_clock
from sounding.core.config import MetricsConfig
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType
from sounding.storage import SQLiteSink, _db, open_store
from sounding.testing import ManualClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def hist(start: float, values: list[float], series: str = "a") -> IntervalAggregate:
    sk = QuantileSketch()
    sk.add_many(values)
    return IntervalAggregate(
        "lat", MetricType.HISTOGRAM, (("s", series),), start, start + 60, count=len(values),
        sum=sum(values), min=min(values), max=max(values), sketch=sk,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _clock() -> None:
    """Pin "now" two days after the data, so retention keeps everything."""
    set_clock(ManualClock(T0 + 2 * 86400))


def _sparse(n: int = 180) -> list[IntervalAggregate]:
    # One observation a minute for three hours, a few minutes with two different values,
    # a few with a repeated value.
    out = []
    for i in range(n):
        v = 0.01 * (1 + (i * 37) % 101)
        if i % 17 == 0:
            out.append(hist(T0 + 60 * i, [v, v * 3]))
        elif i % 11 == 0:
            out.append(hist(T0 + 60 * i, [v, v, v]))
        else:
            out.append(hist(T0 + 60 * i, [v]))
    return out


def _write(path: Path, batches: list[list[IntervalAggregate]]) -> None:
    sink = SQLiteSink(path, MetricsConfig())
    try:
        for batch in batches:
            sink.write(batch, [])
    finally:
        sink.close()


def _to_old_format(path: Path, fraction: int = 1) -> int:
    """Rewrite single-value rows as an older writer stored them (a full sketch blob); with
    ``fraction`` n, only every n-th such row. Returns how many were rewritten."""
    conn = sqlite3.connect(path)
    try:
        got = conn.execute(
            "SELECT series_id, resolution, bucket_start, count, coalesce(min, sum) FROM points "
            "WHERE sketch = X''"
        ).fetchall()
        changed = 0
        for i, (sid, res, bucket, count, mn) in enumerate(got):
            if i % fraction:
                continue
            blob = _db.single_value_sketch(count, mn).to_bytes()
            conn.execute(
                "UPDATE points SET sketch = ?, min = coalesce(min, sum), max = coalesce(max, sum) "
                "WHERE series_id = ? AND resolution = ? "
                "AND bucket_start = ?",
                (blob, sid, res, bucket),
            )
            changed += 1
        conn.commit()
        return changed
    finally:
        conn.close()


def _answers(path: Path) -> list[object]:
    with open_store(path) as store:
        out: list[object] = []
        for stat in ("p50", "p95", "p99", "min", "max", "avg", "count"):
            for interval in (None, 60, 3600):
                pts = store.query("lat", T0, T0 + 4 * 3600, interval=interval, stat=stat)
                out.append([(p.start, p.value) for p in pts])
        dist = store.distribution("lat", T0, T0 + 4 * 3600)
        out.append((dist.count, dist.min, dist.max, dist.sketch.quantiles((0.1, 0.5, 0.9))))
        out.append([(r.start, r.count, r.p50, r.p95, r.p99) for r in store.records("lat")])
        return out


def test_single_value_rows_store_no_sketch_blob(tmp_path: Path) -> None:
    """A minute with one observation (or several equal ones) stores an empty sketch blob."""
    path = tmp_path / "t.db"
    _write(path, [_sparse()])
    conn = sqlite3.connect(path)
    try:
        kinds = dict(
            conn.execute(
                "SELECT count = 2, count(*) FROM points WHERE resolution = 60 "
                "AND length(sketch) = 0 GROUP BY count = 2"
            ).fetchall()
        )
        two = conn.execute(
            "SELECT count(*) FROM points WHERE resolution = 60 AND count = 2 "
            "AND length(sketch) > 0"
        ).fetchone()[0]
    finally:
        conn.close()
    assert kinds == {0: 180 - 11}  # every single-valued minute, none of the two-value ones
    assert two == 11


def test_mixed_old_and_new_rows_give_the_same_answers(tmp_path: Path) -> None:
    """A store whose single-value rows are partly in the older full-sketch form answers
    every quantile, count, distribution and record exactly as one in either form."""
    new, old, mixed = tmp_path / "new.db", tmp_path / "old.db", tmp_path / "mixed.db"
    for p in (new, old, mixed):
        _write(p, [_sparse()])
    assert _to_old_format(old) > 150
    assert _to_old_format(mixed, fraction=2) > 75
    expected = _answers(new)
    assert all(expected)  # every query answered something
    assert _answers(old) == expected
    assert _answers(mixed) == expected


def test_a_single_value_row_merged_with_other_values_becomes_exact_sketch(
    tmp_path: Path,
) -> None:
    """Later flushes into a single-value row (same value, then another) keep every count."""
    path = tmp_path / "t.db"
    _write(path, [[hist(T0, [2.0])], [hist(T0, [2.0, 2.0])], [hist(T0, [5.0])]])
    conn = sqlite3.connect(path)
    try:
        blob, count, mn, mx = conn.execute(
            "SELECT sketch, count, min, max FROM points WHERE resolution = 60"
        ).fetchone()
    finally:
        conn.close()
    assert (count, mn, mx) == (4, 2.0, 5.0)
    expected = QuantileSketch()
    expected.add_many([2.0, 2.0, 2.0, 5.0])
    assert len(blob) > 0
    assert QuantileSketch.from_bytes(blob) == expected


def test_one_observation_row_keeps_its_value_when_another_arrives(tmp_path: Path) -> None:
    """A one-observation row (no min/max stored) merged with another value keeps both."""
    path = tmp_path / "t.db"
    _write(path, [[hist(T0, [2.0])]])
    conn = sqlite3.connect(path)
    try:
        first = conn.execute(
            "SELECT min, max, length(sketch) FROM points WHERE resolution = 60"
        ).fetchone()
    finally:
        conn.close()
    assert first == (None, None, 0)
    with open_store(path) as store:
        [lo] = store.query("lat", T0, T0 + 60, stat="min")
    assert lo.value == 2.0
    _write(path, [[hist(T0, [5.0])]])
    with open_store(path) as store:
        dist = store.distribution("lat", T0, T0 + 60)
        [lo] = store.query("lat", T0, T0 + 60, stat="min")
        [rec] = list(store.records("lat"))
    assert (dist.count, dist.min, dist.max) == (2, 2.0, 5.0)
    assert dist.sketch.quantiles((0.0, 1.0)) == [2.0, 5.0]
    assert lo.value == 2.0
    assert (rec.count, rec.min, rec.max) == (2, 2.0, 5.0)


def test_old_full_sketch_row_merged_with_a_single_value(tmp_path: Path) -> None:
    """A single value written into an older row holding a full sketch merges into it."""
    path = tmp_path / "t.db"
    _write(path, [[hist(T0, [3.0])]])
    assert _to_old_format(path) == 3  # finest, hourly and daily rows
    _write(path, [[hist(T0, [3.0])], [hist(T0 + 60, [7.0])]])
    with open_store(path) as store:
        dist = store.distribution("lat", T0, T0 + 3600)
        [point] = store.query("lat", T0, T0 + 60, interval=60, stat="count")
    assert (dist.count, dist.min, dist.max) == (3, 3.0, 7.0)
    assert dist.sketch.quantiles((0.0, 0.5, 1.0)) == [3.0, 3.0, 7.0]
    assert point.value == 2


def test_stored_sketch_bytes_expands_single_value_rows() -> None:
    """Exports get a full sketch for a single-value row and the stored bytes otherwise."""
    expanded = _db.stored_sketch_bytes(_db.SINGLE_VALUE, 4, 1.5)
    assert expanded is not None
    sk = QuantileSketch.from_bytes(expanded)
    assert (sk.count, sk.min, sk.max, sk.quantile(0.5)) == (4, 1.5, 1.5, 1.5)
    assert _db.stored_sketch_bytes(None, 4, 1.5) is None
    assert _db.stored_sketch_bytes(expanded, 4, 1.5) == expanded
    one = _db.stored_sketch_bytes(_db.SINGLE_VALUE, 1, None, 2.5)  # min and max not stored
    assert one is not None
    assert QuantileSketch.from_bytes(one).quantile(0.5) == 2.5


def test_merge_bytes_equals_merging_the_decoded_sketch() -> None:
    """merge_bytes gives the sketch merge(from_bytes(...)) gives, negatives and zeros too."""
    a = QuantileSketch()
    a.add_many([0.5, 1.0, 2.0, 3.0])
    for values in ([1.0, 5.0, 5.0, 1e6], [-3.0, 0.0, 2.0] * 30, [7.0]):
        b = QuantileSketch()
        b.add_many(values)
        via_object, via_bytes = a.copy(), a.copy()
        via_object.merge(QuantileSketch.from_bytes(b.to_bytes()))
        via_bytes.merge_bytes(b.to_bytes())
        assert via_bytes == via_object
        assert (via_bytes.count, via_bytes.min, via_bytes.max) == (
            via_object.count, via_object.min, via_object.max,
        )  # fmt: skip
        assert via_bytes.quantiles((0.1, 0.5, 0.9)) == via_object.quantiles((0.1, 0.5, 0.9))
    with pytest.raises(ValueError, match="malformed"):
        a.merge_bytes(b"\x03garbage")
    with pytest.raises(ValueError, match="accuracies must match"):
        a.merge_bytes(QuantileSketch(0.05).to_bytes())


def test_a_migrated_store_records_its_schema_version_in_the_header(tmp_path: Path) -> None:
    """Migrating sets PRAGMA user_version; a file at version 0 is migrated on open."""
    from sounding.storage.migrations import STORAGE_MIGRATIONS

    path = tmp_path / "t.db"
    _write(path, [[hist(T0, [1.0])]])
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(
            STORAGE_MIGRATIONS.names
        )
    finally:
        conn.close()
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    try:
        STORAGE_MIGRATIONS.apply(conn, stop_before=STORAGE_MIGRATIONS.names[-1])
    finally:
        conn.close()
    _write(old, [[hist(T0, [1.0])]])
    with open_store(old) as store:
        assert store.status().migrations[-1] == STORAGE_MIGRATIONS.names[-1]
        [p] = store.query("lat", T0, T0 + 60, stat="count")
    assert p.value == 1
