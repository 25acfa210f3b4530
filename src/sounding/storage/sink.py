"""The SQLite writer: persists each flush of the runtime in one transaction.

>>> import tempfile
>>> from sounding.core.types import IntervalAggregate, MetricType
>>> sink = SQLiteSink(tempfile.mkdtemp() + "/telemetry.db")
>>> sink.write([IntervalAggregate("exports", MetricType.COUNTER, (("format", "wav"),),
...                               start=1_767_225_600.0, end=1_767_225_660.0,
...                               count=3, sum=3.0)], [])
>>> sink.close()
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import reduce
from itertools import chain, compress, groupby, islice, pairwise, repeat
from itertools import count as counting
from operator import add, attrgetter, itemgetter, lt, mul, ne, truediv

from sounding.core import health
from sounding.core._gc import paused
from sounding.core._json import compact_encoder, safe_repr
from sounding.core.clock import get_clock
from sounding.core.config import MetricValues, current
from sounding.core.exceptions import InvalidTypeError, StoreError
from sounding.core.types import Event, IntervalAggregate, MetricType, TagKey
from sounding.storage import _db
from sounding.storage._db import MAINTENANCE_EVERY
from sounding.storage._sqlite import sqlite3

TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from sounding.core.settings import MetricsConfig
    from sounding.core.sketch import QuantileSketch

__all__ = ["SKETCH_CACHE_SIZE", "WRITE_RETRY_SECONDS", "SQLiteSink", "canonical_tags"]

#: How long :meth:`SQLiteSink.write` keeps retrying while other writers hold the lock.
WRITE_RETRY_SECONDS = 15.0
#: Decoded sketches a sink keeps to merge into the hourly and daily rows it wrote last
#: (3 per histogram series and flush, so full use up to ~170 histogram series; a few MB).
SKETCH_CACHE_SIZE = 512

#: A write of at least this many aggregates (a chunk of a bulk import or a backlog) pauses
#: the cyclic garbage collector while it builds its rows, and checks its series once instead
#: of SQLite's foreign key per row; a live flush does neither (see docs/performance.md: the
#: pause gains nothing measurable there).
BULK_WRITE_AGGREGATES = 1000

#: SQLite's own busy wait on the writer's connection (ms); the retry loop does the rest.
_WRITER_BUSY_MS = 200

_CORE_EVENT_KEYS = ("timestamp", "level", "category", "event", "logger", "session_id")
_CORE_KEY_SET = frozenset(_CORE_EVENT_KEYS)

_UPSERT = """
INSERT INTO points (series_id, resolution, bucket_start, count, sum, min, max, last,
                    last_time, sketch)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (series_id, resolution, bucket_start) DO UPDATE SET
    count = count + excluded.count,
    sum = sum + excluded.sum,
    min = CASE WHEN min IS NULL THEN excluded.min
               WHEN excluded.min IS NULL THEN min
               ELSE min(min, excluded.min) END,
    max = CASE WHEN max IS NULL THEN excluded.max
               WHEN excluded.max IS NULL THEN max
               ELSE max(max, excluded.max) END,
    last = CASE WHEN excluded.last IS NOT NULL
                 AND (last_time IS NULL OR excluded.last_time >= last_time)
                THEN excluded.last ELSE last END,
    last_time = CASE WHEN excluded.last IS NOT NULL
                      AND (last_time IS NULL OR excluded.last_time >= last_time)
                     THEN excluded.last_time ELSE last_time END,
    sketch = coalesce(excluded.sketch, sketch)
"""

#: A new finest row of one observation: its value is the sum, min and max stay NULL and
#: the sketch is the empty blob (:data:`~sounding.storage._db.SINGLE_VALUE`).
_INSERT_ONE = (
    "INSERT INTO points (series_id, resolution, bucket_start, count, sum, sketch) "
    "VALUES (?, ?, ?, 1, ?, X'')"
)
#: Rows per statement of a run's multi-row INSERT (:func:`_insert_run`): 2 + 2 x 256
#: parameters, within the 999 of old SQLite builds.
_RUN_ROWS = 256
#: A run shorter than this (or what is left of one) goes to ``executemany`` row by row.
_RUN_MIN_ROWS = 8
#: Multi-row INSERT of ``n`` new finest rows of one observation, by ``n`` (a power of two).
_RUN_SQL: dict[int, str] = {}
_INF = math.inf
_ACCURACY: list[float] = []


def _default_accuracy() -> float:
    """The sketches' default relative accuracy (the sketch module is imported by the first
    histogram row: a process that only counts never loads it)."""
    if not _ACCURACY:
        from sounding.core.sketch import DEFAULT_RELATIVE_ACCURACY

        _ACCURACY.append(DEFAULT_RELATIVE_ACCURACY)
    return _ACCURACY[0]


#: Series id -> finest buckets and values of a run of one-observation intervals taken whole.
_Held = dict[int, tuple[list[float], list[float]]]
#: An hourly or daily list of values a run made: its length, its values' bucket indices (or
#: None), its min and max.
_Part = tuple[int, "list[int] | None", float, float]


def _spill(held: _Held, quick: dict[tuple[int, int, float], float], sid: int, fine: int) -> None:
    """Move series ``sid``'s held rows into ``quick``, keyed."""
    finest, values = held.pop(sid)
    quick.update(zip(zip(repeat(sid), repeat(fine), finest), values, strict=True))


def _insert_run(
    conn: sqlite3.Connection, sid: int, fine: int, finest: list[float], values: list[float]
) -> None:
    """Insert the new finest rows of a held run (:data:`_INSERT_ONE` rows) up to
    :data:`_RUN_ROWS` per statement: ``executemany`` binds and steps row by row, which costs
    about twice what SQLite's insert itself does. The series and resolution are bound once
    per statement (``?1``, ``?2``), then bucket and value per row (bound, so the floats
    are exact). Statement sizes are powers of two, so a connection prepares at most six."""
    n = len(finest)
    i = 0
    size = _RUN_ROWS
    while n - i >= _RUN_MIN_ROWS:
        while size > n - i:
            size //= 2
        sql = _RUN_SQL.get(size)
        if sql is None:
            sql = _RUN_SQL[size] = (
                "INSERT INTO points (series_id, resolution, bucket_start, count, sum, sketch) "
                "VALUES "
                + ",".join(f"(?1, ?2, ?{3 + 2 * k}, 1, ?{4 + 2 * k}, X'')" for k in range(size))
            )
        params: list[float] = [sid, fine]
        params += chain.from_iterable(zip(finest[i : i + size], values[i : i + size], strict=True))
        conn.execute(sql, params)
        i += size
    if i < n:
        conn.executemany(_INSERT_ONE, zip(repeat(sid), repeat(fine), finest[i:], values[i:]))


def _one_value_type() -> type | None:
    """:class:`~sounding.collection._bulk.OneValueInterval`, if a bulk import loaded it (else
    no aggregate can be one)."""
    bulk = sys.modules.get("sounding.collection._bulk")
    return None if bulk is None else getattr(bulk, "OneValueInterval", None)
