"""Opening the SQLite file: location, permissions, pragmas, SQL functions, corruption recovery.

Shared by the writer (:class:`~sounding.storage.sink.SQLiteSink`) and the reader
(:class:`~sounding.storage.store.Store`) so both see the same file the same way.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable

from sounding.core import health
from sounding.core.exceptions import StoreError
from sounding.core.private import make_private_dir, make_private_file
from sounding.storage._sqlite import sqlite3
from sounding.storage.migrations import STORAGE_MIGRATIONS

TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path

    from sounding.core.sketch import QuantileSketch

#: Writers run maintenance at most this often (seconds).
MAINTENANCE_EVERY = 600.0

__all__ = [
    "BUSY_TIMEOUT",
    "DAY",
    "DB_NAME",
    "HOUR",
    "HOURLY_RETENTION_DAYS",
    "ROLLUP_RESOLUTIONS",
    "SINGLE_VALUE",
    "SketchCache",
    "add_fine_resolution",
    "connect",
    "fine_resolutions",
    "floor_to",
    "get_meta",
    "is_busy",
    "is_corruption",
    "move_aside",
    "raise_interrupt",
    "resolve_path",
    "rollback",
    "set_meta",
    "single_min",
    "single_value_sketch",
    "stored_sketch_bytes",
]

DB_NAME = "telemetry.db"
HOUR = 3600
DAY = 86400
#: Coarser resolutions every aggregate is also merged into at write time.
ROLLUP_RESOLUTIONS = (HOUR, DAY)
#: How long hourly rows are kept (about 13 months); daily rows are kept forever.
HOURLY_RETENTION_DAYS = 400
#: SQLite's own wait for a lock held by another connection or process (seconds).
BUSY_TIMEOUT = 5.0

#: The stored sketch of a row whose observations all equal its ``min`` (one observation a
#: minute, a constant): an empty blob, read as a sketch of ``count`` copies of ``min``. The
#: sketch itself (about 40 bytes for one value) would be most of such a row; an empty blob
#: costs one header byte, and cannot be mistaken for an older row (they hold a real sketch,
#: or ``NULL`` for counters and gauges). A row of one observation keeps no ``min`` and
#: ``max`` either (both ``NULL``): its value is its ``sum`` (see :func:`single_min`).
SINGLE_VALUE = b""

_DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


def resolve_path(path_or_dir: str | os.PathLike[str]) -> Path:
    """The store file for ``path_or_dir``.

    An existing directory, or a path that does not end in ``.db``/``.sqlite``/``.sqlite3``,
    means ``<dir>/telemetry.db``; anything else is the file itself.
    """
    from pathlib import Path

    return Path(resolve(path_or_dir))


def resolve(path_or_dir: str | os.PathLike[str]) -> str:
    """:func:`resolve_path` as a string (os.path: the exit flush imports no pathlib)."""
    p = os.path.expanduser(os.fspath(path_or_dir))
    # os.path.isdir/exists are False on OSError and ValueError (a name too long, a NUL
    # byte): opening it will say so.
    if os.path.isdir(p) or (not os.path.exists(p) and _suffix(p).lower() not in _DB_SUFFIXES):
        return os.path.join(p, DB_NAME)
    return p


def _suffix(path: str) -> str:
    # Path.suffix: the last dot of the final component, unless it starts the name.
    name = os.path.basename(path.rstrip(os.sep + (os.altsep or "")))
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def single_value_sketch(count: int, value: float | None) -> QuantileSketch:
    """The sketch a :data:`SINGLE_VALUE` row stands for: ``count`` copies of ``value``."""
    from sounding.core.sketch import DEFAULT_RELATIVE_ACCURACY, QuantileSketch

    sk = QuantileSketch(DEFAULT_RELATIVE_ACCURACY)
    if count > 0 and value is not None:
        sk.add(float(value), int(count))
    return sk


def single_min(
    blob: bytes | None, count: int, mn: float | None, total: float | None
) -> tuple[float | None, float | None]:
    """A stored row's ``min`` (its ``sum`` for a one-observation :data:`SINGLE_VALUE` row,
    which stores no min and max) and, for such a row, that value (else ``None``)."""
    if mn is None and blob is not None and not blob and count == 1 and total is not None:
        return float(total), float(total)
    return mn, None


def stored_sketch_bytes(
    blob: bytes | None, count: int, mn: float | None, total: float | None = None
) -> bytes | None:
    """A row's sketch as a full serialised sketch (a :data:`SINGLE_VALUE` row expanded), for
    readers that hand the bytes on (exports)."""
    if blob is None or len(blob):
        return None if blob is None else bytes(blob)
    mn, _ = single_min(blob, count, mn, total)
    if mn is None or count <= 0:
        return None
    return single_value_sketch(count, mn).to_bytes()


def _error_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    return code & 0xFF if isinstance(code, int) else None


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is not a database or is malformed."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(
        exc, (sqlite3.OperationalError, sqlite3.IntegrityError)
    ):
        return False
    code = _error_code(exc)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is a lock held by another connection (worth retrying)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = _error_code(exc)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _ensure_file(path: str | os.PathLike[str]) -> None:
    """Create the directory (0700) and an empty file (0600) if they do not exist; refuse a
    symlink, a file of another user or a world-writable directory (core/private.py)."""
    parent = os.path.dirname(os.fspath(path)) or os.curdir
    try:
        make_private_dir(parent)
    except OSError as exc:
        raise StoreError(f"cannot create the store directory {parent}: {exc}") from exc
    try:
        make_private_file(path)
    except OSError as exc:
        raise StoreError(f"cannot create the store file {path}: {exc}") from exc


class SketchCache:
    """Decoded sketches by their stored bytes, so merging into a row we wrote last time
    skips decoding it (decoding is the dominant cost of an UPSERT).

    Keyed by the exact bytes, so an entry can never disagree with what is stored, whoever
    wrote it. Bounded (``size`` entries, least recently used dropped). Entries are either
    owned (free to mutate) or borrowed (copied before mutating). Not thread-safe: callers
    hold their own lock.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[bytes, tuple[QuantileSketch, bool]] = OrderedDict()
        #: A ``KeyboardInterrupt``/``SystemExit`` (any non-``Exception``) raised inside the SQL
        #: function: SQLite can only report it as "user-defined function raised exception", so
        #: it is kept here for the caller to re-raise (see :func:`raise_interrupt`).
        self.interrupted: BaseException | None = None

    def put(self, data: bytes, sketch: QuantileSketch, *, owned: bool) -> None:
        """Remember that ``data`` decodes to ``sketch``."""
        self._items[data] = (sketch, owned)
        self._items.move_to_end(data)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def read(self, data: bytes) -> QuantileSketch:
        """The sketch for ``data``, not to be mutated."""
        hit = self._items.get(data)
        if hit is not None:
            self._items.move_to_end(data)
            return hit[0]
        from sounding.core.sketch import QuantileSketch  # only for histograms

        sk = QuantileSketch.from_bytes(data)
        self.put(data, sk, owned=True)
        return sk

    def take(self, data: bytes) -> QuantileSketch:
        """A sketch for ``data`` the caller may mutate (removed from the cache)."""
        hit = self._items.pop(data, None)
        if hit is None:
            from sounding.core.sketch import QuantileSketch

            return QuantileSketch.from_bytes(data)
        sk, owned = hit
        return sk if owned else sk.copy()

    def merge(self, a: bytes | None, b: bytes | None) -> bytes | None:
        """``a`` and ``b`` merged (the SQL function ``sounding_merge_sketch``)."""
        if a is None:
            return b
        if b is None:
            return a
        sk = self.take(a)
        sk.merge(self.read(b))
        out = sk.to_bytes()
        self.put(out, sk, owned=True)
        return out

    def discard(self, keys: list[bytes]) -> None:
        """Forget ``keys`` (entries that will not be merged into again)."""
        for k in keys:
            self._items.pop(k, None)

    def __contains__(self, data: object) -> bool:
        return data in self._items

    def clear(self) -> None:
        """Forget everything (after a failed transaction, for instance)."""
        self._items.clear()


