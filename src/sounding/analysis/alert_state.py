"""Persisted alert state per (rule, series): the memory and SQLite state stores.

The state machine itself lives in :mod:`sounding.analysis.alerts`; this module only holds
its state and keeps it between evaluations (and between processes, with SQLite).
"""

from __future__ import annotations

import enum
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sounding.core.exceptions import StoreError
from sounding.core.private import ensure_private_file

__all__ = [
    "AlertState",
    "AlertStateStore",
    "AlertStatus",
    "MemoryAlertStateStore",
    "SQLiteAlertStateStore",
]


class AlertStatus(str, enum.Enum):
    """Where a (rule, series) stands.

    ``inactive`` -> ``pending`` (condition true, waiting ``for_``) -> ``firing`` ->
    ``recovering`` (recovered, waiting ``keep_firing_for``) -> ``resolved`` (then
    ``inactive`` at the next evaluation that does not breach).
    """

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RECOVERING = "recovering"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertState:
    """The persisted state of one rule for one series.

    ``since`` is when the current status began; ``active_since`` when the rule last became
    firing (``None`` unless pending/firing/recovering: for pending, when the condition first
    held); ``value`` and ``evaluated_at`` the last evaluation (``value`` ``None`` for no data).
    """

    rule: str
    series: str
    status: AlertStatus
    since: float
    active_since: float | None = None
    value: float | None = None
    evaluated_at: float | None = None


@runtime_checkable
class AlertStateStore(Protocol):
    """Where alert states live between evaluations."""

    def load(self, rule: str, series: str) -> AlertState | None:
        """The state of ``rule`` for ``series``, or ``None`` if never evaluated."""

    def save(self, state: AlertState) -> None:
        """Store ``state`` (replacing the previous one for its rule and series)."""

    def states(self, rule: str | None = None) -> list[AlertState]:
        """All states (of one rule), sorted by rule and series."""


class MemoryAlertStateStore:
    """Alert states in a dict (tests, and one-shot evaluations)."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], AlertState] = {}
        self._lock = threading.Lock()

    def load(self, rule: str, series: str) -> AlertState | None:
        """The state, or ``None``."""
        with self._lock:
            return self._states.get((rule, series))

    def save(self, state: AlertState) -> None:
        """Keep the state."""
        with self._lock:
            self._states[(state.rule, state.series)] = state

    def states(self, rule: str | None = None) -> list[AlertState]:
        """All states (of one rule), sorted."""
        with self._lock:
            items = sorted(self._states.items())
        return [s for (r, _), s in items if rule is None or r == rule]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_state(
    rule TEXT NOT NULL,
    series TEXT NOT NULL,
    status TEXT NOT NULL,
    since REAL NOT NULL,
    active_since REAL,
    value REAL,
    evaluated_at REAL,
    PRIMARY KEY (rule, series)
)
"""


_SELECT = "SELECT rule, series, status, since, active_since, value, evaluated_at FROM alert_state"


def read_states(conn: sqlite3.Connection, rule: str | None = None) -> list[AlertState]:
    """The states kept in ``conn``'s ``alert_state`` table (of one rule), sorted by rule and
    series, read without writing anything: no table is created and no file touched, so a
    read-only store (``mode=ro``) or a copy can be listed. No table: no states."""
    try:
        if rule is None:
            rows = conn.execute(_SELECT + " ORDER BY rule, series").fetchall()
        else:
            rows = conn.execute(_SELECT + " WHERE rule = ? ORDER BY series", (rule,)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise StoreError(f"cannot read alert state: {exc}") from exc
    return [SQLiteAlertStateStore._row(r) for r in rows]


class SQLiteAlertStateStore:
    """Alert states in the table ``alert_state`` of a SQLite file (created if missing).

    The file may be the telemetry store itself: the table is independent of the store's
    schema. ``":memory:"`` works for tests. Raises :class:`StoreError` if the file cannot
    be opened.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                # Private from the first byte, never through a planted symlink.
                ensure_private_file(self.path)
            self._conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            with self._conn:
                self._conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open alert state in {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    @staticmethod
    def _row(
        row: tuple[str, str, str, float, float | None, float | None, float | None],
    ) -> AlertState:
        return AlertState(
            rule=row[0],
            series=row[1],
            status=AlertStatus(row[2]),
            since=row[3],
            active_since=row[4],
            value=row[5],
            evaluated_at=row[6],
        )

    def load(self, rule: str, series: str) -> AlertState | None:
        """The state, or ``None``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT rule, series, status, since, active_since, value, evaluated_at "
                "FROM alert_state WHERE rule = ? AND series = ?",
                (rule, series),
            ).fetchone()
        return None if row is None else self._row(row)

    def save(self, state: AlertState) -> None:
        """Insert or replace the state, in its own transaction."""
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO alert_state"
                "(rule, series, status, since, active_since, value, evaluated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    state.rule,
                    state.series,
                    state.status.value,
                    state.since,
                    state.active_since,
                    state.value,
                    state.evaluated_at,
                ),
            )

    def states(self, rule: str | None = None) -> list[AlertState]:
        """All states (of one rule), sorted by rule and series."""
        sql = (
            "SELECT rule, series, status, since, active_since, value, evaluated_at FROM alert_state"
        )
        with self._lock:
            if rule is None:
                rows = self._conn.execute(sql + " ORDER BY rule, series").fetchall()
            else:
                rows = self._conn.execute(
                    sql + " WHERE rule = ? ORDER BY series", (rule,)
                ).fetchall()
        return [self._row(r) for r in rows]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()