_AGG_IDENT = attrgetter("name", "tags", "metric_type")
_AGG_LAZY = attrgetter("lazy")
_AGG_VALUE = attrgetter("value")  # (of a OneValueInterval)
_AGG_START = attrgetter("start")
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)

#: Rows whose stored sketch is read per statement (3 parameters each, well under SQLite's
#: limit of 999 on old builds).
_SKETCH_READ_BATCH = 300

_INSERT_EVENT = (
    "INSERT INTO events (timestamp, level, category, event, logger, session_id, fields) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)

_SESSION_START = """
INSERT INTO sessions (session_id, started, app_version, platform, python_version)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (session_id) DO UPDATE SET
    started = excluded.started,
    app_version = coalesce(excluded.app_version, app_version),
    platform = coalesce(excluded.platform, platform),
    python_version = coalesce(excluded.python_version, python_version),
    duration = CASE WHEN ended IS NOT NULL THEN ended - excluded.started ELSE duration END
"""

_SESSION_END = """
INSERT INTO sessions (session_id, ended, duration) VALUES (?, ?, ?)
ON CONFLICT (session_id) DO UPDATE SET
    ended = excluded.ended,
    duration = coalesce(excluded.duration, excluded.ended - started)
"""


def _safe_text(value: object) -> str:
    """``value`` as text SQLite can store (lone surrogates cannot be encoded as UTF-8)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
            if not isinstance(text, str):
                raise TypeError("__str__ returned a non-str")
        except Exception:
            # A raising str() must not fail the batch (and every retry of it).
            health.count("storage.text_replaced")
            text = f"<{type(value).__name__}>"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        health.count("storage.text_replaced")
    return text


def canonical_tags(tags: TagKey | Mapping[str, str]) -> str:
    """The JSON stored for a series' tags: sorted ``[key, value]`` pairs, ASCII-escaped.

    >>> canonical_tags({"b": "2", "a": "1"})
    '[["a","1"],["b","2"]]'
    """
    items = sorted(tags.items()) if isinstance(tags, Mapping) else sorted(tags)
    pairs = [(str(k), str(v)) for k, v in items]
    if all(_plain(k) and _plain(v) for k, v in pairs):
        # What json.dumps writes for such strings, without importing json (about 1 ms of a
        # short process's exit flush): tags are usually plain ASCII names.
        return "[" + ",".join([f'["{k}","{v}"]' for k, v in pairs]) + "]"
    import json

    return json.dumps([list(p) for p in pairs], separators=(",", ":"))


def _plain(text: str) -> bool:
    # json.dumps (ensure_ascii) writes printable ASCII other than quote and backslash as is.
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


#: The events' JSON encoder, built by the first event (a process that only counts writes
#: none and imports no json).
_encode_fields: Callable[[Any], str] | None = None


def _fields_encoder() -> Callable[[Any], str]:
    global _encode_fields
    # One encoder for every event. ASCII output, so its text needs no UTF-8 check before
    # SQLite; a self-referencing value raises RecursionError, handled by _json_fields.
    encode = compact_encoder(ensure_ascii=True, allow_nan=True)
    _encode_fields = encode
    return encode




def _json_fields(fields: dict[str, Any]) -> str:
    try:
        return (_encode_fields or _fields_encoder())(fields)
    except (TypeError, ValueError, RecursionError):
        import json

        # Non-string keys, self-referencing values, ints too long for text: field by field.
        safe: dict[str, Any] = {}
        for k, v in fields.items():
            key = k if isinstance(k, str) else safe_repr(k)
            try:
                json.dumps(v, default=safe_repr)
                safe[key] = v
            except Exception:
                safe[key] = safe_repr(v)
        return json.dumps(safe, default=safe_repr, separators=(",", ":"))


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            f = float(value)
        except OverflowError:  # an int beyond any float
            return None
        return f if math.isfinite(f) else None
    return None


def _event_time(value: Any) -> float:
    """An event's timestamp as a finite float; a missing or unusable one becomes now (counted)."""
    ts = _finite(value)
    if ts is None:
        health.count("storage.event_timestamp_replaced")
        ts = get_clock().time()
    return ts


def _utf8(text: str) -> bool:
    """Whether SQLite can store ``text`` (a lone surrogate cannot be encoded as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _event_text(texts: dict[str, str], value: object) -> str:
    """``value`` as storable text (:func:`_safe_text`), remembered in ``texts`` when it is a
    ``str`` (bounded): the next event with the same text finds it there."""
    safe = _safe_text(value)
    if type(value) is str and len(texts) < 4096:
        texts[value] = safe
    return safe


def _opt_text(value: Any) -> str | None:
    return None if value is None else _safe_text(value)


class _Row:
    """One points row being built from the aggregates of a batch.

    One-observation contributions to a row that already has a sketch are kept in ``vals``
    and added in one ``add_many`` when the row is written (:meth:`settle`): an hourly or
    daily row of a sparse series takes dozens of them per batch.
    """

    __slots__ = (
        "count", "idx", "last", "last_time", "max", "min", "owned", "sketch", "sum", "vals"
    )  # fmt: skip

    def __init__(self, agg: IntervalAggregate, start: float) -> None:
        self.count = int(agg.count)
        self.sum = _finite(agg.sum) or 0.0
        self.min = _finite(agg.min)
        self.max = _finite(agg.max)
        self.last = _finite(agg.last)
        end = _finite(agg.end)
        self.last_time = (end if end is not None else start) if self.last is not None else None
        sk = agg.sketch
        self.sketch: QuantileSketch | None = sk if sk is not None and sk.count > 0 else None
        self.owned = False  # the sketch is the caller's until we copy it to merge into
        self.vals: list[float] | None = None
        #: the bucket indices of ``vals`` (sketch.bucket_indices), when known
        self.idx: list[int] | None = None  # (then min and max are those of vals)

    @classmethod
    def of_values(
        cls, vals: list[float], lo: float | None = None, hi: float | None = None
    ) -> _Row:
        """A histogram row of one-observation aggregates with these (finite) values (``lo``
        and ``hi``, when given: their min and max)."""
        new = cls.__new__(cls)
        new.count = len(vals)
        new.sum = reduce(add, vals, 0.0)  # in order, as merging them one by one adds
        new.min = min(vals) if lo is None else lo
        new.max = max(vals) if hi is None else hi
        new.last = new.last_time = None
        new.sketch, new.owned = None, False
        new.vals = vals
        new.idx = None
        return new

    def clone(self) -> _Row:
        """A copy sharing the (not owned) sketch: the same aggregate at another level."""
        new = _Row.__new__(_Row)
        new.count, new.sum, new.min, new.max = self.count, self.sum, self.min, self.max
        new.last, new.last_time = self.last, self.last_time
        new.sketch, new.owned = self.sketch, False
        new.vals = None if self.vals is None else list(self.vals)
        new.idx = self.idx  # (never changed: replaced or dropped)
        return new

    def merge(self, agg: IntervalAggregate, start: float) -> None:
        self.merge_row(_Row(agg, start))

    def merge_row(self, other: _Row) -> None:
        """Add ``other`` (never mutated) into this row."""
        self.count += other.count
        self.sum += other.sum
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max
        if (
            other.last is not None
            and other.last_time is not None
            and (self.last_time is None or other.last_time >= self.last_time)
        ):
            self.last, self.last_time = other.last, other.last_time
        if other.vals:
            self.add_values(other.vals)
        osk = other.sketch
        if osk is not None:
            mine = self.sketch
            if mine is None and not self.vals:
                self.sketch = osk
                return
            accuracy = _default_accuracy() if mine is None else mine.relative_accuracy
            if osk.count == 1 and osk.min == osk.max and osk.relative_accuracy == accuracy:
                # One observation (sparse data): added with the others when written.
                self.add_values([osk.min])
            else:
                self.settle()
                mine = self.sketch
                if mine is None:  # (settle made one from the pending values)
                    self.sketch = osk
                    return
                if not self.owned:
                    mine = self.sketch = mine.copy()
                    self.owned = True
                mine.merge(osk)

    def add_values(self, vals: list[float]) -> None:
        """Count ``vals`` (one observation each) in this row's sketch when it is written."""
        self.idx = None
        if self.vals is None:
            self.vals = list(vals)
        else:
            self.vals.extend(vals)

    def settle(self) -> None:
        """Add the pending one-observation values to the sketch (an owned copy)."""
        vals = self.vals
        if not vals:
            return
        self.vals = None
        idx, self.idx = self.idx, None
        if self.sketch is None:
            from sounding.core.sketch import QuantileSketch, indexed_sketch

            if idx is not None and len(idx) == len(vals):
                # (A run's hourly or daily values, their indices computed once for both.)
                self.sketch = indexed_sketch(vals, idx, self.min, self.max)
                self.owned = True
                return
            self.sketch = QuantileSketch()
        elif not self.owned:
            self.sketch = self.sketch.copy()
        self.owned = True
        self.sketch.add_many(vals)

    def single(self) -> bool:
        """Whether every observation of this row equals its ``min`` (stored without a
        sketch, as :data:`~sounding.storage._db.SINGLE_VALUE`)."""
        sk = self.sketch
        if sk is None:
            return False
        return (
            self.min is not None
            and self.min == self.max
            and sk.count == self.count
            and sk.min == sk.max == self.min
            and sk.relative_accuracy == _default_accuracy()
        )

    def values(self) -> tuple[Any, ...]:
        """The row's columns from ``count`` to ``last_time`` (the sketch apart)."""
        return (self.count, self.sum, self.min, self.max, self.last, self.last_time)


def _record_app(conn: sqlite3.Connection) -> None:
    """Keep the writing application's name and telemetry level (and when that level was
    set) in the store, so ``sounding status`` says what the application runs with."""
    try:
        settings = current()
    except Exception:  # a broken configuration must not stop recording; doctor reports it
        return
    level = settings.telemetry_level.value
    _db.set_meta(conn, "app.name", settings.app_name)
    if _db.get_meta(conn, "app.telemetry_level") != level:
        _db.set_meta(conn, "app.telemetry_level", level)
        _db.set_meta(conn, "app.telemetry_level_set", repr(get_clock().time()))


class SQLiteSink:
    """Writes the runtime's flushes into the SQLite store at ``path`` (a file or a data dir).

    Implements :class:`sounding.collection.sink.Sink`. Each :meth:`write` is one
    ``BEGIN IMMEDIATE`` transaction: aggregates are merged (UPSERT) into their finest row
    (``metrics.aggregation_interval`` seconds) and into the hourly and daily rows, events are
    appended and session rows maintained. Several processes may write the same file: SQLite's
    busy timeout plus a bounded retry make them take turns, and merging on upsert means
    nothing is lost. The file is opened lazily on the first write, so a bad location shows up
    as an exception from :meth:`write` (which the runtime counts), never from construction.

    Thread-safe: one lock serialises :meth:`write`, :meth:`maintain` and :meth:`close`.

    ``max_bytes`` caps the file size (SQLite's ``max_page_count``): a write that would grow
    the file beyond it fails like a full disk.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        metrics: MetricsConfig | MetricValues | None = None,
        *,
        max_bytes: int | None = None,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError("path", path, "a str or os.PathLike path")
        if metrics is not None and not isinstance(metrics, MetricValues):
            from sounding.core.settings import MetricsConfig  # a dataclass: only when given

            if not isinstance(metrics, MetricsConfig):
                raise InvalidTypeError("metrics", metrics, "a MetricsConfig or None")
        if max_bytes is not None and (
            not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 4096
        ):
            raise InvalidTypeError("max_bytes", max_bytes, "None or an integer >= 4096")
        # A string: the exit flush of a short process imports no pathlib (see `path`).
        self._file = _db.resolve(path)
        self.metrics: MetricsConfig | MetricValues = (
            metrics if metrics is not None else current().metrics
        )
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._series: dict[tuple[str, str], int] = {}
        self._types: dict[str, str] = {}
        self._cache = _db.SketchCache(SKETCH_CACHE_SIZE)
        self._last_maintenance = -math.inf
        #: Where a corrupt file was moved on the last (re)open, if it was.
        self.recovered_from: Path | None = None
        #: (st_dev, st_ino) of the file the connection has open: a store deleted or replaced
        #: behind our back is noticed and reopened instead of written into the void.
        self._identity: tuple[int, int] | None = None
        #: A ``time.monotonic()`` instant no write may run past (the exit budget), or None.
        self.deadline: float | None = None
        # Each write stores a token in its transaction, so after an interrupt (a signal can
        # land just after COMMIT) landed() can tell whether that write is in the file.
        self._token = ""
        self._writes = 0
        self._setup_pending = False
        #: The connection's foreign keys are off: a bulk write left them so for the next
        #: one (see :meth:`_foreign_keys`).
        self._keys_off = False
        self._tag_text: dict[TagKey, str] = {}
        #: (name, tags) as an aggregate carries them -> (series id, type): the batch's
        #: series found without building their stored keys (cleared with ``_series``).
        self._known: dict[tuple[str, TagKey], tuple[int, MetricType]] = {}

    def landed(self) -> bool:
        """Whether the last :meth:`write` committed (asked after it was interrupted)."""
        with self._lock:
            if self._conn is None or not self._token:
                return False
            try:
                return _db.get_meta(self._conn, "write.token") == self._token
            except sqlite3.Error:
                return False

    def _past_deadline(self) -> int:
        deadline = self.deadline
        return 1 if deadline is not None and time.monotonic() > deadline else 0

    def set_deadline(self, deadline: float | None) -> None:
        """Make writes give up (raising :class:`StoreError`) at ``deadline`` (monotonic)."""
        self.deadline = deadline

    # -- connection ------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._keys_off = False  # (a new connection has them on)
            timeout = _db.BUSY_TIMEOUT
            if self.deadline is not None:
                timeout = min(timeout, max(self.deadline - time.monotonic(), 0.0))
            conn, moved = _db.connect(self._file, create=True, cache=self._cache, timeout=timeout)
            if moved is not None:
                self.recovered_from = moved
            try:
                st = os.stat(self._file)
                self._identity = (st.st_dev, st.st_ino)
                # Short waits inside SQLite, so the retry loop below (with its deadline)
                # decides how long a write may take, not a 5 s busy handler.
                conn.execute(f"PRAGMA busy_timeout = {_WRITER_BUSY_MS}")
                if self.max_bytes is not None:
                    page = conn.execute("PRAGMA page_size").fetchone()[0]
                    conn.execute(f"PRAGMA max_page_count = {max(1, self.max_bytes // page)}")
            except BaseException:
                _db.rollback(conn)
                conn.close()
                raise
            self._conn = conn
            # The writer's resolution and the application's name and level go in with the
            # first write: one transaction (and one WAL commit) less for a short process.
            self._setup_pending = True
        return self._conn

    def _check_identity(self) -> None:
        """Drop the connection when the file it has open is no longer at ``self.path``."""
        if self._conn is None or self._identity is None:
            return
        try:
            st = os.stat(self._file)
            same = (st.st_dev, st.st_ino) == self._identity
        except OSError:
            same = False
        if not same:
            health.failure(
                "storage.reopened",
                message=f"the store at {self.path} was deleted or replaced; opened a new one",
            )
            self._drop_connection()

    def _forget_series(self) -> None:
        self._series.clear()
        self._types.clear()
        self._known.clear()

    def _foreign_keys(self, on: bool) -> sqlite3.Connection:
        """The connection, its foreign keys ``on`` (or off, for a bulk write).

        The pragma is switched only when it must be: switching it expires every statement
        the connection has prepared, and a bulk write's multi-row INSERTs cost about 0.5 ms
        each to prepare again (a 100 k import is 50 chunks). So a bulk write leaves the
        keys off for the next chunk; any other write, and maintenance, turns them on first.
        A connection whose keys cannot be turned on again (a broken one) is replaced by a
        new one, which has them on. Outside a transaction, where the pragma takes effect.
        """
        conn = self._connection()
        if self._keys_off != on:
            return conn
        if not on:
            conn.execute("PRAGMA foreign_keys = OFF")
            self._keys_off = True
            return conn
        try:
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error:
            self._drop_connection()
            return self._connection()
        self._keys_off = False
        return conn

    def _drop_connection(self) -> None:
        self._forget_series()
        self._identity = None
        self._keys_off = False
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    # -- writing ---------------------------------------------------------------------------
    def write(self, metrics: Sequence[IntervalAggregate], events: Sequence[Event]) -> None:
        """Persist one flush, all or nothing. Raises :class:`StoreError` on failure."""
        if not metrics and not events:
            return
        with self._lock:
            if self._closed:
                raise StoreError(f"the sink for {self.path} is closed")
            deadline = time.monotonic() + WRITE_RETRY_SECONDS
            if self.deadline is not None:
                deadline = min(deadline, self.deadline)
            self._writes += 1
            self._token = f"{os.getpid()}.{id(self)}.{self._writes}"
            self._check_identity()
            bulk = len(metrics) >= BULK_WRITE_AGGREGATES
            while True:
                try:
                    # SQLite would look up each new row's series (its foreign key): a bulk
                    # chunk checks its few series once instead (_write_metrics).
                    conn = self._foreign_keys(not bulk)
                    # With a deadline (the exit budget) SQLite itself stops a statement that
                    # runs past it, so the transaction rolls back instead of overrunning.
                    if self.deadline is not None:
                        conn.set_progress_handler(self._past_deadline, 1000)
                    self._write_batch(conn, metrics, events)
                    break
                except sqlite3.OperationalError as exc:
                    if self._cache.interrupted is not None:
                        self._forget_series()
                        _db.raise_interrupt(self._cache)
                    if self.deadline is not None:
                        deadline = min(deadline, self.deadline)
                    if _db.is_busy(exc) and time.monotonic() < deadline:
                        # Another writer holds the lock beyond the busy timeout: back off.
                        # The transaction was rolled back, so cached ids may be stale.
                        self._forget_series()
                        import random  # only on contention: a short process never needs it

                        time.sleep(random.uniform(0.005, 0.05))
                        continue
                    self._drop_connection()
                    raise StoreError(f"cannot write to the store at {self.path}: {exc}") from exc
                except sqlite3.DatabaseError as exc:
                    if _db.is_corruption(exc):
                        # Keep what can be kept: move the damaged file aside so the next
                        # write (the runtime retries the batch) goes to a fresh store.
                        self._drop_connection()
                        try:
                            self.recovered_from = _db.move_aside(self.path, exc)
                        except StoreError:
                            pass
                    else:
                        self._drop_connection()
                    raise StoreError(f"cannot write to the store at {self.path}: {exc}") from exc
                except StoreError:
                    self._drop_connection()
                    raise
                except BaseException:
                    # Caches may name series whose insert was rolled back.
                    self._forget_series()
                    self._cache.interrupted = None
                    raise
            self._maybe_maintain(conn)

    def _series_id(
        self, conn: sqlite3.Connection, agg: IntervalAggregate, key: tuple[str, str]
    ) -> int | None:
        name, tags = key
        mtype = agg.metric_type.value
        key = (name, tags)
        sid = self._series.get(key)
        if sid is not None and self._types.get(name) == mtype:
            return sid
        known = self._types.get(name)
        if known is None:
            row = conn.execute("SELECT type FROM series WHERE name = ? LIMIT 1", (name,)).fetchone()
            known = None if row is None else str(row[0])
            if known is not None:
                self._types[name] = known
        if known is not None and known != mtype:
            health.failure(
                "storage.type_conflict",
                None,
                message=f"metric {name!r} recorded as {mtype} but stored as {known}; "
                f"kept {known} and dropped the {mtype} values",
            )
            return None
        conn.execute(
            "INSERT OR IGNORE INTO series (name, type, unit, description, tags, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, mtype, _safe_text(agg.unit), _safe_text(agg.description), tags, time.time()),
        )
        row = conn.execute(
            "SELECT id, type FROM series WHERE name = ? AND tags = ?", (name, tags)
        ).fetchone()
        sid = int(row[0])
        self._types[name] = str(row[1])
        if str(row[1]) != mtype:
            # Lost a race with another process that created the name with another type.
            health.failure(
                "storage.type_conflict",
                None,
                message=f"metric {name!r} recorded as {mtype} but stored as {row[1]}",
            )
            return None
        self._series[key] = sid
        return sid

    def _tags_json(self, tags: TagKey) -> str:
        """:func:`canonical_tags`, remembered per tags tuple (a batch repeats its series)."""
        try:
            return self._tag_text[tags]
        except KeyError:
            text = canonical_tags(tags)
            if len(self._tag_text) < 4096:
                self._tag_text[tags] = text
            return text
        except TypeError:  # not hashable: not remembered
            return canonical_tags(tags)

    def _prefetch_series(
        self, conn: sqlite3.Connection, metrics: Sequence[IntervalAggregate]
    ) -> list[tuple[str, str]]:
        """Each aggregate's ``(name, tags)`` key; the batch's unknown series are looked up and
        created a few statements at a time (a backlog of new series would otherwise cost two
        statements each)."""
        keys = [(_safe_text(agg.name), self._tags_json(agg.tags)) for agg in metrics]
        want: dict[tuple[str, str], IntervalAggregate] = {}
        for key, agg in zip(keys, metrics, strict=True):
            if key not in self._series and key not in want:
                want[key] = agg
        if len(want) < 2:
            # One new series: _series_id's two statements are as cheap. From two on, two
            # statements for all (a bulk chunk holds a few whole series: two of a sparse
            # import's 2,000 aggregates, four statements one by one).
            return keys
        for name in {name for name, _ in want}:
            if name not in self._types:
                row = conn.execute(
                    "SELECT type FROM series WHERE name = ? LIMIT 1", (name,)
                ).fetchone()
                if row is not None:
                    self._types[name] = str(row[0])
        now = time.time()
        conn.executemany(
            "INSERT OR IGNORE INTO series (name, type, unit, description, tags, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (name, agg.metric_type.value, _safe_text(agg.unit),
                 _safe_text(agg.description), tags, now)
                for (name, tags), agg in want.items()
                if self._types.get(name) in (None, agg.metric_type.value)
            ],
        )  # fmt: skip
        wanted = list(want)
        for i in range(0, len(wanted), _SKETCH_READ_BATCH):
            part = wanted[i : i + _SKETCH_READ_BATCH]
            sql = (
                "WITH k (n, t) AS (VALUES "
                + ",".join(["(?, ?)"] * len(part))
                + ") SELECT s.id, s.name, s.type, s.tags FROM k CROSS JOIN series AS s "
                "ON s.name = k.n AND s.tags = k.t"
            )
            for sid, name, mtype, tags in conn.execute(sql, [v for k in part for v in k]):
                self._series[(str(name), str(tags))] = int(sid)
                self._types.setdefault(str(name), str(mtype))
        return keys

    def _write_batch(
        self,
        conn: sqlite3.Connection,
        metrics: Sequence[IntervalAggregate],
        events: Sequence[Event],
    ) -> None:
        bulk = len(metrics) >= BULK_WRITE_AGGREGATES  # (its keys are off: write())
        try:
            # Inside the try: a Ctrl-C landing just after BEGIN returns must roll it back,
            # or the connection keeps an open transaction that fails the next write.
            conn.execute("BEGIN IMMEDIATE")
            setup = self._setup_pending
            if setup:
                _db.add_fine_resolution(conn, self.metrics.aggregation_interval)
                _record_app(conn)
            if bulk:
                with paused():  # a bulk chunk builds many small objects, none in a cycle
                    self._write_metrics(conn, metrics, check_series=True)
            elif metrics:
                self._write_metrics(conn, metrics)
            if events:
                self._write_events(conn, events)
            _db.set_meta(conn, "write.token", self._token)
            conn.execute("COMMIT")
            if setup:
                self._setup_pending = False
        except BaseException:
            _db.rollback(conn)
            raise

    def _check_series(self, conn: sqlite3.Connection, sids: set[int]) -> None:
        """Raise :class:`StoreError` unless every id in ``sids`` is a stored series (what the
        foreign key checks per row); the caller drops its cached ids and the batch is
        written again later."""
        wanted = sorted(sids)
        found = 0
        for i in range(0, len(wanted), _SKETCH_READ_BATCH):
            part = wanted[i : i + _SKETCH_READ_BATCH]
            sql = "SELECT count(*) FROM series WHERE id IN (" + ",".join("?" * len(part)) + ")"
            found += int(conn.execute(sql, part).fetchone()[0])
        if found != len(wanted):
            raise StoreError(
                f"{len(wanted) - found} series of this write are not in the store at "
                f"{self.path} (cached ids of a rolled-back or replaced store)"
            )

    def _runs(
        self, conn: sqlite3.Connection, metrics: Sequence[IntervalAggregate]
    ) -> list[tuple[int, int, int | None]]:
        """``(first, end, series id)`` of each run of consecutive aggregates of one series
        (``None``: not stored, counted per aggregate); unknown series are looked up and
        created, each once."""
        idents = list(map(_AGG_IDENT, metrics))
        # Where the series changes (compared in C; a run shares its name and tags objects).
        cuts = [0, *compress(counting(1), map(ne, idents, islice(idents, 1, None))), len(metrics)]
        known = self._known
        runs: list[tuple[int, int, int | None]] = []
        missing: list[int] = []
        for lo, hi in pairwise(cuts):
            agg = metrics[lo]
            try:
                hit = known.get((agg.name, agg.tags))
            except TypeError:  # unhashable tags (a sink's own aggregates)
                hit = None
            if hit is not None and hit[1] is agg.metric_type:
                runs.append((lo, hi, hit[0]))
            else:
                missing.append(len(runs))
                runs.append((lo, hi, None))
        if not missing:
            return runs
        # Each new series once (runs of one series may be apart).
        first: dict[Any, IntervalAggregate] = {}
        for r in missing:
            agg = metrics[runs[r][0]]
            try:
                first.setdefault((agg.name, agg.tags, id(agg.metric_type)), agg)
            except TypeError:
                first[r] = agg
        batch = list(first.values())
        found = dict(
            zip(first, map(self._series_id, repeat(conn), batch,
                           self._prefetch_series(conn, batch)), strict=True)
        )  # fmt: skip
        for r in missing:
            lo, hi, _ = runs[r]
            agg = metrics[lo]
            try:
                key: Any = (agg.name, agg.tags, id(agg.metric_type))
                sid = found[key]
            except TypeError:
                key = r
                sid = found[key]
            if sid is None:
                # Not stored (a type conflict): each such aggregate is counted.
                for i in range(lo, hi):
                    if first[key] is not metrics[i]:
                        other = metrics[i]
                        self._series_id(
                            conn, other, (_safe_text(other.name), self._tags_json(other.tags))
                        )
                continue
            runs[r] = (lo, hi, sid)
            if len(known) < 65536:
                try:
                    known[(agg.name, agg.tags)] = (sid, agg.metric_type)
                except TypeError:
                    pass
        return runs

    def _each(
        self,
        metrics: Sequence[IntervalAggregate],
        runs: list[tuple[int, int, int | None]],
        fine: int,
        quick_ok: bool,
        quick: dict[tuple[int, int, float], float],
        quick_roll: dict[tuple[int, int, float], list[float]],
        roll_idx: dict[tuple[int, int, float], _Part],
        merged: dict[tuple[int, int, float], _Row],
        ranges: list[tuple[int, int, float, float]],
        held: _Held,
    ) -> Iterator[tuple[int, IntervalAggregate, int]]:
        """The aggregates to merge one by one, with their index and series id: those of
        runs of one-observation intervals are taken by :meth:`_quick_run` instead."""
        deadline = self.deadline
        taken: set[int] = set()
        for lo, hi, sid in runs:
            if sid is None:
                continue
            if quick_ok and hi - lo >= 8:
                if deadline is not None and time.monotonic() > deadline:
                    raise StoreError(f"the exit budget ran out writing to {self.path}")
                run = metrics[lo:hi]
                if self._quick_run(
                    run, sid, fine, quick, quick_roll, roll_idx, merged, taken, ranges, held
                ):
                    continue
            for i in range(lo, hi):
                yield i, metrics[i], sid

    @staticmethod
    def _quick_run(
        run: Sequence[IntervalAggregate],
        sid: int,
        fine: int,
        quick: dict[tuple[int, int, float], float],
        quick_roll: dict[tuple[int, int, float], list[float]],
        roll_idx: dict[tuple[int, int, float], _Part],
        merged: dict[tuple[int, int, float], _Row],
        taken: set[int],
        ranges: list[tuple[int, int, float, float]],
        held: _Held,
    ) -> bool:
        """Take a run of one series' one-observation histogram intervals whose sketches are
        not built, column by column; ``False`` (nothing taken) unless every interval of it
        is one and has a finest row of its own. ``taken``: the series with rows in
        ``quick`` already; ``ranges`` gets the run's range of finest buckets. A run taken
        goes to ``held`` (its finest buckets and values, by series id), whose rows count as
        in ``quick`` (:func:`_spill` puts them there when a key of the series is looked up).
        ``roll_idx``: of each hourly and daily list of ``quick_roll`` that this run made,
        its length, its values' bucket indices (computed once for both levels; None for a
        value <= 0) and its min and max (a day's from its hours')."""
        if set(map(type, run)) != {_one_value_type()} or not all(map(_AGG_LAZY, run)):
            return False
        # Lazy: as made, one observation each (count 1, sum, min and max its value, no
        # last, no sketch), whatever changed an interval would have ended that.
        values = list(map(_AGG_VALUE, run))
        starts = list(map(_AGG_START, run))
        if set(map(type, values)) != {float} or not all(map(math.isfinite, values)):
            return False
        # Whole seconds (interval starts) are finite: one pass checks both.
        whole = set(map(type, starts)) == {float} and all(map(float.is_integer, starts))
        if not whole and not all(map(math.isfinite, starts)):
            return False

        def buckets(res: int) -> list[float]:
            return list(map(mul, map(math.floor, map(truediv, starts, repeat(res))), repeat(res)))

        # In time order at whole seconds (interval starts): each hour's and day's values are
        # a slice, found by bisection below (floor(start / res) is exact for such starts).
        # (Strictly: two equal starts share a finest row, refused below either way.)
        ordered = whole and all(map(lt, starts, islice(starts, 1, None)))
        if ordered and all(map(float.is_integer, map(truediv, starts, repeat(fine)))):
            finest = starts  # each start is its finest bucket (the usual import), distinct
        else:
            finest = buckets(fine)
        if finest is not starts and len(set(finest)) != len(finest):
            return False  # two intervals in one finest row: merged one by one
        if sid in held:
            _spill(held, quick, sid, fine)
        if sid in taken or merged:
            keys = list(zip(repeat(sid), repeat(fine), finest))
            if sid in taken and not quick.keys().isdisjoint(keys):
                return False
            if merged and any(map(merged.__contains__, keys)):
                return False
        taken.add(sid)
        # Held, not keyed: the usual chunk looks none of its keys up, and its rows go to
        # the INSERT as they are (no key tuples, no dict).
        held[sid] = (finest, values)
        if ordered:
            ranges.append((sid, fine, finest[0], finest[-1]))
        else:
            ranges.append((sid, fine, min(finest), max(finest)))
        if ordered:
            from bisect import bisect_left  # here: a process that only counts needs none

            from sounding.core.sketch import bucket_indices

            n = len(starts)
            hour, day = _db.HOUR, _db.DAY
            #: (resolution, bucket, first, end, min, max) of each hour, then of each day
            parts: list[tuple[int, float, int, int, float, float]] = []
            i = 0
            while i < n:
                bucket = math.floor(starts[i] / hour) * hour
                j = bisect_left(starts, bucket + hour, i)
                part = values[i:j]
                parts.append((hour, bucket, i, j, min(part), max(part)))
                i = j
            # A day is 24 whole hours: its values are its hours', its extremes theirs.
            k = 0
            last = len(parts)
            while k < last:
                bucket = math.floor(parts[k][1] / day) * day
                m = k + 1
                while m < last and parts[m][1] < bucket + day:
                    m += 1
                days = parts[k:m]
                lo, hi = min(p[4] for p in days), max(p[5] for p in days)
                parts.append((day, bucket, days[0][2], days[-1][3], lo, hi))
                k = m
            idx = bucket_indices(values)  # (None: a value <= 0, counted by add_many)
            for res, bucket, i, j, lo, hi in parts:
                key = (sid, res, bucket)
                vals = quick_roll.get(key)
                if vals is None:
                    quick_roll[key] = values[i:j]
                    roll_idx[key] = (j - i, None if idx is None else idx[i:j], lo, hi)
                else:
                    vals.extend(values[i:j])
            return True
        for res in (_db.HOUR, _db.DAY):
            # Runs of equal buckets.
            for bucket, group in groupby(zip(buckets(res), values, strict=True), _FIRST):
                quick_roll.setdefault((sid, res, bucket), []).extend(map(_SECOND, group))
        return True

    def _write_metrics(
        self,
        conn: sqlite3.Connection,
        metrics: Sequence[IntervalAggregate],
        check_series: bool = False,
    ) -> None:
        """Merge the aggregates into their finest, hourly and daily rows and write them.

        The batch is merged in memory first, so a bucket touched by many aggregates (the
        hourly and daily rows, history imports) costs one statement, not one per aggregate.
        A one-observation histogram interval (a sparse series' minute) takes a shorter way:
        no row object, its value added to the hourly and daily sketches in one ``add_many``,
        and, when its finest row is new, a plain INSERT of four values. ``check_series``: the
        connection's foreign keys are off, check the batch's series here.
        """
        fine = self.metrics.aggregation_interval
        hour, day = _db.HOUR, _db.DAY
        # With a finest resolution of an hour or a day the finest row is a rollup row.
        quick_ok = fine not in _db.ROLLUP_RESOLUTIONS
        levels = (fine, hour, day) if quick_ok else tuple(sorted({fine, hour, day}))
        runs = self._runs(conn, metrics)
        if check_series:
            self._check_series(conn, {sid for _, _, sid in runs if sid is not None})
        merged: dict[tuple[int, int, float], _Row] = {}
        #: finest key -> value of a one-observation histogram interval
        quick: dict[tuple[int, int, float], float] = {}
        #: hourly / daily key -> those values, in order
        quick_roll: dict[tuple[int, int, float], list[float]] = {}
        #: hourly / daily key -> what a run that made its list knew of it (_quick_run)
        roll_idx: dict[tuple[int, int, float], _Part] = {}
        buckets: dict[Any, tuple[float, ...] | None] = {}
        floor = math.floor
        accuracy: float | None = None  # (looked up by the first sketch)
        one_value = _one_value_type()
        inf = _INF
        #: finest keys of ``quick`` taken one by one, and bucket ranges of those taken by run
        quick_keys: list[tuple[int, int, float]] = []
        ranges: list[tuple[int, int, float, float]] = []
        run_sid: int | None = None
        run_hour = run_day = -_INF
        hourly: list[float] = []
        daily: list[float] = []
        deadline = self.deadline
        #: runs taken whole by _quick_run, their rows not in ``quick`` (yet)
        held: _Held = {}
        each = self._each(
            metrics, runs, fine, quick_ok, quick, quick_roll, roll_idx, merged, ranges, held
        )
        for i, agg, sid in each:
            if held and sid in held:
                _spill(held, quick, sid, fine)  # its keys are looked up below
            if deadline is not None and not i & 63 and time.monotonic() > deadline:
                # Many short statements: the progress handler never sees a long one.
                raise StoreError(f"the exit budget ran out writing to {self.path}")
            try:
                lv = buckets[agg.start]
            except (KeyError, TypeError):
                start = _finite(agg.start)
                lv = None if start is None else tuple(floor(start / res) * res for res in levels)
                try:
                    buckets[agg.start] = lv
                except TypeError:
                    pass
            if lv is None:
                health.count("storage.invalid_aggregate")
                continue
            if quick_ok:
                # A one-observation histogram interval (a sparse series' minute)?
                if type(agg) is one_value and agg.lazy:  # type: ignore[attr-defined]
                    v = agg.value  # type: ignore[attr-defined]  # (no sketch built)
                else:
                    sk = agg.sketch
                    v = None
                    if sk is not None and sk.count == 1:
                        if accuracy is None:
                            accuracy = _default_accuracy()
                        if sk.relative_accuracy == accuracy:
                            v = sk.min
                if (
                    type(v) is float  # (an int minimum, 10**300 say, goes the general way)
                    and agg.count == 1
                    and agg.sum == v
                    and agg.max == v
                    and agg.min == v
                    and agg.last is None
                    and -inf < v < inf
                ):
                    fb, hb, db = lv
                    key = (sid, fine, fb)
                    if key not in quick and key not in merged:
                        quick[key] = v
                        quick_keys.append(key)
                        # Consecutive intervals of a series share their hour and day.
                        if sid != run_sid:
                            run_sid, run_hour, run_day = sid, hb, db
                            hourly = quick_roll.setdefault((sid, hour, hb), [])
                            daily = quick_roll.setdefault((sid, day, db), [])
                        else:
                            if hb != run_hour:
                                run_hour = hb
                                hourly = quick_roll.setdefault((sid, hour, hb), [])
                            if db != run_day:
                                run_day = db
                                daily = quick_roll.setdefault((sid, day, db), [])
                        hourly.append(v)
                        daily.append(v)
                        continue
            parsed = _Row(agg, agg.start)  # once, then copied or merged into each level
            for res, bucket in zip(levels, lv, strict=True):
                key = (sid, res, bucket)
                row = merged.get(key)
                if row is None:
                    if key not in quick:
                        merged[key] = parsed.clone()
                        continue
                    row = merged[key] = _Row.of_values([quick.pop(key)])
                row.merge_row(parsed)
        for rkey, vals in quick_roll.items():
            row = merged.get(rkey)
            if row is None:
                part = roll_idx.get(rkey) if roll_idx else None
                if part is not None and part[0] == len(vals):  # (nothing appended since)
                    merged[rkey] = new = _Row.of_values(vals, part[2], part[3])
                    new.idx = part[1]
                else:
                    merged[rkey] = _Row.of_values(vals)
            else:
                row.count += len(vals)
                row.sum = reduce(add, vals, row.sum)
                lo, hi = min(vals), max(vals)
                if row.min is None or lo < row.min:
                    row.min = lo
                if row.max is None or hi > row.max:
                    row.max = hi
                row.add_values(vals)
        stored = self._stored(conn, merged, quick_keys, ranges)
        if quick or held:
            if any(key[1] == fine for key in stored):
                # Rows already in the file: merged with them the general way.
                for sid in list(held):
                    _spill(held, quick, sid, fine)
                for key in [key for key in quick if key in stored]:
                    merged[key] = _Row.of_values([quick.pop(key)])
            if quick:
                # (sid, resolution, bucket) + (value,), built in C
                conn.executemany(_INSERT_ONE, map(tuple.__add__, quick, zip(quick.values())))
            for sid, (finest, values) in held.items():
                _insert_run(conn, sid, fine, finest, values)
        if merged:
            conn.executemany(_UPSERT, self._rows(merged, stored, keep_new=not check_series))

    def _stored(
        self,
        conn: sqlite3.Connection,
        merged: dict[tuple[int, int, float], _Row],
        keys: list[tuple[int, int, float]],
        ranges: list[tuple[int, int, float, float]],
    ) -> dict[tuple[int, int, float], tuple[bytes | None, int, float | None, float | None]]:
        """The stored rows the batch's histogram rows merge into: ``(blob, count, min,
        one-observation value)`` by key. Rows of ``merged`` and ``keys`` are read by key; the
        finest rows of runs of one-observation intervals by their ``ranges`` of buckets
        (usually none is stored)."""
        stored: dict[
            tuple[int, int, float], tuple[bytes | None, int, float | None, float | None]
        ] = {}
        keys = [*(k for k, row in merged.items() if row.sketch is not None or row.vals), *keys]
        select = (
            "SELECT p.series_id, p.resolution, p.bucket_start, p.sketch, p.count, p.min, p.sum "
            "FROM k CROSS JOIN points AS p ON p.series_id = k.s AND p.resolution = k.r AND "
        )
        for batch, width, cond in (
            (keys, 3, "p.bucket_start = k.b"),
            (ranges, 4, "p.bucket_start BETWEEN k.b AND k.e"),
        ):
            names = "(s, r, b)" if width == 3 else "(s, r, b, e)"
            one = "(" + ", ".join(["?"] * width) + ")"
            step = _SKETCH_READ_BATCH * 3 // width
            for i in range(0, len(batch), step):
                part = batch[i : i + step]
                # A join on the primary key: "(a, b, c) IN (VALUES ...)" scans the whole table.
                sql = (
                    f"WITH k {names} AS (VALUES " + ",".join([one] * len(part)) + ") "
                    + select + cond
                )
                params = [v for k in part for v in k]
                for sid, res, bucket, blob, count, mn, total in conn.execute(sql, params):
                    old_blob = None if blob is None else bytes(blob)
                    mn, one_value = _db.single_min(old_blob, int(count), mn, total)
                    stored[(int(sid), int(res), float(bucket))] = (
                        old_blob, int(count), mn, one_value
                    )  # fmt: skip
        return stored

    def _rows(
        self,
        merged: dict[tuple[int, int, float], _Row],
        stored: dict[tuple[int, int, float], tuple[bytes | None, int, float | None, float | None]],
        keep_new: bool = True,
    ) -> list[tuple[Any, ...]]:
        """UPSERT parameters, with each sketch already merged into the stored one.

        ``keep_new``: keep the sketches of new hourly and daily rows decoded for the next
        flush, which merges into them (a bulk write does not: its 1,800 rollups of a 100 k
        sparse import are rarely merged into again, and would push a live flush's sketches
        out of the cache).

        Merging here, not in an SQL function called per row, keeps Python code out of the
        statement: a signal handler's ``sys.exit()`` or a Ctrl-C then surfaces as itself
        (SQLite would report "user-defined function raised exception"), and the writer makes
        one read per few hundred rows instead of one callback per row.
        """
        single = _db.SINGLE_VALUE
        cache = self._cache
        rollups = _db.ROLLUP_RESOLUTIONS
        out: list[tuple[Any, ...]] = []
        for key, row in merged.items():
            if row.sketch is None and row.vals:
                old = stored.get(key)
                if old is not None and old[0]:
                    # One-observation values into a stored sketch (a live flush's hourly and
                    # daily rows): added to it directly, no sketch of their own.
                    total = cache.take(old[0])
                    total.add_many(row.vals)
                    row.vals = None
                    merged_blob = total.to_bytes()
                    cache.put(merged_blob, total, owned=True)
                    out.append((*key, *row.values(), merged_blob))
                    continue
                if row.min == row.max and row.count == len(row.vals):
                    # All one value (a constant series): stored without a sketch, as below
                    # for single(), unless the stored row holds other values.
                    if old is None and row.count == 1:
                        out.append((*key, 1, row.sum, None, None, row.last, row.last_time,
                                    single))  # fmt: skip
                        continue
                    if old is None or (old[0] == single and old[2] == row.min):
                        out.append((*key, *row.values(), single))
                        continue
            row.settle()
            sk = row.sketch
            old = None if sk is None else stored.get(key)
            if sk is not None and row.single():
                # One value (a sparse series' minute): no sketch blob, unless the stored row
                # holds other values.
                if old is None and row.count == 1:
                    # One observation: its value is the sum; min and max need no bytes.
                    out.append((*key, 1, row.sum, None, None, row.last, row.last_time,
                                single))  # fmt: skip
                    continue
                if old is not None and old[0] == single and old[2] == row.min:
                    # The stored min may be NULL (one observation): give the UPSERT it.
                    out.append((*key, *row.values(), single))
                    continue
                if old is None:
                    out.append((*key, *row.values(), single))
                    continue
            if old is not None and old[0] == single and old[3] is not None:
                # A stored one-observation row keeps no min/max: the UPSERT must not lose
                # its value, so the new min and max already include it.
                mn, mx = row.min, row.max
                v = old[3]
                row.min = v if mn is None or v < mn else mn
                row.max = v if mx is None or v > mx else mx
            blob = None
            if sk is not None:
                if old is not None and old[0] is not None:
                    if old[0] == single:
                        # The stored row is single-valued: it becomes a real sketch now.
                        total = _db.single_value_sketch(old[1], old[2])
                    else:
                        total = cache.take(old[0])
                    total.merge(sk)
                    blob = total.to_bytes()
                    cache.put(blob, total, owned=True)
                else:
                    blob = sk.to_bytes()
                    if keep_new and key[1] in rollups:
                        # The next flush merges into this row: keep it decoded (a copy when
                        # it is the caller's, who may change it later).
                        cache.put(blob, sk if row.owned else sk.copy(), owned=True)
            out.append((*key, *row.values(), blob))
        return out

    def _write_events(self, conn: sqlite3.Connection, events: Sequence[Event]) -> None:
        rows: list[tuple[Any, ...]] = []
        add_row = rows.append
        starts: list[tuple[Any, ...]] = []
        ends: list[tuple[Any, ...]] = []
        # Level, category, name, logger and session repeat across a batch: each is checked
        # once (_event_text) and then found here, as the str it was checked as.
        texts: dict[str, str] = {}
        encode = _encode_fields or _fields_encoder()
        core = _CORE_KEY_SET
        # (Imported here: a process that only counts writes no events.)
        from sounding.collection.jsonl import encode_fields as share
        for ev in events:
            ts = ev.get("timestamp")
            # A finite float (inf - inf and NaN - NaN are NaN); anything else is converted.
            if type(ts) is not float or ts - ts != 0.0:
                ts = _event_time(ts)
            try:
                level = texts[ev["level"]]
                category = texts[ev["category"]]
                name = texts[ev["event"]]
                logger = texts[ev["logger"]]
                session = texts[ev["session_id"]]
            except (KeyError, TypeError):  # the first of each text, or a key missing
                level = _event_text(texts, ev.get("level", "info"))
                category = _event_text(texts, ev.get("category", ""))
                name = _event_text(texts, ev.get("event", ""))
                logger = _event_text(texts, ev.get("logger", ""))
                session = _event_text(texts, ev.get("session_id", ""))
            # The fields as the JSON line writes them (collection/jsonl.py keeps the text for
            # the line of this event): UTF-8 JSON. What it cannot encode, and text SQLite
            # cannot store (a lone surrogate), takes the careful path: ASCII JSON, always
            # valid UTF-8, keys that are not str converted, values by their repr().
            fields_json = share(ev)
            if fields_json is None or not (fields_json.isascii() or _utf8(fields_json)):
                fields = {k: v for k, v in ev.items() if k not in core}
                try:
                    fields_json = encode(fields)
                except (TypeError, ValueError, RecursionError):
                    fields_json = _json_fields(fields)
            add_row((ts, level, category, name, logger, session, fields_json))
            if category == "session" and session:
                if name == "session.start":
                    starts.append(
                        (
                            session,
                            ts,
                            _opt_text(ev.get("app_version")),
                            _opt_text(ev.get("platform")),
                            _opt_text(ev.get("python_version")),
                        )
                    )
                elif name == "session.end":
                    ends.append((session, ts, _finite(ev.get("duration"))))
        conn.executemany(_INSERT_EVENT, rows)
        if starts:
            conn.executemany(_SESSION_START, starts)
        if ends:
            conn.executemany(_SESSION_END, ends)

    # -- maintenance -----------------------------------------------------------------------
    def _maybe_maintain(self, conn: sqlite3.Connection) -> None:
        now = get_clock().time()
        if now - self._last_maintenance < MAINTENANCE_EVERY:
            return
        self._last_maintenance = now
        try:
            # Another process may have done it recently: the file knows.
            last = _db.get_meta(conn, "maintenance.last_run")
            if last is not None and now - float(last) < MAINTENANCE_EVERY:
                return
            # Imported here: a short process finds maintenance done recently and skips it.
            from sounding.storage._retention import maintain

            if self._keys_off:  # (left off by a bulk write)
                conn.execute("PRAGMA foreign_keys = ON")
                self._keys_off = False
            maintain(conn, retention_days=self.metrics.retention_days, now=now)
        except (sqlite3.Error, ValueError) as exc:
            # The flush itself is committed; a failed clean-up is retried next time.
            health.failure("storage.maintenance", exc)

    def maintain(self, now: float | None = None) -> None:
        """Run retention now (normally done from :meth:`write` at most every 10 minutes)."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the sink for {self.path} is closed")
            conn = self._foreign_keys(True)
            t = get_clock().time() if now is None else now
            from sounding.storage._retention import maintain

            maintain(conn, retention_days=self.metrics.retention_days, now=t)
            self._last_maintenance = t

    def close(self) -> None:
        """Close the connection. Idempotent; later writes raise :class:`StoreError`."""
        with self._lock:
            self._closed = True
            self._drop_connection()

    @property
    def path(self) -> Path:
        """The store file."""
        from pathlib import Path

        return Path(self._file)

    def __repr__(self) -> str:
        return f"SQLiteSink({str(self.path)!r})"
