"""Named schema migrations, each applied in its own transaction and recorded in the database.

This follows sqlite-utils' ``migrations``: a :class:`Migrations` object is an ordered list of
named functions; :meth:`Migrations.apply` runs the ones not yet recorded in the
``migrations`` table, each inside ``BEGIN IMMEDIATE ... COMMIT`` so a crash leaves the schema
either before or after a step, never half-way. Several processes may open the same file at
once: a step is re-checked after taking the write lock, so it runs exactly once.

Other layers may keep their own tables in the store with their own set, for example::

    alerts = Migrations("sounding.analysis")

    @alerts()
    def m001_alert_state(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE alert_state (rule TEXT PRIMARY KEY, state TEXT)")

    alerts.apply(store.connection)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sounding.storage._sqlite import sqlite3

__all__ = ["STORAGE_MIGRATIONS", "MigrationStep", "Migrations"]

#: A migration step: receives the connection inside an open transaction.
MigrationStep = Callable[[sqlite3.Connection], None]

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS migrations (
    id INTEGER PRIMARY KEY,
    migration_set TEXT NOT NULL,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL,
    UNIQUE (migration_set, name)
)
"""


class Migrations:
    """An ordered, named set of migrations (register with the instance as a decorator)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._steps: list[tuple[str, MigrationStep]] = []

    def __call__(self, *, name: str | None = None) -> Callable[[MigrationStep], MigrationStep]:
        """Decorator registering a step under ``name`` (default: the function's name)."""

        def register(fn: MigrationStep) -> MigrationStep:
            step_name = name or fn.__name__
            if any(n == step_name for n, _ in self._steps):
                raise ValueError(f"migration {step_name!r} is already registered in {self.name}")
            self._steps.append((step_name, fn))
            return fn

        return register

    @property
    def names(self) -> list[str]:
        """The step names in order."""
        return [n for n, _ in self._steps]

    def applied(self, conn: sqlite3.Connection) -> list[str]:
        """Names of this set's steps recorded in ``conn`` (in the order applied)."""
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
        ).fetchone()
        if not exists:
            return []
        rows = conn.execute(
            "SELECT name FROM migrations WHERE migration_set = ? ORDER BY id", (self.name,)
        ).fetchall()
        return [r[0] for r in rows]

    def pending(self, conn: sqlite3.Connection) -> list[str]:
        """Names of steps not yet applied to ``conn``."""
        done = set(self.applied(conn))
        return [n for n, _ in self._steps if n not in done]

    def apply(self, conn: sqlite3.Connection, *, stop_before: str | None = None) -> list[str]:
        """Apply pending steps in order, each in its own transaction; returns their names.

        ``stop_before`` stops at that step (tests use it to build an older file). ``conn``
        must be in autocommit mode (``isolation_level=None``).
        """
        ran: list[str] = []
        if not self.pending(conn) and stop_before is None:
            return ran
        for step_name, fn in self._steps:
            if step_name == stop_before:
                break
            try:
                conn.execute("BEGIN IMMEDIATE")  # inside: an interrupt as it returns rolls back
                conn.execute(_CREATE_TABLE)
                # Another process may have applied it while we waited for the lock.
                done = conn.execute(
                    "SELECT 1 FROM migrations WHERE migration_set = ? AND name = ?",
                    (self.name, step_name),
                ).fetchone()
                if not done:
                    fn(conn)
                    conn.execute(
                        "INSERT INTO migrations (migration_set, name, applied_at) VALUES (?,?,?)",
                        (self.name, step_name, time.time()),
                    )
                    ran.append(step_name)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return ran


#: The store's own schema.
STORAGE_MIGRATIONS = Migrations("sounding.storage")


@STORAGE_MIGRATIONS()
def m001_initial(conn: sqlite3.Connection) -> None:
    """Series, their interval aggregates at several resolutions, events and sessions."""
    conn.execute(
        """
        CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            unit TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL,
            created REAL NOT NULL,
            UNIQUE (name, tags)
        )
        """
    )
    # One row per series, resolution (seconds) and bucket. WITHOUT ROWID keeps the rows
    # clustered by series and time, so a range query reads contiguous pages.
    conn.execute(
        """
        CREATE TABLE points (
            series_id INTEGER NOT NULL REFERENCES series (id),
            resolution INTEGER NOT NULL,
            bucket_start REAL NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            sum REAL NOT NULL DEFAULT 0,
            min REAL,
            max REAL,
            last REAL,
            last_time REAL,
            sketch BLOB,
            PRIMARY KEY (series_id, resolution, bucket_start)
        ) WITHOUT ROWID
        """
    )
    conn.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            timestamp REAL NOT NULL,
            level TEXT NOT NULL,
            category TEXT NOT NULL,
            event TEXT NOT NULL,
            logger TEXT NOT NULL,
            session_id TEXT NOT NULL,
            fields TEXT NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX events_by_time ON events (timestamp)")
    conn.execute(
        """
        CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            started REAL,
            ended REAL,
            duration REAL,
            app_version TEXT,
            platform TEXT,
            python_version TEXT
        )
        """
    )


@STORAGE_MIGRATIONS()
def m002_meta_and_event_category(conn: sqlite3.Connection) -> None:
    """Key-value state (maintenance watermarks, retention cutoffs) and events by category."""
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("CREATE INDEX events_by_category ON events (category, timestamp)")
    conn.execute("CREATE INDEX sessions_by_start ON sessions (started)")
    # Queries find the finest rows through this list; recover it from what is stored.
    fine = sorted(
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT resolution FROM points WHERE resolution NOT IN (3600, 86400)"
        )
    )
    if fine:
        import json  # once per store: a short process need not import it

        conn.execute("INSERT INTO meta (key, value) VALUES ('resolutions', ?)", (json.dumps(fine),))


@STORAGE_MIGRATIONS()
def m003_events_by_time_only(conn: sqlite3.Connection) -> None:
    """Events keep one index, by time: the one by category cost every event's insert about a
    quarter of its SQLite time, for queries the time index serves well enough (a category
    filter scans the time range asked for; listing the categories scans the table, as listing
    the event names already did; see docs/performance.md, "Log event, third round")."""
    conn.execute("DROP INDEX IF EXISTS events_by_category")
