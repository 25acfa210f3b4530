"""L2 storage: the embedded SQLite time-series store, its writer, retention and queries.

The writer (:class:`SQLiteSink`) is what the runtime hands each flush to; readers open the
same file with :func:`open_store`. See ``docs/storage.md`` for the schema, resolutions,
retention, the query API and fault behaviour.
"""

from __future__ import annotations

# The writer is what a process that only records needs (its exit flush imports it); the
# query side (store, times) loads on first access, so that flush does not pay for it.
from sounding.storage.migrations import Migrations
from sounding.storage.sink import SQLiteSink

TYPE_CHECKING = False

_LAZY = {
    "MaintenanceReport": "sounding.storage._retention",
    "STATS": "sounding.storage.store",
    "Distribution": "sounding.storage.store",
    "ExportRecord": "sounding.storage.store",
    "QueryPoint": "sounding.storage.store",
    "SeriesInfo": "sounding.storage.store",
    "SessionInfo": "sounding.storage.store",
    "Store": "sounding.storage.store",
    "StoreStatus": "sounding.storage.store",
    "open_store": "sounding.storage.store",
    "parse_duration": "sounding.storage.times",
    "parse_time": "sounding.storage.times",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sounding.storage' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from typing import Any

    from sounding.storage._retention import MaintenanceReport
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