def _configure(
    conn: sqlite3.Connection, cache: SketchCache, timeout: float = BUSY_TIMEOUT
) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode is None or str(mode[0]).lower() != "wal":
        raise StoreError(f"cannot switch the store to WAL mode (journal_mode={mode!r})")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Registered as an SQL function so an UPSERT merges sketches inside the statement.
    conn.create_function("sounding_merge_sketch", 2, _merge_function(cache), deterministic=True)


def _merge_function(cache: SketchCache) -> Callable[[bytes | None, bytes | None], bytes | None]:
    def merge(a: bytes | None, b: bytes | None) -> bytes | None:
        try:
            return cache.merge(a, b)
        except Exception:
            raise
        except BaseException as exc:
            # A signal handler's sys.exit() or a Ctrl-C landed here: SQLite would turn it
            # into an OperationalError and the host would keep running. Keep it to re-raise.
            cache.interrupted = exc
            raise

    return merge


def raise_interrupt(cache: SketchCache) -> None:
    """Re-raise a ``SystemExit``/``KeyboardInterrupt`` caught inside the SQL function."""
    exc, cache.interrupted = cache.interrupted, None
    if exc is not None:
        raise exc


def move_aside(where: str | os.PathLike[str], reason: BaseException | str) -> Path:
    """Rename a corrupt store (and its WAL) to ``<name>.corrupt-<UTC time>``; report it.

    Returns the new path. The stale ``-shm`` index is removed: it describes the old WAL.
    """
    from datetime import datetime, timezone  # only for a corrupt store
    from pathlib import Path

    path = Path(where)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        os.replace(path, target)
        for suffix in ("-wal", "-journal"):
            side = Path(str(path) + suffix)
            if side.exists():
                os.replace(side, Path(str(target) + suffix))
        shm = Path(str(path) + "-shm")
        if shm.exists():
            shm.unlink()
    except OSError as exc:
        raise StoreError(
            f"the store at {path} is corrupt and cannot be moved aside: {exc}"
        ) from exc
    exc_arg = reason if isinstance(reason, BaseException) else None
    health.failure(
        "storage.corrupt",
        exc_arg,
        message=f"the store at {path} was not a valid SQLite database ({reason}); "
        f"moved it to {target} and started a fresh store",
    )
    return target


