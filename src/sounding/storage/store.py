"""Reading the store: series, events, sessions, metric queries, distributions, export, status.

>>> import tempfile
>>> from sounding.core.sketch import QuantileSketch
>>> from sounding.core.types import IntervalAggregate, MetricType
>>> from sounding.storage import SQLiteSink, open_store
>>> path = tempfile.mkdtemp() + "/telemetry.db"
>>> sk = QuantileSketch()
>>> sk.add_many(float(v) for v in range(1, 101))
>>> sink = SQLiteSink(path)
>>> sink.write([IntervalAggregate("export.duration", MetricType.HISTOGRAM, (), 1_767_225_600.0,
...             1_767_225_660.0, count=100, sum=5050.0, min=1.0, max=100.0, sketch=sk)], [])
>>> sink.close()
>>> with open_store(path) as store:
...     [p] = store.query("export.duration", start="2026-01-01", end="2026-01-02", stat="p95")
>>> round(p.value)
95
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sounding.core.clock import get_clock
from sounding.core.config import MetricsConfig, get_settings
from sounding.core.exceptions import InvalidTypeError, InvalidValueError, StoreError
from sounding.core.sketch import QuantileSketch
from sounding.core.snapshot import MetricSnapshot
from sounding.core.types import Event, MetricType
from sounding.storage import _db
from sounding.storage._retention import MaintenanceReport, cutoffs, maintain
from sounding.storage.migrations import STORAGE_MIGRATIONS
from sounding.storage.times import (
    TimeLike,
    duration_text,
    iso,
    parse_duration,
    parse_time,
    to_datetime,
)

__all__ = [
    "STATS",
    "Distribution",
    "ExportRecord",
    "QueryPoint",
    "SeriesInfo",
    "SessionInfo",
    "Store",
    "StoreStatus",
    "align",
    "default_stat",
    "open_store",
]

#: The statistics :meth:`Store.query` accepts besides percentiles ``p0`` ... ``p100``.
STATS = ("count", "sum", "avg", "min", "max", "last", "rate")
_STAT_FORMS = "one of count, sum, avg, min, max, last, rate, or a percentile p0-p100 (p50, p99.9)"
_PCT_RE = re.compile(r"^p(\d{1,3}(?:\.\d+)?)$")
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_CHUNK = 500  # series ids per IN (...) list, well under SQLite's variable limit
_FINE = 0  # marker for "the finest resolutions" in query plans
_WEEK = 7 * 86400.0
_MONDAY = 4 * 86400.0  # 1970-01-05, the first Monday after the epoch
#: Decoded sketches a Store keeps for repeated queries (a few MB at most).
READ_CACHE_SIZE = 1024


@dataclass(frozen=True)
class SeriesInfo:
    """One stored series: a metric name with one combination of tag values."""

    id: int
    name: str
    metric_type: MetricType
    unit: str
    description: str
    tags: dict[str, str]


@dataclass(kw_only=True)
class QueryPoint(MetricSnapshot):
    """One value of :meth:`Store.query`: a :class:`MetricSnapshot` over ``[start, end)``.

    ``value`` is the requested statistic; ``timestamp`` (also ``start``) is where the
    interval begins, ``end`` where it ends; ``stat`` names the statistic; ``group`` is the
    value of the ``group_by`` tag (``None`` without ``group_by`` or when a series lacks the
    tag); ``tags`` are the filter tags plus the group tag; ``count`` is the number of
    observations behind the value.
    """

    end: datetime
    stat: str
    group: str | None = None
    count: int = 0

    @property
    def start(self) -> datetime:
        """Where the interval begins (same as ``timestamp``)."""
        return self.timestamp


@dataclass
class Distribution:
    """The merged distribution of a series (or of all series matching a filter) over a range.

    ``sketch`` answers any percentile within its 1 % relative error; ``count``, ``sum``,
    ``min`` and ``max`` are exact. Used by the analysis layer for baselines.
    """

    count: int
    sum: float
    min: float | None
    max: float | None
    sketch: QuantileSketch
    start: float
    end: float

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1) of the merged sketch, or ``None`` when it is empty."""
        return self.sketch.quantile(q)

    @property
    def mean(self) -> float | None:
        """``sum / count``, or ``None`` when there is nothing."""
        return self.sum / self.count if self.count else None


@dataclass(frozen=True)
class SessionInfo:
    """One session: when it started and ended, and what it ran on."""

    session_id: str
    started: datetime | None
    ended: datetime | None
    duration: float | None
    app_version: str | None
    platform: str | None
    python_version: str | None


