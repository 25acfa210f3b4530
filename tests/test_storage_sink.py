"""The SQLite writer: files, transactions, merging on upsert, events, sessions, faults."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sounding.collection.sink import Sink
from sounding.core import health
from sounding.core.clock import set_clock
from sounding.core.config import MetricsConfig
from sounding.core.exceptions import InternalError, StoreError
from sounding.core.sketch import QuantileSketch
from sounding.core.types import IntervalAggregate, MetricType, TagKey
from sounding.storage import SQLiteSink, _db, open_store
from sounding.testing import ManualClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a day boundary


def hist(
    name: str, start: float, values: list[float], tags: TagKey = (), step: float = 60.0
) -> IntervalAggregate:
    sk = QuantileSketch()
    sk.add_many(values)
    return IntervalAggregate(
        name, MetricType.HISTOGRAM, tags, start, start + step, count=len(values),
        sum=sum(values), min=min(values), max=max(values), sketch=sk,
    )  # fmt: skip


def counter(name: str, start: float, n: int, total: float, tags: TagKey = ()) -> IntervalAggregate:
    return IntervalAggregate(name, MetricType.COUNTER, tags, start, start + 60, count=n, sum=total)


def gauge(name: str, start: float, last: float, lo: float, hi: float) -> IntervalAggregate:
    return IntervalAggregate(
        name, MetricType.GAUGE, (), start, start + 60, count=2, sum=lo + hi, min=lo, max=hi,
        last=last,
    )  # fmt: skip


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _clock() -> None:
    """Pin "now" two days after the data, so retention keeps everything written here."""
    set_clock(ManualClock(T0 + 2 * 86400))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "telemetry.db"


@pytest.fixture
def sink(db: Path) -> SQLiteSink:
    s = SQLiteSink(db, MetricsConfig())
    yield s  # type: ignore[misc]
    s.close()


def test_is_a_sink(sink: SQLiteSink) -> None:
    """SQLiteSink satisfies the runtime's Sink protocol."""
    assert isinstance(sink, Sink)


def test_creates_private_dir_and_file_in_wal_mode(sink: SQLiteSink, db: Path) -> None:
    """The first write creates the directory 0700 and the file 0600, in WAL mode."""
    assert not db.exists()  # opened lazily
    sink.write([counter("c", T0, 1, 1.0)], [])
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]


def test_data_dir_means_telemetry_db(tmp_path: Path) -> None:
    """A directory path stores into <dir>/telemetry.db."""
    s = SQLiteSink(tmp_path / "appdir")
    s.write([counter("c", T0, 1, 1.0)], [])
    s.close()
    assert (tmp_path / "appdir" / "telemetry.db").is_file()


def test_counters_add_on_upsert_at_every_resolution(sink: SQLiteSink, db: Path) -> None:
    """Two flushes of the same bucket add up; hourly and daily rows hold the same totals."""
    sink.write([counter("c", T0, 2, 5.0)], [])
    sink.write([counter("c", T0 + 30, 1, 2.5), counter("c", T0 + 3600, 1, 1.0)], [])
    got = rows(db, "SELECT resolution, bucket_start, count, sum FROM points ORDER BY 1, 2")
    assert got == [
        (60, T0, 3, 7.5),
        (60, T0 + 3600, 1, 1.0),
        (3600, T0, 3, 7.5),
        (3600, T0 + 3600, 1, 1.0),
        (86400, T0, 4, 8.5),
    ]


def test_gauges_keep_last_by_time_and_extremes(sink: SQLiteSink, db: Path) -> None:
    """A gauge keeps the value of the latest interval whatever the write order, and min/max."""
    sink.write([gauge("g", T0 + 120, 7.0, 5.0, 9.0)], [])
    sink.write([gauge("g", T0 + 60, 1.0, -3.0, 4.0)], [])  # older data arriving late
    got = rows(db, "SELECT last, min, max FROM points WHERE resolution = 86400")
    assert got == [(7.0, -3.0, 9.0)]


def test_histograms_merge_sketches(sink: SQLiteSink, db: Path) -> None:
    """Histogram rows merge sketches exactly: the day's sketch equals the union."""
    a = [float(v) for v in range(1, 501)]
    b = [float(v) for v in range(501, 1001)]
    sink.write([hist("h", T0, a)], [])
    sink.write([hist("h", T0 + 60, b)], [])
    [(blob, n, total)] = rows(db, "SELECT sketch, count, sum FROM points WHERE resolution=86400")
    merged = QuantileSketch.from_bytes(blob)  # type: ignore[arg-type]
    expected = QuantileSketch()
    expected.add_many(a + b)
    assert merged == expected
    assert (n, total) == (1000, sum(a + b))


