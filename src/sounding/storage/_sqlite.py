"""The SQLite module the store uses: the C module itself.

The `sqlite3` package adds datetime adapters (and imports `datetime`, about 1 ms of a short
process's exit) that the store never uses, so the store imports ``_sqlite3`` when the
interpreter has it; type checkers see the `sqlite3` package, whose names it shares.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3 as sqlite3
else:
    try:
        import _sqlite3 as sqlite3
    except ImportError:  # an interpreter without it
        import sqlite3

__all__ = ["sqlite3"]