@dataclass(frozen=True)
class ExportRecord:
    """One stored interval of one series, as :meth:`Store.records` and ``sounding export``
    give it. Fields that do not apply to the metric type are ``None``."""

    name: str
    type: str
    tags: dict[str, str]
    start: float
    end: float
    count: int
    sum: float | None
    min: float | None
    max: float | None
    last: float | None
    p50: float | None
    p95: float | None
    p99: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 UTC strings."""
        return {
            "name": self.name,
            "type": self.type,
            "tags": dict(self.tags),
            "start": iso(self.start),
            "end": iso(self.end),
            "count": self.count,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "last": self.last,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
        }


def _check_limit(limit: object) -> None:
    # SQLite integers are 64-bit: a larger limit would raise OverflowError at the query.
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit < 2**63:
        raise InvalidValueError("limit", limit, "None or an integer from 0 to 2**63 - 1")


@dataclass(frozen=True)
class StoreStatus:
    """What ``sounding status`` shows about the store."""

    path: Path
    size_bytes: int
    migrations: list[str]
    series_count: int
    event_count: int
    session_count: int
    oldest: datetime | None
    newest: datetime | None
    #: totals of the ``sounding.internal.<kind>`` counters, by kind
    internal_counts: dict[str, float]
    fine_resolutions: list[int]
    fine_cutoff: datetime | None
    hourly_cutoff: datetime | None
    last_maintenance: datetime | None
    #: corrupt files moved aside next to the store
    corrupt_files: list[Path] = field(default_factory=list)


#: ``min`` and ``max`` as read: a one-observation row stores neither (its value is its sum,
#: see ``_db.SINGLE_VALUE``).
_MIN_COL = "CASE WHEN min IS NULL AND count = 1 AND sketch = X'' THEN sum ELSE min END"
_MAX_COL = "CASE WHEN max IS NULL AND count = 1 AND sketch = X'' THEN sum ELSE max END"


class _Acc:
    """Accumulates stored rows into one result value."""

    __slots__ = ("borrowed", "count", "last", "last_time", "max", "min", "sketch", "sum")

    def __init__(self) -> None:
        self.borrowed = False  # ``sketch`` is a cached one: copy before merging into it
        self.count = 0
        self.sum = 0.0
        self.min: float | None = None
        self.max: float | None = None
        self.last: float | None = None
        self.last_time = -math.inf
        self.sketch: QuantileSketch | None = None

    def add(self, row: tuple[Any, ...], sketches: _db.SketchCache | None) -> None:
        _, _, count, total, mn, mx, last, last_time = row[:8]
        self.count += int(count)
        self.sum += float(total)
        if mn is not None and (self.min is None or mn < self.min):
            self.min = float(mn)
        if mx is not None and (self.max is None or mx > self.max):
            self.max = float(mx)
        if last is not None and last_time is not None and last_time >= self.last_time:
            self.last = float(last)
            self.last_time = float(last_time)
        if sketches is not None and row[8] is not None:
            if not row[8]:  # _db.SINGLE_VALUE: ``count`` copies of ``min``, no blob
                if mn is None or not count:
                    return
                if self.sketch is None:
                    self.sketch, self.borrowed = _db.single_value_sketch(count, mn), False
                else:
                    if self.borrowed:
                        self.sketch, self.borrowed = self.sketch.copy(), False
                    self.sketch.add(float(mn), int(count))
                return
            if self.sketch is None:
                self.sketch, self.borrowed = sketches.read(row[8]), True
                return
            if self.borrowed:
                self.sketch, self.borrowed = self.sketch.copy(), False
            if row[8] in sketches:
                self.sketch.merge(sketches.read(row[8]))
            else:
                # Merged straight from the bytes, not cached: a long range would only push
                # the sketches a dashboard re-reads out of the cache.
                self.sketch.merge_bytes(row[8])


def _parse_stat(stat: str) -> tuple[str, float | None]:
    if not isinstance(stat, str):
        raise InvalidValueError("stat", stat, _STAT_FORMS)
    s = stat.strip().lower()
    if s in STATS:
        return s, None
    m = _PCT_RE.match(s)
    if m:
        pct = float(m.group(1))
        if 0.0 <= pct <= 100.0:
            return s, pct / 100.0
    raise InvalidValueError("stat", stat, _STAT_FORMS)


def _check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise InvalidTypeError("tags", tags, "None or a mapping of str to str")
    return dict(tags)


def _merge_ranges(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _ceil_to(t: float, step: float) -> float:
    return math.ceil(t / step) * step


def plan_ranges(
    lo: float, hi: float, fine_cutoff: float, hourly_cutoff: float
) -> list[tuple[int, float, float]]:
    """Cover ``[lo, hi)`` with the fewest stored rows: ``(resolution, from, to)`` pieces.

    Whole days come from daily rows, whole hours at the edges from hourly rows and the rest
    from the finest rows (resolution ``0`` here). A row belongs to the range when its bucket
    starts in it. Where finer rows were dropped by retention the edge is widened to the
    enclosing hour (or day).
    """
    if lo < fine_cutoff:
        lo = _db.floor_to(lo, _db.HOUR)
        if lo < hourly_cutoff:
            lo = _db.floor_to(lo, _db.DAY)
    if hi < fine_cutoff:
        hi = _ceil_to(hi, _db.HOUR)
        if hi < hourly_cutoff:
            hi = _ceil_to(hi, _db.DAY)
    pieces: list[tuple[int, float, float]] = []

    def cover(a: float, b: float, levels: tuple[int, ...]) -> None:
        if a >= b:
            return
        if not levels:
            pieces.append((_FINE, a, b))
            return
        step = levels[0]
        ca, cb = _ceil_to(a, step), _db.floor_to(b, step)
        if ca < cb:
            cover(a, ca, levels[1:])
            pieces.append((step, ca, cb))
            cover(cb, b, levels[1:])
        else:
            cover(a, b, levels[1:])

    cover(lo, hi, (_db.DAY, _db.HOUR))
    return pieces


def _range_clause(
    column: str, since: TimeLike | None, until: TimeLike | None
) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their parameters) for ``since <= column < until``."""
    where: list[str] = []
    params: list[Any] = []
    now = get_clock().time()
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(parse_time(since, "since", now=now))
    if until is not None:
        where.append(f"{column} < ?")
        params.append(parse_time(until, "until", now=now))
    return where, params