def test_one_transaction_per_flush(sink: SQLiteSink, db: Path) -> None:
    """A batch that fails part-way leaves nothing behind."""
    bad = hist("h", T0, [1.0])
    bad.sketch = QuantileSketch(0.05)  # cannot merge with the 1 % sketches of the same bucket
    bad.sketch.add(1.0)
    with pytest.raises(ValueError, match="accuracies must match"):
        sink.write([hist("h", T0, [2.0]), bad], [{"timestamp": T0, "event": "x"}])
    sink.write([counter("ok", T0, 1, 1.0)], [])
    assert rows(db, "SELECT count(*) FROM events") == [(0,)]
    assert rows(db, "SELECT name FROM series") == [("ok",)]


def test_type_conflict_keeps_first_and_counts(sink: SQLiteSink, db: Path) -> None:
    """A name recorded with a second type keeps the first; the conflict is counted."""
    sink.write([counter("x", T0, 1, 1.0)], [])
    previous = health.set_strict(False)
    try:
        sink.write([gauge("x", T0, 1.0, 1.0, 1.0)], [])
    finally:
        health.set_strict(previous)
    assert health.counts()["storage.type_conflict"] == 1
    assert rows(db, "SELECT type FROM series WHERE name = 'x'") == [("counter",)]
    assert rows(db, "SELECT count(*) FROM points") == [(3,)]


def test_type_conflict_raises_in_strict_mode(sink: SQLiteSink) -> None:
    """In strict (test) mode the conflict raises, and nothing of the batch is written."""
    sink.write([counter("x", T0, 1, 1.0)], [])
    previous = health.set_strict(True)
    try:
        with pytest.raises(InternalError, match=r"storage\.type_conflict"):
            sink.write([gauge("x", T0, 1.0, 1.0, 1.0)], [])
    finally:
        health.set_strict(previous)


def test_events_fields_json_with_repr_fallback(sink: SQLiteSink, db: Path) -> None:
    """Event fields are JSON; values JSON cannot hold are stored as their repr()."""

    class Odd:
        def __repr__(self) -> str:
            return "<Odd>"

    loop: dict[str, object] = {}
    loop["self"] = loop
    sink.write(
        [],
        [
            {"timestamp": T0, "level": "info", "category": "user_action", "event": "click",
             "logger": "app", "session_id": "s1", "button": "ok", "odd": Odd(), "n": 3},
            {"timestamp": T0 + 1, "level": "error", "category": "error", "event": "boom",
             "logger": "app", "session_id": "s1", "loop": loop, 5: "int key"},
        ],
    )  # fmt: skip
    got = rows(db, "SELECT event, fields FROM events ORDER BY timestamp")
    assert json.loads(got[0][1]) == {"button": "ok", "odd": "<Odd>", "n": 3}  # type: ignore[arg-type]
    second = json.loads(got[1][1])  # type: ignore[arg-type]
    assert second["5"] == "int key"
    assert isinstance(second["loop"], str)


def test_sessions_table_follows_session_events(sink: SQLiteSink, db: Path) -> None:
    """session.start and session.end events maintain the sessions table."""
    base = {"category": "session", "logger": "sounding", "level": "info", "session_id": "abc"}
    sink.write(
        [],
        [{**base, "timestamp": T0, "event": "session.start", "app_version": "1.4.2",
          "platform": "linux", "python_version": "3.11.7"}],
    )  # fmt: skip
    sink.write([], [{**base, "timestamp": T0 + 90, "event": "session.end"}])
    assert rows(db, "SELECT * FROM sessions") == [
        ("abc", T0, T0 + 90, 90.0, "1.4.2", "linux", "3.11.7")
    ]


def test_internal_counters_are_ordinary_series(sink: SQLiteSink, db: Path) -> None:
    """Health counts arrive as sounding.internal.<kind> counters and show in status()."""
    sink.write([counter("sounding.internal.events.dropped", T0, 1, 12.0)], [])
    sink.close()
    with open_store(db) as store:
        assert store.status().internal_counts == {"events.dropped": 12.0}


HOSTILE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30
) | st.sampled_from(
    ["'; DROP TABLE series; --", '"quoted"', "\x00nul\x1b[31m", "x" * 10_000, "%_", "?", ":a"]
)


@settings(
    max_examples=40,
    deadline=None,  # each example writes a real file; timings belong in bench/
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=HOSTILE, key=HOSTILE, value=HOSTILE)
def test_hostile_names_and_tags_round_trip(tmp_path: Path, name: str, key: str, value: str) -> None:
    """Any name and tag text is stored and queried back exactly, never executed as SQL."""
    path = tmp_path / "hostile.db"
    s = SQLiteSink(path)
    try:
        s.write([counter(name, T0, 1, 3.0, ((key, value),))], [])
    finally:
        s.close()
    with open_store(path) as store:
        [info] = store.series(name, {key: value})
        assert info.name == name
        assert info.tags == {key: value}
        [point] = store.query(name, start=T0, end=T0 + 60, tags={key: value}, stat="sum")
        assert point.value == 3.0
        tables = store.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert {n for (n,) in tables} >= {"series", "points"}
    path.unlink()


