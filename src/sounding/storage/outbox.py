"""Durable queues kept on disk: the Sentry outbox and the exporters' per-destination cursors.

Two shapes of "send later, at least once":

- :class:`Outbox` is a bounded SQLite queue of opaque payloads in its own file (mode 0600):
  written before sending, deleted once the server accepted them. The Sentry integration keeps
  its envelopes there.
- :class:`ExportCursors` keeps, inside the telemetry store, how far each export destination
  has been delivered (the ``bucket_start`` of the last interval the server acknowledged) and
  the running totals that destination was sent, so counters leave as running totals that
  continue across runs. :func:`read_intervals` reads the closed intervals after a cursor.
  Advancing the cursor and the totals is one transaction: after a crash either both moved or
  neither did, so what was acknowledged is never sent again and nothing is skipped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sounding.core import health
from sounding.core.clock import get_clock
from sounding.core.types import MetricType
from sounding.storage import _db
from sounding.storage._retention import cutoffs
from sounding.storage.migrations import Migrations

__all__ = [
    "EXPORT_MIGRATIONS",
    "CursorState",
    "ExportCursors",
    "ExportLock",
    "Interval",
    "Outbox",
    "RunningTotal",
    "read_intervals",
]


class Outbox:
    """A bounded SQLite queue of serialized payloads (file mode 0600).

    Rows are written before sending and deleted when the server accepted them; when more
    than ``max_items`` wait, the oldest are dropped and counted (``<prefix>.dropped``).
    Every method is safe to call from any thread and never raises (failures are counted
    under ``health_prefix``: ``.open``, ``.read``, ``.write``, ``.too_large``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_items: int = 100,
        *,
        health_prefix: str = "outbox",
        max_item_bytes: int = 1 << 20,
    ) -> None:
        self.path = Path(path)
        self.max_items = max_items
        self.max_item_bytes = max_item_bytes
        self._prefix = health_prefix
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None or self._closed:
            return self._conn
        try:
            # Create the file ourselves so it is private from the first byte (no symlinks).
            from sounding.core.private import ensure_private_file

            ensure_private_file(self.path)
            conn = sqlite3.connect(
                self.path, timeout=1.0, check_same_thread=False, isolation_level=None
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS outbox ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " created REAL NOT NULL,"
                " attempts INTEGER NOT NULL DEFAULT 0,"
                " envelope BLOB NOT NULL)"
            )
            self._conn = conn
        except Exception as failure:
            health.failure(self._prefix + ".open", failure)
            self._closed = True
        return self._conn

    def put(self, data: bytes) -> int | None:
        """Keep ``data``; returns its row id, or ``None`` if it could not be kept."""
        if len(data) > self.max_item_bytes:
            health.count(self._prefix + ".too_large")
            return None
        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                cur = conn.execute(
                    "INSERT INTO outbox (created, envelope) VALUES (?, ?)",
                    (get_clock().time(), sqlite3.Binary(data)),
                )
                row = cur.lastrowid
                (n,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
                over = int(n) - self.max_items
                if over > 0:
                    conn.execute(
                        "DELETE FROM outbox WHERE id IN "
                        "(SELECT id FROM outbox ORDER BY id LIMIT ?)",
                        (over,),
                    )
                    health.count(self._prefix + ".dropped", over)
                return row
            except Exception as failure:
                health.failure(self._prefix + ".write", failure)
                return None

    def pending(self, exclude: Sequence[int] = ()) -> list[tuple[int, bytes]]:
        """Waiting envelopes, oldest first, except the rows in ``exclude``."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return []
            try:
                rows = conn.execute("SELECT id, envelope FROM outbox ORDER BY id").fetchall()
            except Exception as failure:
                health.failure(self._prefix + ".read", failure)
                return []
        skip = set(exclude)
        return [(int(i), bytes(d)) for i, d in rows if i not in skip]

    def delete(self, row: int) -> None:
        """Forget a row (sent, or rejected for good)."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.execute("DELETE FROM outbox WHERE id = ?", (row,))
            except Exception as failure:
                health.failure(self._prefix + ".write", failure)

    def failed(self, row: int) -> None:
        """Count a failed attempt on a row."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (row,))
            except Exception as failure:
                health.failure(self._prefix + ".write", failure)

    def __len__(self) -> int:
        with self._lock:
            conn = self._connect()
            if conn is None:
                return 0
            try:
                return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            except Exception as failure:
                health.failure(self._prefix + ".read", failure)
                return 0

    def close(self) -> None:
        """Close the connection; later calls do nothing (idempotent)."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class ExportLock:
    """One exporting process per data dir: an advisory lock on ``export.lock`` beside the store.

    Several processes (workers forked by a server, a CLI ``push``) may share a store; if two
    of them read the same cursor they would send the same batch twice. ``acquire()`` never
    blocks: a process that does not get the lock skips its cycle (the holder delivers for
    everyone, since every process writes to the same store). Where ``fcntl`` is missing
    (Windows) the lock always succeeds.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / "export.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free; ``True`` when this process holds it."""
        if self._fd is not None:
            return True
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return True  # cannot lock a read-only dir; the store will refuse writes anyway
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Let another process export (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---------------------------------------------------------------------------------------
# Export cursors, in the telemetry store
# ---------------------------------------------------------------------------------------

#: The exporters' tables in the store, migrated on first use.
EXPORT_MIGRATIONS = Migrations("sounding.export")


@EXPORT_MIGRATIONS()
def m001_export_cursors(conn: sqlite3.Connection) -> None:
    """Per-destination delivery position, counters of what was sent or refused, totals."""
    conn.execute(
        """
        CREATE TABLE export_cursor (
            destination TEXT PRIMARY KEY,
            position REAL NOT NULL,
            updated REAL NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            samples INTEGER NOT NULL DEFAULT 0,
            refused INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            last_success REAL,
            last_error TEXT
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE export_totals (
            destination TEXT NOT NULL,
            series TEXT NOT NULL,
            count INTEGER NOT NULL,
            sum REAL NOT NULL,
            sketch BLOB,
            PRIMARY KEY (destination, series)
        ) WITHOUT ROWID
        """
    )


@dataclass
class RunningTotal:
    """What one output series has been sent so far: counts, sum and (histograms) a sketch."""

    count: int = 0
    sum: float = 0.0
    sketch: bytes | None = None


@dataclass
class CursorState:
    """One destination's row: where delivery stands and what it has cost."""

    destination: str
    position: float
    updated: float
    requests: int = 0
    samples: int = 0
    refused: int = 0
    failures: int = 0
    last_success: float | None = None
    last_error: str | None = None
    totals: dict[str, RunningTotal] = field(default_factory=dict)


@dataclass(frozen=True)
class Interval:
    """One stored, closed interval of one series, with its sketch blob (histograms)."""

    name: str
    metric_type: MetricType
    unit: str
    tags: tuple[tuple[str, str], ...]
    start: float
    end: float
    count: int
    sum: float
    min: float | None
    max: float | None
    last: float | None
    sketch: bytes | None


class ExportCursors:
    """The cursor rows of the store behind ``conn`` (migrated on creation).

    Not thread-safe by itself: one exporter thread (or one CLI command) owns a connection.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        EXPORT_MIGRATIONS.apply(conn)

    @staticmethod
    def read_only(conn: sqlite3.Connection) -> list[CursorState]:
        """Every destination's state from a read-only connection (no migration)."""
        rows = conn.execute(
            "SELECT destination, position, updated, requests, samples, refused, failures, "
            "last_success, last_error FROM export_cursor ORDER BY destination"
        ).fetchall()
        return [CursorState(*r) for r in rows]

    def get(self, destination: str, *, start: float, with_totals: bool = True) -> CursorState:
        """The state of ``destination``; a new one starts just before ``start``."""
        row = self.conn.execute(
            "SELECT position, updated, requests, samples, refused, failures, last_success, "
            "last_error FROM export_cursor WHERE destination = ?",
            (destination,),
        ).fetchone()
        if row is None:
            return CursorState(destination, start - 1e-6, get_clock().time())
        state = CursorState(destination, *row)
        if with_totals:
            for series, count, total, sketch in self.conn.execute(
                "SELECT series, count, sum, sketch FROM export_totals WHERE destination = ?",
                (destination,),
            ):
                state.totals[series] = RunningTotal(int(count), float(total), sketch)
        return state

    def all(self) -> list[CursorState]:
        """Every destination's state (without totals), for ``sounding status``."""
        rows = self.conn.execute(
            "SELECT destination, position, updated, requests, samples, refused, failures, "
            "last_success, last_error FROM export_cursor ORDER BY destination"
        ).fetchall()
        return [CursorState(*r) for r in rows]

    def advance(
        self,
        state: CursorState,
        position: float,
        *,
        samples: int,
        refused: int,
        changed: Iterable[str],
        error: str | None = None,
    ) -> None:
        """Move ``state`` to ``position`` and persist it with the ``changed`` totals, atomically."""
        now = get_clock().time()
        try:
            self.conn.execute("BEGIN IMMEDIATE")  # inside: an interrupt as it returns rolls back
            self.conn.execute(
                "INSERT INTO export_cursor (destination, position, updated, requests, samples, "
                "refused, failures, last_success, last_error) VALUES (?, ?, ?, 1, ?, ?, 0, ?, ?) "
                "ON CONFLICT (destination) DO UPDATE SET position = excluded.position, "
                "updated = excluded.updated, requests = requests + 1, "
                "samples = samples + excluded.samples, refused = refused + excluded.refused, "
                "last_success = coalesce(excluded.last_success, last_success), "
                "last_error = coalesce(excluded.last_error, last_error)",
                (
                    state.destination,
                    position,
                    now,
                    samples,
                    refused,
                    None if error else now,
                    error,
                ),
            )
            for key in changed:
                t = state.totals[key]
                self.conn.execute(
                    "INSERT OR REPLACE INTO export_totals (destination, series, count, sum, "
                    "sketch) VALUES (?, ?, ?, ?, ?)",
                    (state.destination, key, t.count, t.sum, t.sketch),
                )
            self.conn.execute("COMMIT")
        except BaseException:
            _db.rollback(self.conn)
            raise
        state.position = position
        state.updated = now
        state.requests += 1
        state.samples += samples
        state.refused += refused
        if error:
            state.last_error = error
        else:
            state.last_success = now

    def failed(self, state: CursorState, error: str) -> None:
        """Record a failed attempt (the cursor does not move)."""
        now = get_clock().time()
        self.conn.execute(
            "INSERT INTO export_cursor (destination, position, updated, failures, last_error) "
            "VALUES (?, ?, ?, 1, ?) ON CONFLICT (destination) DO UPDATE SET "
            "failures = failures + 1, updated = excluded.updated, last_error = excluded.last_error",
            (state.destination, state.position, now, error[:500]),
        )
        state.failures += 1
        state.last_error = error[:500]

    def forget(self, destination: str) -> None:
        """Drop a destination's cursor and totals (the next export starts afresh)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")  # inside: an interrupt as it returns rolls back
            self.conn.execute("DELETE FROM export_cursor WHERE destination = ?", (destination,))
            self.conn.execute("DELETE FROM export_totals WHERE destination = ?", (destination,))
            self.conn.execute("COMMIT")
        except BaseException:
            _db.rollback(self.conn)
            raise


def read_intervals(
    conn: sqlite3.Connection,
    after: float,
    until: float,
    limit: int,
    *,
    names: Sequence[str] | None = None,
) -> tuple[list[Interval], float | None]:
    """Closed intervals with ``after < bucket_start`` that ended by ``until``, oldest first.

    Returns at most about ``limit`` intervals, always whole ``bucket_start`` groups (every
    series of one instant together, so a batch never splits an instant), and the position
    to store once they are delivered (``None`` when there is nothing to read). The finest
    rows still kept are read; older history comes from the hourly, then the daily rollups,
    as :meth:`Store.records` does. Internal ``sounding.internal.*`` series are included.
    """
    fine_cut, hourly_cut = cutoffs(conn)
    fine = _db.fine_resolutions(conn)
    regions: list[tuple[list[int], float, float]] = [([_db.DAY], -math.inf, hourly_cut)]
    if fine:
        regions += [([_db.HOUR], hourly_cut, fine_cut), (fine, fine_cut, math.inf)]
    else:
        regions.append(([_db.HOUR], hourly_cut, math.inf))
    series = {
        int(r[0]): r[1:]
        for r in conn.execute("SELECT id, name, type, unit, tags FROM series").fetchall()
    }
    wanted = set(names) if names is not None else None
    for resolutions, lo, hi in regions:
        if max(lo, after) >= min(hi, until):
            continue
        rows = _region_rows(conn, list(series), resolutions, lo, hi, until, limit, after)
        if not rows:
            continue
        out: list[Interval] = []
        for sid, res, bstart, count, total, mn, mx, last, blob in rows:
            info = series.get(int(sid))
            if info is None:
                continue
            name, mtype, unit, tags = info
            if wanted is not None and name not in wanted:
                continue
            try:
                parsed = json.loads(tags)
                pairs = parsed.items() if isinstance(parsed, dict) else parsed
                tag_items = tuple(sorted((str(k), str(v)) for k, v in pairs))
                kind = MetricType(mtype)
            except (ValueError, TypeError, AttributeError):
                health.count("export.bad_series")
                continue
            mn, one = _db.single_min(blob, int(count), mn, total)
            if one is not None:
                mx = one
            out.append(
                Interval(
                    name,
                    kind,
                    unit or "",
                    tag_items,
                    float(bstart),
                    float(bstart) + res,
                    int(count),
                    float(total),
                    mn,
                    mx,
                    last,
                    _db.stored_sketch_bytes(blob, int(count), mn),
                )
            )
        return out, float(rows[-1][2])
    return [], None


def _region_rows(
    conn: sqlite3.Connection,
    ids: list[int],
    resolutions: list[int],
    lo: float,
    hi: float,
    until: float,
    limit: int,
    after: float,
) -> list[Any]:
    """Rows of whole instants after ``after``, about ``limit`` of them, series by series.

    One indexed range read per series (the primary key is series, resolution, time), so a
    cycle costs O(series x log rows) however large the store is. Each series gives at most
    ``k = limit / series`` rows; every row up to the earliest last row of a series that hit
    ``k`` is then known for all series, so the batch ends there and never splits an instant.
    """
    k = max(1, limit // max(len(ids), 1))
    marks = ",".join("?" * len(resolutions))
    sql = (
        "SELECT series_id, resolution, bucket_start, count, sum, min, max, last, sketch "
        f"FROM points WHERE series_id = ? AND resolution IN ({marks}) AND bucket_start > ? "
        "AND bucket_start >= ? AND bucket_start < ? AND bucket_start + resolution <= ? "
        "ORDER BY bucket_start LIMIT ?"
    )
    rows: list[Any] = []
    cut = math.inf
    bounds = [after, _finite(lo, -1e300), _finite(hi, 1e300), until]
    for sid in ids:
        got = conn.execute(sql, [sid, *resolutions, *bounds, k]).fetchall()
        if len(got) == k:
            cut = min(cut, float(got[-1][2]))
        rows.extend(got)
    if math.isfinite(cut):
        rows = [r for r in rows if r[2] <= cut]
    rows.sort(key=lambda r: (r[2], r[0]))
    return rows


def _finite(v: float, default: float) -> float:
    return v if math.isfinite(v) else default
