"""L2 storage: the embedded SQLite time-series store, its writer, retention and queries.

The writer (:class:`SQLiteSink`) is what the runtime hands each flush to; readers open the
same file with :func:`open_store`. See ``docs/storage.md`` for the schema, resolutions,
retention, the query API and fault behaviour.
"""

from __future__ import annotations

from sounding.storage._retention import MaintenanceReport
from sounding.storage.migrations import Migrations
from sounding.storage.sink import SQLiteSink
from sounding.storage.store import (
    STATS,
    Distribution,
    ExportRecord,
    QueryPoint,
    SeriesInfo,
    SessionInfo,
    Store,
    StoreStatus,
    open_store,
)
from sounding.storage.times import parse_duration, parse_time

__all__ = [
    "STATS",
    "Distribution",
    "ExportRecord",
    "MaintenanceReport",
    "Migrations",
    "QueryPoint",
    "SQLiteSink",
    "SeriesInfo",
    "SessionInfo",
    "Store",
    "StoreStatus",
    "open_store",
    "parse_duration",
    "parse_time",
]