def test_lone_surrogates_are_replaced_not_fatal(sink: SQLiteSink, db: Path) -> None:
    """Text SQLite cannot encode is escaped and counted instead of failing the flush."""
    sink.write([counter("c", T0, 1, 1.0, (("k", "bad\udc80"),))],
               [{"timestamp": T0, "event": "e\ud800"}])  # fmt: skip
    assert rows(db, "SELECT count(*) FROM events") == [(1,)]
    assert health.counts().get("storage.text_replaced", 0) >= 1


def test_parent_is_a_file_raises_from_write(tmp_path: Path) -> None:
    """An unusable location (a file where the directory should be) raises from write()."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    s = SQLiteSink(blocker / "data" / "telemetry.db")  # construction never raises
    with pytest.raises(StoreError, match="cannot create the store directory"):
        s.write([counter("c", T0, 1, 1.0)], [])
    assert blocker.read_text() == "not a directory"
    s.close()


def test_unwritable_location_under_proc_raises_from_write() -> None:
    """A read-only file system (/proc refuses new files, even for root) raises from write()."""
    s = SQLiteSink(Path("/proc/self/sounding-test/telemetry.db"))
    with pytest.raises(StoreError):
        s.write([counter("c", T0, 1, 1.0)], [])
    s.close()


def test_full_disk_raises_and_keeps_the_file_intact(db: Path) -> None:
    """A full disk (SQLITE_FULL via max_page_count) raises; earlier data stays intact."""
    s = SQLiteSink(db, max_bytes=64 * 1024)
    s.write([counter("kept", T0, 1, 1.0)], [])
    big = [{"timestamp": T0, "event": "filler", "blob": "x" * 2000, "i": i} for i in range(200)]
    with pytest.raises(StoreError, match="full"):
        s.write([], big)
    s.write([counter("kept", T0, 1, 1.0)], [])  # still usable after the failure
    s.close()
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert rows(db, "SELECT count(*) FROM events") == [(0,)]
    assert rows(db, "SELECT sum FROM points WHERE resolution = 60") == [(2.0,)]


def test_corrupt_file_is_moved_aside(db: Path) -> None:
    """A non-SQLite file at the store path is moved aside, counted, and a fresh store used."""
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not sqlite at all" * 100)
    s = SQLiteSink(db)
    s.write([counter("c", T0, 1, 1.0)], [])
    s.close()
    [moved] = list(db.parent.glob("telemetry.db.corrupt-*"))
    assert moved.read_bytes().startswith(b"this is not sqlite")
    assert s.recovered_from == moved
    assert health.counts()["storage.corrupt"] == 1
    assert rows(db, "SELECT name FROM series") == [("c",)]


def test_close_is_idempotent_and_final(sink: SQLiteSink) -> None:
    """close() may be called twice; a write after it raises StoreError."""
    sink.write([counter("c", T0, 1, 1.0)], [])
    sink.close()
    sink.close()
    with pytest.raises(StoreError, match="closed"):
        sink.write([counter("c", T0, 1, 1.0)], [])


def test_safe_from_several_threads(sink: SQLiteSink, db: Path) -> None:
    """Writes from several threads are serialised; every increment lands."""

    def work() -> None:
        for i in range(25):
            sink.write([counter("c", T0 + 60 * (i % 5), 1, 1.0)], [])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rows(db, "SELECT sum(sum) FROM points WHERE resolution = 60") == [(100.0,)]


def test_two_sinks_on_one_file_merge(db: Path) -> None:
    """Two writers (as two processes would) merge into the same rows."""
    a, b = SQLiteSink(db), SQLiteSink(db)
    a.write([hist("h", T0, [1.0, 2.0])], [])
    b.write([hist("h", T0, [3.0])], [])
    a.close()
    b.close()
    assert rows(db, "SELECT count, sum FROM points WHERE resolution = 60") == [(3, 6.0)]


def test_rejects_bad_arguments() -> None:
    """Misuse at construction raises at once, naming the argument."""
    with pytest.raises(TypeError, match="path"):
        SQLiteSink(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metrics"):
        SQLiteSink("x.db", metrics={"aggregation_interval": 60})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_bytes"):
        SQLiteSink("x.db", max_bytes=10)


def test_file_mode_survives_umask(tmp_path: Path) -> None:
    """The directory and file are private even with a permissive umask."""
    old = os.umask(0)
    try:
        s = SQLiteSink(tmp_path / "open" / "telemetry.db")
        s.write([counter("c", T0, 1, 1.0)], [])
        s.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "open").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "open" / "telemetry.db").stat().st_mode) == 0o600


def test_writes_never_change_the_callers_sketches(sink: SQLiteSink, db: Path) -> None:
    """The same batch written twice (a runtime retry) is counted twice and left unchanged."""
    batch = [hist("h", T0, [1.0, 2.0, 3.0]), hist("h", T0 + 60, [4.0])]
    before = [a.sketch.copy() for a in batch if a.sketch is not None]
    sink.write(batch, [])
    sink.write(batch, [])
    assert [a.sketch for a in batch] == before
    [(blob, n)] = rows(db, "SELECT sketch, count FROM points WHERE resolution = 86400")
    expected = QuantileSketch()
    expected.add_many([1.0, 2.0, 3.0, 4.0] * 2)
    assert n == 8
    assert QuantileSketch.from_bytes(blob) == expected  # type: ignore[arg-type]


@given(st.lists(st.lists(st.floats(0.001, 1e6), min_size=1, max_size=20), min_size=1, max_size=8))
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_stored_sketch_equals_union_of_flushes(tmp_path: Path, flushes: list[list[float]]) -> None:
    """However many flushes hit one bucket, its stored sketch is the union (merge cache or
    not)."""
    path = tmp_path / f"u{len(list(tmp_path.iterdir()))}.db"
    s = SQLiteSink(path)
    for i, values in enumerate(flushes):
        s.write([hist("h", T0 + 60 * (i % 2), values)], [])
    s.close()
    expected = QuantileSketch()
    expected.add_many([v for values in flushes for v in values])
    [(blob, n, mn, total)] = rows(
        path, "SELECT sketch, count, min, sum FROM points WHERE resolution = 3600"
    )
    stored = _db.stored_sketch_bytes(blob, n, mn, total)  # type: ignore[arg-type]
    assert stored is not None
    assert QuantileSketch.from_bytes(stored) == expected


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4))
def test_canonical_tags_is_the_json_of_the_sorted_pairs(tags: dict[str, str]) -> None:
    """Tags are stored as json.dumps of their sorted pairs, whether or not json is used."""
    from sounding.storage.sink import canonical_tags

    expected = json.dumps([[k, v] for k, v in sorted(tags.items())], separators=(",", ":"))
    assert canonical_tags(tags) == expected
    assert canonical_tags(tuple(sorted(tags.items()))) == expected


@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=5))
def test_resolution_lists_are_written_and_read_as_json(values: list[int]) -> None:
    """The stored list of resolutions is the JSON json.dumps writes, read back as json does."""
    text = _db.int_list_json(values)
    assert text == json.dumps(values)
    assert _db._int_list(text) == json.loads(text)


@pytest.mark.parametrize("raw", ["[05]", "[1_0]", "[+5]", "[1.5]", "[true]", "[٣]", "5", "[\x0c6]"])
def test_unusual_resolution_lists_are_left_to_json(raw: str) -> None:
    """Anything but a plain JSON list of integers is parsed by json (or refused), not guessed."""
    assert _db._int_list(raw) is None


def test_fine_resolutions_read_what_add_fine_resolution_wrote() -> None:
    """Adding finest resolutions keeps a sorted list without the rollup resolutions."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for r in (60, 10, 3600, 60):
        _db.add_fine_resolution(conn, r)
    assert _db.get_meta(conn, "resolutions") == "[10, 60]"
    assert _db.fine_resolutions(conn) == [10, 60]
    _db.set_meta(conn, "resolutions", "[ 30 , 5.0, 20 ]")  # not ours: json decides
    assert _db.fine_resolutions(conn) == [20, 30]


class _InterruptAfterBegin:
    """A connection whose next ``BEGIN`` succeeds and is then interrupted (a Ctrl-C landing
    as the statement returns, before the code after it runs)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.armed = True

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        out = self.conn.execute(sql, *args)
        if self.armed and sql.startswith("BEGIN"):
            self.armed = False
            raise KeyboardInterrupt
        return out

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)


def test_an_interrupt_just_after_begin_leaves_no_transaction_open(
    sink: SQLiteSink, db: Path
) -> None:
    """A Ctrl-C as BEGIN returns rolls it back: the lock is free and the next write lands."""
    sink.write([counter("c", T0, 1, 1.0)], [])
    real = sink._conn
    assert real is not None
    sink._conn = _InterruptAfterBegin(real)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        sink.write([counter("c", T0 + 60, 1, 2.0)], [])
    assert not real.in_transaction
    other = sqlite3.connect(db, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # the write lock is not held by the sink
        other.execute("ROLLBACK")
    finally:
        other.close()
    sink.write([counter("c", T0 + 60, 1, 2.0)], [])
    assert rows(db, "SELECT sum(sum) FROM points WHERE resolution = 60") == [(3.0,)]