def _is_file(path: str | os.PathLike[str]) -> bool:
    # False on OSError and ValueError (a name too long, a NUL byte).
    return os.path.isfile(path)


def _open_once(
    path: str | os.PathLike[str], *, create: bool, cache: SketchCache, timeout: float = BUSY_TIMEOUT
) -> sqlite3.Connection:
    if create:
        _ensure_file(path)
    elif not _is_file(path):
        raise StoreError(
            f"no sounding store at {path}: nothing has been recorded there yet "
            "(check --data-dir / SOUNDING_DATA_DIR)"
        )
    try:
        conn = sqlite3.connect(
            os.fspath(path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc
    try:
        _configure(conn, cache, timeout)
        # The header's user_version says the schema is current: one read instead of two
        # queries of the migrations table on every open (a short process opens once).
        current = len(STORAGE_MIGRATIONS.names)
        # Set only by whoever migrates; an older file that is already current keeps the
        # two queries until its next migration.
        if conn.execute("PRAGMA user_version").fetchone()[0] != current and (
            STORAGE_MIGRATIONS.apply(conn)
        ):
            conn.execute(f"PRAGMA user_version = {current}")
    except BaseException:
        conn.close()
        raise
    return conn


def connect(
    path: str | os.PathLike[str],
    *,
    create: bool,
    cache: SketchCache | None = None,
    timeout: float = BUSY_TIMEOUT,
) -> tuple[sqlite3.Connection, Path | None]:
    """Open (and migrate) the store at ``path``; returns the connection and, when the file
    was corrupt and had to be moved aside, where it went.

    Raises :class:`StoreError` when the store is missing (and ``create`` is false) or cannot
    be opened; lock contention surfaces as :class:`sqlite3.OperationalError`.
    """
    cache = cache if cache is not None else SketchCache(0)
    try:
        return _open_once(path, create=create, cache=cache, timeout=timeout), None
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        moved = move_aside(path, exc)
        return _open_once(path, create=True, cache=cache, timeout=timeout), moved


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any, without masking the error being handled."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """A value of the ``meta`` table, or ``None``."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Set a ``meta`` value (inside the caller's transaction)."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def fine_resolutions(conn: sqlite3.Connection) -> list[int]:
    """The finest resolutions writers have used (seconds), from the ``meta`` table."""
    raw = get_meta(conn, "resolutions")
    if not raw:
        return []
    values = _int_list(raw)
    if values is None:
        import json  # not what this module writes: let json decide

        try:
            values = json.loads(raw)
        except ValueError:
            return []
    return sorted(
        {int(v) for v in values if isinstance(v, int) and v > 0 and v not in ROLLUP_RESOLUTIONS}
    )


def add_fine_resolution(conn: sqlite3.Connection, resolution: int) -> None:
    """Record that a writer stores rows at ``resolution`` (inside a transaction)."""
    if resolution in ROLLUP_RESOLUTIONS:
        return
    current = set(fine_resolutions(conn))
    if resolution not in current:
        set_meta(conn, "resolutions", int_list_json(sorted(current | {int(resolution)})))


# The resolutions list is read and written on every first write of a process; these do what
# json.loads/json.dumps do for a list of integers, so a short process's exit flush does not
# import json (about 1 ms) for it.
_JSON_SPACE = " \t\n\r"


def int_list_json(values: list[int]) -> str:
    """``json.dumps(values)`` for a list of ints: ``"[10, 60]"``."""
    return "[" + ", ".join([str(int(v)) for v in values]) + "]"


def _int_list(raw: str) -> list[int] | None:
    """``json.loads(raw)`` when ``raw`` is a JSON list of non-negative integers written
    plainly (``"[10, 60]"``); ``None`` for anything else (then ask json)."""
    text = raw.strip(_JSON_SPACE)
    if not (text.startswith("[") and text.endswith("]")):
        return None
    inner = text[1:-1].strip(_JSON_SPACE)
    if not inner:
        return []
    out: list[int] = []
    for part in inner.split(","):
        digits = part.strip(_JSON_SPACE)
        # JSON integers: ASCII digits, no leading zero (str.isdigit alone takes "٣", "05").
        if not (digits.isascii() and digits.isdigit()) or (len(digits) > 1 and digits[0] == "0"):
            return None
        out.append(int(digits))
    return out


def floor_to(t: float, step: float) -> float:
    """``t`` rounded down to a multiple of ``step``."""
    return math.floor(t / step) * step
