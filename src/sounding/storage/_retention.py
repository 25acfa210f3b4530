"""Retention: drop rows past their resolution's lifetime, incrementally.

Rollups need no batch job: the writer merges every aggregate into its finest row *and* into
the hourly and daily rows in the same transaction (sketches merge exactly), so a coarser row
is always complete before any finer row it summarises is dropped. Maintenance therefore only
deletes: finest rows older than ``retention_days`` (cut at an hour boundary), hourly rows
older than :data:`HOURLY_RETENTION_DAYS` (cut at a day boundary), events older than
``retention_days`` and sessions older than the hourly retention. Daily rows are kept forever.

Each delete walks the primary key of one series and resolution, so the work is proportional
to the number of series plus the rows removed, not to the size of the table. The cut-offs
are recorded in ``meta`` so queries know where a finer resolution stops being complete.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sounding.storage._db import (
    DAY,
    HOUR,
    HOURLY_RETENTION_DAYS,
    MAINTENANCE_EVERY,
    fine_resolutions,
    floor_to,
    get_meta,
    rollback,
    set_meta,
)

__all__ = ["MAINTENANCE_EVERY", "MaintenanceReport", "cutoffs", "maintain"]


@dataclass(frozen=True)
class MaintenanceReport:
    """What one maintenance pass removed, and the cut-offs now in force (epoch seconds)."""

    points_deleted: int
    events_deleted: int
    sessions_deleted: int
    fine_cutoff: float
    hourly_cutoff: float


def cutoffs(conn: sqlite3.Connection) -> tuple[float, float]:
    """``(fine_cutoff, hourly_cutoff)``: before these times finest / hourly rows are gone."""

    def read(key: str) -> float:
        raw = get_meta(conn, key)
        try:
            return float(raw) if raw is not None else float("-inf")
        except ValueError:
            return float("-inf")

    return read("retention.fine_cutoff"), read("retention.hourly_cutoff")


def maintain(conn: sqlite3.Connection, *, retention_days: int, now: float) -> MaintenanceReport:
    """One retention pass in one transaction (``conn`` in autocommit mode)."""
    fine_cut = floor_to(now - retention_days * DAY, HOUR)
    hourly_cut = floor_to(now - HOURLY_RETENTION_DAYS * DAY, DAY)
    try:
        conn.execute("BEGIN IMMEDIATE")  # inside: an interrupt as it returns rolls back
        old_fine, old_hourly = cutoffs(conn)
        # Never move a cut-off backwards: rows before the old one are already gone.
        fine_cut = max(fine_cut, old_fine)
        hourly_cut = max(hourly_cut, old_hourly)
        fine = fine_resolutions(conn)
        points = 0
        for (sid,) in conn.execute("SELECT id FROM series").fetchall():
            for res in fine:
                points += conn.execute(
                    "DELETE FROM points WHERE series_id = ? AND resolution = ? "
                    "AND bucket_start < ?",
                    (sid, res, fine_cut),
                ).rowcount
            points += conn.execute(
                "DELETE FROM points WHERE series_id = ? AND resolution = ? AND bucket_start < ?",
                (sid, HOUR, hourly_cut),
            ).rowcount
        events = conn.execute(
            "DELETE FROM events WHERE timestamp < ?", (now - retention_days * DAY,)
        ).rowcount
        sessions = conn.execute("DELETE FROM sessions WHERE started < ?", (hourly_cut,)).rowcount
        set_meta(conn, "retention.fine_cutoff", repr(fine_cut))
        set_meta(conn, "retention.hourly_cutoff", repr(hourly_cut))
        set_meta(conn, "maintenance.last_run", repr(now))
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return MaintenanceReport(points, events, sessions, fine_cut, hourly_cut)