class Store:
    """A sounding SQLite store opened for reading (see :func:`open_store`).

    Thread-safe; use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        metrics: MetricsConfig | None = None,
        recovered_from: Path | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self.metrics = metrics if metrics is not None else get_settings().metrics
        #: where a corrupt file was moved when this store was opened (else ``None``)
        self.recovered_from = recovered_from
        self._lock = threading.RLock()
        self._closed = False
        # Decoding stored sketches dominates query time; dashboards re-read the same rows.
        self._sketches = _db.SketchCache(READ_CACHE_SIZE)

    # -- plumbing --------------------------------------------------------------------------
    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection (autocommit mode), e.g. to apply another layer's
        :class:`~sounding.storage.migrations.Migrations`."""
        self._check_open()
        return self._conn

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store at {self.path} is closed")

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _read(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        with self._lock:
            self._check_open()
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store at {self.path}: {exc}") from exc

    # -- series ----------------------------------------------------------------------------
    def series(
        self, name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> list[SeriesInfo]:
        """Stored series, by name then tags; optionally only ``name`` and those whose tags
        include every ``tags`` pair exactly."""
        want = _check_tags(tags)
        if name is None:
            rows = self._read(
                "SELECT id, name, type, unit, description, tags FROM series ORDER BY name, tags"
            )
        else:
            rows = self._read(
                "SELECT id, name, type, unit, description, tags FROM series "
                "WHERE name = ? ORDER BY tags",
                (name,),
            )
        out: list[SeriesInfo] = []
        for sid, n, t, unit, desc, tag_json in rows:
            tag_dict = {str(k): str(v) for k, v in json.loads(tag_json)}
            if all(tag_dict.get(k) == v for k, v in want.items()):
                out.append(SeriesInfo(int(sid), n, MetricType(t), unit, desc, tag_dict))
        return out

    def filtered(self, tags: Mapping[str, str]) -> Store:
        """A view of this store that sees only the series whose tags include every pair of
        ``tags``: its queries, distributions, records and series lists are filtered (events
        and sessions are not: they carry no metric tags). It shares this store's
        connection; closing it does nothing, closing this store ends both.

        ``sounding dashboard --tag`` and ``report --tag`` hand such a view to the views.
        """
        return _FilteredStore(self, _check_tags(tags))

    # -- metric queries --------------------------------------------------------------------
    def _times(self, start: TimeLike | None, end: TimeLike | None) -> tuple[float | None, float]:
        """Parse ``start``/``end`` (validated before anything is read)."""
        now = get_clock().time()
        e = now if end is None else parse_time(end, "end", now=now)
        s = None if start is None else parse_time(start, "start", now=now)
        if s is not None and e <= s:
            if end is None:
                # Nobody passed an end: the start is what is wrong (it lies in the future).
                raise InvalidValueError(
                    "start", start, f"a time before now ({iso(e)}); e.g. 7d, 24h, an ISO date"
                )
            raise InvalidValueError(
                "end", end, f"a time after start ({iso(s)}); times may be relative: 7d, 24h"
            )
        return s, e

    def _range(
        self, series: list[SeriesInfo], s: float | None, e: float
    ) -> tuple[float, float] | None:
        """The query range; without a start, from the first stored data (``None``: none)."""
        if s is not None:
            return s, e
        first = self._first_data([x.id for x in series])
        if first is None or first >= e:
            return None
        return first, e

    def _first_data(self, ids: list[int]) -> float | None:
        """Where the first stored interval of ``ids`` starts, at the finest resolution kept.

        Daily rows start at UTC midnight; the data itself may start hours later, and the
        range (and a whole-range row) should say so. Each finer level is looked up only
        inside the first coarser row (an index range scan), and only where retention kept it.
        """
        with self._lock:
            self._check_open()
            fine = _db.fine_resolutions(self._conn)
        levels: list[tuple[list[int], float]] = [([_db.DAY], float(_db.DAY))]
        levels.append(([_db.HOUR], float(_db.HOUR)))
        levels += [([r], float(r)) for r in sorted(fine, reverse=True)]
        first: float | None = None
        covered = math.inf  # the first search is unbounded
        for resolutions, width in levels:
            lo = -1e300 if first is None else first
            hi = 1e300 if first is None else first + covered
            found: float | None = None
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                (row,) = self._read(
                    f"SELECT min(bucket_start) FROM points WHERE series_id IN ({marks}) "
                    "AND resolution = ? AND bucket_start >= ? AND bucket_start < ?",
                    [*chunk, resolutions[0], lo, hi],
                )
                if row[0] is not None and (found is None or row[0] < found):
                    found = float(row[0])
            if found is not None:
                first, covered = found, width
        return first

    def _fetch(
        self,
        ids: list[int],
        slots: list[tuple[float, float]],
        with_sketch: bool,
    ) -> Iterator[tuple[Any, ...]]:
        """Rows covering every slot, each row once (see :func:`plan_ranges`)."""
        with self._lock:
            self._check_open()
            fine_cut, hourly_cut = cutoffs(self._conn)
            fine = _db.fine_resolutions(self._conn)
        by_level: dict[int, list[tuple[float, float]]] = {}
        for lo, hi in slots:
            for level, a, b in plan_ranges(lo, hi, fine_cut, hourly_cut):
                by_level.setdefault(level, []).append((a, b))
        cols = f"series_id, bucket_start, count, sum, {_MIN_COL}, {_MAX_COL}, last, last_time"
        if with_sketch:
            cols += ", sketch"
        for level, ranges in by_level.items():
            resolutions = fine if level == _FINE else [level]
            if not resolutions:
                continue
            res_marks = ",".join("?" * len(resolutions))
            for a, b in _merge_ranges(ranges):
                for chunk in _chunks(ids):
                    marks = ",".join("?" * len(chunk))
                    yield from self._read(
                        f"SELECT {cols} FROM points WHERE series_id IN ({marks}) "
                        f"AND resolution IN ({res_marks}) "
                        "AND bucket_start >= ? AND bucket_start < ?",
                        [*chunk, *resolutions, a, b],
                    )

    def finest_resolution(self) -> float:
        """The width in seconds of the finest rows the store keeps (``60`` by default)."""
        with self._lock:
            self._check_open()
            fine = _db.fine_resolutions(self._conn)
        return float(min(fine)) if fine else float(_db.HOUR)

    def resolution_at(self, t: float) -> tuple[float, float | None]:
        """The width of the rows kept for data at time ``t`` and, when retention has rolled
        them up there, the time before which that is so (``None``: the finest rows)."""
        with self._lock:
            self._check_open()
            fine_cut, hourly_cut = cutoffs(self._conn)
        if t < hourly_cut:
            return float(_db.DAY), hourly_cut
        if t < fine_cut:
            return float(_db.HOUR), fine_cut
        return self.finest_resolution(), None

    def first_data(self, name: str, tags: Mapping[str, str] | None = None) -> float | None:
        """Where the first stored interval of metric ``name`` (matching ``tags``) starts."""
        series = self.series(name, tags)
        return self._first_data([x.id for x in series]) if series else None

    def _fit_interval(self, step: float, given: object) -> float:
        """``step`` as a multiple of the finest stored rows; finer than them is refused."""
        stored = self.finest_resolution()
        if step < stored:
            raise InvalidValueError(
                "interval",
                given,
                f"{duration_text(stored)} or more: the store keeps {duration_text(stored)} "
                "rows, so a finer interval could only be filled unevenly",
            )
        # Rows are never split: a step between multiples grows to the next one.
        return math.ceil(step / stored - 1e-9) * stored

    def query(
        self,
        name: str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        tags: Mapping[str, str] | None = None,
        group_by: str | None = None,
        interval: float | str | None = None,
        stat: str | None = None,
    ) -> list[QueryPoint]:
        """The statistic ``stat`` of metric ``name`` over time, in time order.

        ``start``/``end`` accept datetimes, epoch seconds, ISO 8601 and relative forms
        ("7d", "24h"); ``start`` defaults to the first data, ``end`` to now. ``tags`` keeps
        series whose tags include each pair exactly; ``group_by`` gives one value per value of
        that tag key. Without ``interval`` there is one value per group over the whole range;
        with it (seconds or "5m", "1h", "1d", "hour", "day", "week") one per interval aligned
        to multiples of it since the epoch (weeks start on Monday 00:00 UTC, as ISO weeks
        do), intervals without data omitted, and coarsened (to a multiple of the requested
        one) so the result has at most ``max_data_points`` values. An interval finer than
        the finest rows the store keeps (:meth:`finest_resolution`) is refused; one between
        multiples of it grows to the next multiple (rows are never split). Percentiles come
        from merged sketches (within 1 %, and within the observed min and max), never from
        averaged percentiles. A value counts
        towards the range when the interval it was aggregated in starts inside the range.
        ``stat`` defaults to ``sum`` for counters and ``avg`` otherwise; ``rate`` is per
        second.

        >>> # store.query("export.duration", start="7d", interval="1h", stat="p95")
        """
        if stat is not None:
            _parse_stat(stat)  # validated before anything is read
        if not isinstance(name, str):
            raise InvalidTypeError("name", name, "a metric name (str)")
        if group_by is not None and not isinstance(group_by, str):
            raise InvalidTypeError("group_by", group_by, "None or a tag key (str)")
        step = None if interval is None else parse_duration(interval, "interval")
        s0, e0 = self._times(start, end)
        series = self.series(name, tags)
        if not series:
            return []
        mtype = series[0].metric_type
        stat_name, q = _parse_stat(default_stat(mtype) if stat is None else stat)
        if q is not None and mtype is MetricType.COUNTER:
            raise InvalidValueError(
                "stat", stat, f"count, sum, avg, min, max, last or rate: {name!r} is a counter"
            )
        bounds = self._range(series, s0, e0)
        if bounds is None:
            return []
        s, e = bounds
        groups = {x.id: (x.tags.get(group_by) if group_by else None) for x in series}
        n_groups = len(set(groups.values()))
        cap = self.metrics.max_data_points
        if n_groups > cap:
            # One value per group is the least there can be: refuse rather than exceed.
            raise InvalidValueError(
                "group_by",
                group_by,
                f"a tag key with at most max_data_points={cap} values ({n_groups} here); "
                "filter with tags first",
            )
        if step is None:
            slots = [(s, e)]
        else:
            step = self._fit_interval(step, interval)
            budget = max(1, self.metrics.max_data_points // n_groups)
            base = step
            origin = align(s, step)
            n = math.ceil((e - origin) / step)
            factor = 1
            # Re-aligning the wider interval can add one more: grow until it fits.
            while n > budget:
                factor = max(factor + 1, math.ceil(n * factor / budget))
                step = base * factor
                origin = align(s, step)
                n = math.ceil((e - origin) / step)
            slots = [(max(s, origin + i * step), min(e, origin + (i + 1) * step)) for i in range(n)]
        accs: dict[tuple[int, str | None], _Acc] = {}
        with_sketch = q is not None
        with self._lock:  # the sketch cache is shared
            for row in self._fetch(list(groups), slots, with_sketch):
                # Rows of a widened edge (see plan_ranges) fall just outside: clamp them in.
                idx = (
                    0
                    if step is None
                    else min(max(int((row[1] - origin) // step), 0), len(slots) - 1)
                )
                key = (idx, groups[row[0]])
                acc = accs.get(key)
                if acc is None:
                    acc = accs[key] = _Acc()
                acc.add(row, self._sketches if with_sketch else None)
        base_tags = _check_tags(tags)
        # A rate's seconds start at the first data: a brand-new app's one run in 30 minutes
        # is one per half hour, not one per --since.
        first = self._first_data([x.id for x in series]) if stat_name == "rate" else None
        points: list[QueryPoint] = []
        for (idx, group), acc in sorted(
            accs.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or "")
        ):
            lo, hi = slots[idx]
            since = lo if first is None else min(max(lo, first), hi)
            value = _stat_value(acc, stat_name, q, mtype, hi - since)
            if step is None:
                lo = since  # a whole-range rate's row says where its seconds start
            if value is None:
                continue
            point_tags = dict(base_tags)
            if group_by and group is not None:
                point_tags[group_by] = group
            points.append(
                QueryPoint(
                    mtype,
                    name,
                    value,
                    to_datetime(lo),
                    point_tags,
                    end=to_datetime(hi),
                    stat=stat_name,
                    group=group,
                    count=acc.count,
                )
            )
        return points

    def distributions(
        self,
        name: str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        tags: Mapping[str, str] | None = None,
        group_by: str | None = None,
    ) -> dict[str | None, Distribution]:
        """Merged distributions of ``name`` over the range, one per ``group_by`` value."""
        s0, e0 = self._times(start, end)
        series = self.series(name, tags)
        if not series:
            return {}
        bounds = self._range(series, s0, e0)
        if bounds is None:
            return {}
        s, e = bounds
        groups = {x.id: (x.tags.get(group_by) if group_by else None) for x in series}
        accs: dict[str | None, _Acc] = {}
        with self._lock:  # the sketch cache is shared
            for row in self._fetch(list(groups), [(s, e)], True):
                acc = accs.setdefault(groups[row[0]], _Acc())
                acc.add(row, self._sketches)
        return {
            g: Distribution(
                acc.count,
                acc.sum,
                acc.min,
                acc.max,
                # The caller may merge into it: never hand out the cached object.
                QuantileSketch()
                if acc.sketch is None
                else (acc.sketch.copy() if acc.borrowed else acc.sketch),
                s,
                e,
            )
            for g, acc in accs.items()
        }

    def distribution(
        self,
        name: str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Distribution:
        """The merged distribution of every ``name`` series matching ``tags`` over the range.

        Empty (``count == 0``) when nothing matches.
        """
        found = self.distributions(name, start, end, tags)
        if not found:
            s, e = self._times(start, end)
            return Distribution(0, 0.0, None, None, QuantileSketch(), e if s is None else s, e)
        return found[None]

    # -- export ----------------------------------------------------------------------------
    def records(
        self,
        name: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Iterator[ExportRecord]:
        """Every stored interval at the finest resolution still kept, series by series, in
        time order: finest rows within ``retention_days``, hourly rows before that, daily
        rows before the hourly retention. Intervals count when they start in the range."""
        now = get_clock().time()
        s = parse_time(start, "start", now=now) if start is not None else -math.inf
        e = parse_time(end, "end", now=now) if end is not None else math.inf
        with self._lock:
            self._check_open()
            fine_cut, hourly_cut = cutoffs(self._conn)
            fine = _db.fine_resolutions(self._conn)
        regions: list[tuple[list[int], float, float]] = [([_db.DAY], -math.inf, hourly_cut)]
        if fine:
            regions += [([_db.HOUR], hourly_cut, fine_cut), (fine, fine_cut, math.inf)]
        else:
            regions.append(([_db.HOUR], hourly_cut, math.inf))
        for info in self.series(name, tags):
            for resolutions, lo, hi in regions:
                a, b = max(lo, s), min(hi, e)
                if a >= b:
                    continue
                marks = ",".join("?" * len(resolutions))
                rows = self._read(
                    "SELECT resolution, bucket_start, count, sum, min, max, last, sketch "
                    f"FROM points WHERE series_id = ? AND resolution IN ({marks}) "
                    "AND bucket_start >= ? AND bucket_start < ? ORDER BY bucket_start",
                    [info.id, *resolutions, _finite_or(a, -1e300), _finite_or(b, 1e300)],
                )
                for res, bstart, count, total, mn, mx, last, blob in rows:
                    yield _record(info, res, bstart, count, total, mn, mx, last, blob)

    # -- events and sessions ---------------------------------------------------------------
    def events(
        self,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        level: str | None = None,
        category: str | None = None,
        limit: int | None = 1000,
        *,
        event: str | None = None,
        session_id: str | None = None,
    ) -> list[Event]:
        """Stored events in time order (the latest ``limit`` of them; ``None`` for all).

        ``level`` is a minimum (``"warning"`` gives warning, error and critical);
        ``category``, ``event`` and ``session_id`` match exactly. Each event is a flat dict
        as it was written: the core keys plus its fields.
        """
        if limit is not None:
            _check_limit(limit)
        where, params = _range_clause("timestamp", since, until)
        if level is not None:
            lv = str(level).lower()
            if lv not in _LEVELS:
                raise InvalidValueError("level", level, "one of " + ", ".join(_LEVELS))
            allowed = [k for k, v in _LEVELS.items() if v >= _LEVELS[lv]]
            where.append(f"level IN ({','.join('?' * len(allowed))})")
            params += allowed
        for col, val in (("category", category), ("event", event), ("session_id", session_id)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(str(val))
        sql = "SELECT timestamp, level, category, event, logger, session_id, fields FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY timestamp DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._read(sql, params)
        out: list[Event] = []
        for ts, lv_, cat, ev, logger, sid, fields in reversed(rows):
            try:
                extra = json.loads(fields)
            except ValueError:
                extra = {"fields": fields}
            record: Event = extra if isinstance(extra, dict) else {"fields": extra}
            record.update(
                timestamp=ts, level=lv_, category=cat, event=ev, logger=logger, session_id=sid
            )
            out.append(record)
        return out

    def app_meta(self) -> dict[str, str]:
        """What the application recorded about itself (``app.*`` keys of the store's meta
        table: ``app.name``, ``app.telemetry_level``, ``app.telemetry_level_set``)."""
        rows = self._read("SELECT key, value FROM meta WHERE key LIKE 'app.%'")
        return {str(k): str(v) for k, v in rows}

    def event_kinds(self) -> dict[str, list[str]]:
        """The distinct stored event names (``"event"``) and categories (``"category"``),
        sorted: what a filter may name."""
        names = [str(r[0]) for r in self._read("SELECT DISTINCT event FROM events ORDER BY 1")]
        cats = [
            str(r[0])
            for r in self._read(
                "SELECT DISTINCT category FROM events WHERE category IS NOT NULL ORDER BY 1"
            )
        ]
        return {"event": names, "category": cats}

    def sessions(
        self,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        limit: int | None = 1000,
    ) -> list[SessionInfo]:
        """Sessions that started in the range, in start order (the latest ``limit``)."""
        where, params = _range_clause("started", since, until)
        sql = (
            "SELECT session_id, started, ended, duration, app_version, platform, "
            "python_version FROM sessions"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started DESC"
        if limit is not None:
            _check_limit(limit)
            sql += " LIMIT ?"
            params.append(int(limit))
        return [
            SessionInfo(
                sid,
                None if st is None else to_datetime(st),
                None if en is None else to_datetime(en),
                du,
                av,
                pf,
                pv,
            )
            for sid, st, en, du, av, pf, pv in reversed(self._read(sql, params))
        ]

    # -- maintenance and status ------------------------------------------------------------
    def maintain(self, now: TimeLike | None = None) -> MaintenanceReport:
        """Apply retention now (writers also do it at most every 10 minutes)."""
        t = get_clock().time() if now is None else parse_time(now, "now")
        with self._lock:
            self._check_open()
            try:
                return maintain(self._conn, retention_days=self.metrics.retention_days, now=t)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot maintain the store at {self.path}: {exc}") from exc

    def status(self) -> StoreStatus:
        """Size, counts, time span, internal failure counts and retention state."""
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(str(self.path) + suffix)
            except OSError:
                pass
        with self._lock:
            self._check_open()
            fine_cut, hourly_cut = cutoffs(self._conn)
            fine = _db.fine_resolutions(self._conn)
            last_run = _db.get_meta(self._conn, "maintenance.last_run")
            applied = STORAGE_MIGRATIONS.applied(self._conn)
        (n_series,) = self._read("SELECT count(*) FROM series")[0]
        (n_events, ev_min, ev_max) = self._read(
            "SELECT count(*), min(timestamp), max(timestamp) FROM events"
        )[0]
        (n_sessions,) = self._read("SELECT count(*) FROM sessions")[0]
        ids = [int(r[0]) for r in self._read("SELECT id FROM series")]
        oldest = ev_min
        newest = ev_max
        # The first data, not the UTC midnight of its daily row.
        first = self._first_data(ids) if ids else None
        if first is not None and (oldest is None or first < oldest):
            oldest = first
        for sid in ids:
            for res in [*fine, _db.HOUR]:
                (last,) = self._read(
                    "SELECT max(bucket_start) FROM points WHERE series_id = ? AND resolution = ?",
                    (sid, res),
                )[0]
                if last is not None and (newest is None or last > newest):
                    newest = last
        internal: dict[str, float] = {}
        prefix = "sounding.internal."
        for info in self.series():
            if info.name.startswith(prefix):
                (total,) = self._read(
                    "SELECT coalesce(sum(sum), 0) FROM points WHERE series_id = ? "
                    "AND resolution = ?",
                    (info.id, _db.DAY),
                )[0]
                kind = info.name[len(prefix) :]
                internal[kind] = internal.get(kind, 0.0) + float(total)
        # Counts an exit could not store yet (storage/unsaved.py): shown until a run takes them.
        from sounding.storage import unsaved

        for kind, n in unsaved.peek(self.path.parent).items():
            internal[kind] = internal.get(kind, 0.0) + float(n)
        corrupt = sorted(self.path.parent.glob(self.path.name + ".corrupt-*"))
        return StoreStatus(
            path=self.path,
            size_bytes=size,
            migrations=applied,
            series_count=int(n_series),
            event_count=int(n_events),
            session_count=int(n_sessions),
            oldest=None if oldest is None else to_datetime(oldest),
            newest=None if newest is None else to_datetime(newest),
            internal_counts=internal,
            fine_resolutions=fine,
            fine_cutoff=None if math.isinf(fine_cut) else to_datetime(fine_cut),
            hourly_cutoff=None if math.isinf(hourly_cut) else to_datetime(hourly_cut),
            last_maintenance=None if last_run is None else to_datetime(float(last_run)),
            corrupt_files=[p for p in corrupt if not p.name.endswith(("-wal", "-journal"))],
        )


def default_stat(metric_type: MetricType) -> str:
    """The statistic a query shows when none is asked: ``sum`` for counters, else ``avg``.

    >>> default_stat(MetricType.COUNTER), default_stat(MetricType.HISTOGRAM)
    ('sum', 'avg')
    """
    return "sum" if metric_type is MetricType.COUNTER else "avg"


def align(t: float, step: float) -> float:
    """``t`` rounded down to an interval boundary: multiples of ``step`` since the epoch,
    except that week-multiple intervals start on Monday 00:00 UTC (the epoch was a
    Thursday), as ISO weeks do.

    >>> iso(align(parse_time("2026-01-01T12:00:00Z"), 7 * 86400))  # a Thursday
    '2025-12-29T00:00:00Z'
    """
    offset = _MONDAY if step % _WEEK == 0 else 0.0
    return math.floor((t - offset) / step) * step + offset


class _FilteredStore(Store):
    """:meth:`Store.filtered`: every series lookup also requires the view's tags."""

    def __init__(self, base: Store, tags: dict[str, str]) -> None:
        # Share the connection, lock and sketch cache: one store, seen through a filter.
        self.__dict__.update(base.__dict__)
        self._base = base
        self._filter = tags

    def series(
        self, name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> list[SeriesInfo]:
        """Stored series that also carry every tag of the view."""
        asked = _check_tags(tags)
        if any(self._filter.get(k, v) != v for k, v in asked.items()):
            return []  # the same key asked with another value: nothing can match both
        return super().series(name, {**self._filter, **asked})

    def _check_open(self) -> None:
        self._base._check_open()

    def close(self) -> None:
        """Nothing to close: the store this view was made from owns the connection."""

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, tags={self._filter!r})"


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _finite_or(v: float, default: float) -> float:
    return v if math.isfinite(v) else default


def _stat_value(
    acc: _Acc, stat: str, q: float | None, mtype: MetricType, seconds: float
) -> float | None:
    if q is not None:
        return None if acc.sketch is None else acc.sketch.quantile(q)
    if stat == "count":
        return float(acc.count)
    if stat == "sum":
        return acc.sum
    if stat == "avg":
        if acc.count:
            return acc.sum / acc.count
        return acc.last
    if stat == "min":
        return acc.min
    if stat == "max":
        return acc.max
    if stat == "last":
        return acc.last
    # rate: per second over the interval; counters count what was added, others how often.
    total = acc.sum if mtype is MetricType.COUNTER else float(acc.count)
    return total / seconds if seconds > 0 else None


def _record(
    info: SeriesInfo,
    res: int,
    bstart: float,
    count: int,
    total: float,
    mn: float | None,
    mx: float | None,
    last: float | None,
    blob: bytes | None,
) -> ExportRecord:
    pcts: list[float | None] = [None, None, None]
    mn, one = _db.single_min(blob, int(count), mn, total)
    if one is not None:
        mx = one
    if blob is not None and not blob:  # _db.SINGLE_VALUE: every observation equals min
        pcts = [None if mn is None or not count else float(mn)] * 3
    elif blob is not None:
        pcts = QuantileSketch.from_bytes(blob).quantiles((0.5, 0.95, 0.99))
    return ExportRecord(
        name=info.name,
        type=info.metric_type.value,
        tags=dict(info.tags),
        start=float(bstart),
        end=float(bstart) + res,
        count=int(count),
        sum=float(total),
        min=mn,
        max=mx,
        last=last,
        p50=pcts[0],
        p95=pcts[1],
        p99=pcts[2],
    )


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (``mode=ro``): nothing moved, migrated or created.

    In a directory we may not write to, SQLite cannot create the WAL index; the file is then
    opened ``immutable`` (nobody can be writing there either).
    """
    if not path.is_file():
        raise StoreError(
            f"no sounding store at {path}: nothing has been recorded there yet "
            "(check --data-dir / SOUNDING_DATA_DIR)"
        )
    uri = "file:" + urllib.parse.quote(str(path)) + "?mode=ro"
    conn: sqlite3.Connection | None = None
    for suffix in ("", "&immutable=1"):
        try:
            conn = sqlite3.connect(
                uri + suffix,
                uri=True,
                timeout=_db.BUSY_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(_db.BUSY_TIMEOUT * 1000)}")
            pending = STORAGE_MIGRATIONS.pending(conn)
            break
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
                conn = None
            if _db.is_corruption(exc):
                raise StoreError(
                    f"the store at {path} is damaged ({exc}); `sounding doctor` says how to "
                    "fix it (reading never changes it)"
                ) from exc
            if suffix:
                raise StoreError(f"cannot open the store at {path} for reading: {exc}") from exc
    assert conn is not None
    if pending:
        conn.close()
        raise StoreError(
            f"the store at {path} has an older layout (missing {', '.join(pending)}); the "
            "application migrates it the next time it records (reading never changes it)"
        )
    return conn


def open_store(
    path_or_data_dir: str | os.PathLike[str],
    *,
    create: bool = False,
    metrics: MetricsConfig | None = None,
    read_only: bool = False,
) -> Store:
    """Open the store in a data directory (``<dir>/telemetry.db``) or at a file path.

    Raises :class:`StoreError` naming the path when there is no store there (unless
    ``create``) or it cannot be opened. A corrupt file is moved aside
    (``telemetry.db.corrupt-<time>``, reported through the ``sounding`` logger) and a fresh
    store created; :attr:`Store.recovered_from` then says where it went. An older schema is
    migrated.

    With ``read_only`` the file is opened with SQLite's ``mode=ro`` and never changed: no
    migration, and a corrupt file raises :class:`StoreError` instead of being moved aside
    (only the writer does that). Every CLI command that only reads uses it, so a read-only
    directory or a copied store can be inspected.
    """
    if not isinstance(path_or_data_dir, (str, os.PathLike)):
        raise InvalidTypeError("path_or_data_dir", path_or_data_dir, "a str or os.PathLike path")
    path = _db.resolve_path(path_or_data_dir)
    if read_only:
        if create:
            raise InvalidValueError("create", create, "False when read_only is True")
        return Store(_connect_read_only(path), path, metrics=metrics)
    try:
        conn, moved = _db.connect(path, create=create)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    return Store(conn, path, metrics=metrics, recovered_from=moved)
