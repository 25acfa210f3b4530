"""The JSON-lines event log: one event per line in a size-rotated file in the data directory.

The background writer calls :meth:`JsonlWriter.write` with each flushed batch of events (they
are already scrubbed), never the host's thread. The file is ``settings.log_path``
(``<data_dir>/events.jsonl``) unless a path is given; when appending a batch would take it
past ``settings.log_file_max_bytes`` it is rotated first, as
:class:`logging.handlers.RotatingFileHandler` does: ``events.jsonl`` becomes
``events.jsonl.1``, ``.1`` becomes ``.2`` and so on, keeping ``settings.log_file_backups``
old files (0 keeps none). The directory is created ``0700`` and the files ``0600``: they hold
what the application did, readable by its user only.

>>> import json, tempfile
>>> from pathlib import Path
>>> from sounding.collection.jsonl import JsonlWriter
>>> path = Path(tempfile.mkdtemp()) / "events.jsonl"
>>> writer = JsonlWriter(path, max_bytes=1024, backups=2)
>>> writer.write([{"event": "recording.saved", "duration_ms": 12.5}])
True
>>> writer.close()
>>> json.loads(path.read_text())
{'event': 'recording.saved', 'duration_ms': 12.5}

Values JSON cannot hold become their ``repr()``; non-finite floats become the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` so every line is strict JSON. Failures (a full
disk, a read-only directory) never raise: they go through
:func:`sounding.core.health.failure` (``log.file``) and the batch is not written to the file
(the store still gets it).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from sounding.core import health
from sounding.core._json import compact_encoder, safe_repr
from sounding.core.config import current
from sounding.core.private import open_private, private_dir
from sounding.core.types import Event

__all__ = ["JsonlWriter", "dumps_event", "encode_fields"]


# Events come from the pipeline already JSON-shaped and depth-limited, so the encoder needs no
# circular check; a RecursionError would still be caught by dumps_event's caller.
_encode: Callable[[Any], str] = compact_encoder(ensure_ascii=False, allow_nan=False)


try:
    import fcntl

    def _lock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)

    def _unlock(fh: IO[bytes]) -> None:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        except (OSError, ValueError):
            pass  # closed by a rotation: closing released the lock

except ImportError:  # pragma: no cover - Windows: one writer per file is the rule there

    def _lock(fh: IO[bytes]) -> None:
        pass

    def _unlock(fh: IO[bytes]) -> None:
        pass


_MAX_DEPTH = 32


def _careful(value: Any, depth: int = 0) -> Any:
    """``value`` made strictly encodable: non-finite floats as strings, an int too long for
    text as its size, keys that are not text as their ``repr()``, and anything nested deeper
    than 32 levels (a value that contains itself) as its ``repr()``."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            int.__repr__(value)
        except ValueError:  # more digits than int-to-str conversion allows
            return f"<int of {value.bit_length()} bits>"
        return value
    if depth >= _MAX_DEPTH and isinstance(value, (dict, list, tuple)):
        return safe_repr(value)
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) else safe_repr(k)): _careful(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_careful(v, depth + 1) for v in value]
    return value


def dumps_event(event: Event) -> str:
    """One event as one line of strict JSON (no trailing newline).

    >>> dumps_event({"event": "x", "ratio": float("nan"), "obj": object, (1, 2): "key"})
    '{"event":"x","ratio":"NaN","obj":"<class \\'object\\'>","(1, 2)":"key"}'
    """
    try:
        return _encode(event)
    except (TypeError, ValueError, RecursionError):
        # NaN or infinity, a key that is not text, a value that contains itself: rare, so
        # checked only when it happens.
        return _encode(_careful(event))


# -- one encoding of an event's fields for both outputs ----------------------------------------

#: The six keys every event from the pipeline carries (collection/log.py's CORE_KEYS).
_CORE_KEYS = frozenset(("timestamp", "level", "category", "event", "logger", "session_id"))

# The fields of events the store has just encoded (storage/sink.py calls encode_fields), so
# the JSON line of the same event object reuses that text instead of encoding it again: keyed
# by identity, with the event itself held beside its text (its id cannot be reused while the
# entry lives), dropped when used, bounded (a backlog larger than this is encoded twice). Only
# after a JsonlWriter has written, so a store without a JSON-lines file holds nothing here.
# Events are not changed once emitted, so an entry is the encoding of what the line writes.
_shared: dict[int, tuple[Event, str]] = {}
_SHARED_MAX = 16_384
_sharing = False
if hasattr(os, "register_at_fork"):  # a forked child starts without the parent's events
    os.register_at_fork(after_in_child=_shared.clear)

_encode_text: Callable[[str], str] = json.encoder.encode_basestring  # (the C one if built)
_float_repr = float.__repr__
_int_repr = int.__repr__
_LITERALS: dict[Any, str] = {True: "true", False: "false", None: "null"}


def encode_fields(event: Event, remember: bool = True) -> str | None:
    """An event's fields (every key but the six core ones) as compact strict JSON, non-ASCII
    text kept as it is, or ``None`` when they need the careful path (a non-finite float, a key
    JSON cannot hold, a self-reference). ``remember`` keeps the text for the event's JSON
    line (once a JSON-lines writer has written; see above).

    >>> encode_fields({"event": "x", "level": "info", "format": "wav", "n": 3})
    '{"format":"wav","n":3}'
    """
    # Flat fields of text and numbers (what most calls pass) are written here, as the C
    # encoder writes them: one call of it costs more than these few pieces for a short dict.
    parts: list[str] = []
    add = parts.append
    text: str | None = None
    try:
        for k, v in event.items():
            if k in _CORE_KEYS:
                continue
            t = type(v)
            if t is str:
                add(f"{_encode_text(k)}:{_encode_text(v)}")
            elif t is float and v - v == 0.0:  # (NaN and infinity take the encoder's path)
                add(f"{_encode_text(k)}:{_float_repr(v)}")
            elif t is int:
                add(f"{_encode_text(k)}:{_int_repr(v)}")
            elif t is bool or v is None:
                add(f"{_encode_text(k)}:{_LITERALS[v]}")
            else:
                break
        else:
            text = "{" + ",".join(parts) + "}"
    except (TypeError, ValueError):  # a key that is not text, an int too long for text
        pass
    if text is None:
        try:
            text = _encode({k: v for k, v in event.items() if k not in _CORE_KEYS})
        except (TypeError, ValueError, RecursionError):
            return None
    if remember and _sharing:
        if len(_shared) >= _SHARED_MAX:
            _shared.clear()
        _shared[id(event)] = (event, text)
    return text


def _line(event: Event, heads: dict[tuple[Any, ...], str]) -> str:
    """``event`` as one JSON line: an event with the six core keys (as the pipeline makes
    them) is written from its parts, core keys first, then its fields (encoded once with the
    store's row when the store wrote it first); anything else by :func:`dumps_event`.

    ``heads`` holds the encoded level, category, name, logger and session of the batch's
    events by their values: they repeat from event to event."""
    hit = _shared.pop(id(event), None)
    try:
        ts = event["timestamp"]
        key = (
            event["level"],
            event["category"],
            event["event"],
            event["logger"],
            event["session_id"],
        )
        head = heads.get(key)
        if head is None:
            level, category, name, logger, session = key
            head = (
                f',"level":{_encode_text(level)},"category":{_encode_text(category)},'
                f'"event":{_encode_text(name)},"logger":{_encode_text(logger)},'
                f'"session_id":{_encode_text(session)}'
            )
            if len(heads) < 256:
                heads[key] = head
        stamp = _float_repr(ts)
    except (KeyError, TypeError):  # a core key missing or not text (or not a float)
        return dumps_event(event)
    if ts - ts != 0.0:  # NaN or infinity
        return dumps_event(event)
    fields = hit[1] if hit is not None and hit[0] is event else encode_fields(event, False)
    if fields is None:
        return dumps_event(event)
    if fields == "{}":
        return f'{{"timestamp":{stamp}{head}}}'
    return f'{{"timestamp":{stamp}{head},{fields[1:]}'


class JsonlWriter:
    """Appends batches of events to a size-rotated JSON-lines file (see the module docs).

    ``path``, ``max_bytes`` and ``backups`` default to the settings in force at each write, so
    a reconfiguration moves the log with the data directory. Thread-safe; ``close`` is
    idempotent and a later ``write`` reopens the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int | None = None,
        backups: int | None = None,
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._max_bytes = max_bytes
        self._backups = backups
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None
        self._open_path: Path | None = None
        self._size = 0
        self._pid = os.getpid()

    @property
    def path(self) -> Path:
        """The file written to (the settings' ``log_path`` unless a path was given)."""
        return self._path if self._path is not None else Path(current().log_path)

    def write(self, events: Sequence[Event]) -> bool:
        """Append ``events``, one JSON line each, rotating first if the file would grow past
        the limit. Never raises (failures are counted as ``log.file``); ``False`` when the
        batch was not written."""
        global _sharing
        if not events:
            return True
        _sharing = True
        try:
            heads: dict[tuple[Any, ...], str] = {}
            text = "\n".join([_line(e, heads) for e in events]) + "\n"
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate: written as its JSON escape, so the line stays valid JSON
                # in a valid UTF-8 file and the rest of the batch is kept.
                data = text.encode("utf-8", "backslashreplace")
                health.count("log.text_replaced")
            settings = current()
            max_bytes = (
                self._max_bytes if self._max_bytes is not None else (settings.log_file_max_bytes)
            )
            backups = self._backups if self._backups is not None else settings.log_file_backups
            with self._lock:
                fh = self._locked_file()
                try:
                    # Size from the file, not from us: other processes append to it too.
                    size = os.fstat(fh.fileno()).st_size
                    if size > 0 and size + len(data) > max_bytes:
                        self._rotate(backups)
                        fh = self._locked_file()
                    fh.write(data)
                    fh.flush()
                finally:
                    _unlock(fh)
        except Exception as exc:
            health.failure("log.file", exc)
            return False
        return True

    def __call__(self, events: list[Event]) -> None:
        """Same as :meth:`write`, so a writer can be registered as a runtime output."""
        self.write(events)

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            self._close()

    # -- internals (called with the lock held) ---------------------------------------------

    def _locked_file(self) -> IO[bytes]:
        """The current file, locked against other processes' rotation (``flock``).

        After the lock is taken the path is checked again: if another process rotated the
        file meanwhile, ours is now ``events.jsonl.1`` and the new ``events.jsonl`` is opened.
        """
        for _ in range(8):
            fh = self._file()
            _lock(fh)
            if self._is_current(fh):
                return fh
            _unlock(fh)
            self._close()
        raise OSError(f"{self.path} keeps being replaced by another process")

    def _is_current(self, fh: IO[bytes]) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        own = os.fstat(fh.fileno())
        return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)

    def _file(self) -> IO[bytes]:
        path = self.path
        fh = self._fh
        if fh is not None and (self._open_path != path or self._pid != os.getpid()):
            self._close()
            fh = None
        elif fh is not None and not self._is_current(fh):
            # Deleted (``sounding purge``, a user) or rotated by another process: reopen.
            self._close()
            fh = None
        if fh is None:
            private_dir(path.parent)
            # O_NOFOLLOW, a regular file we own, mode tightened to 0600 (core/private.py).
            fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                fh = os.fdopen(fd, "ab")
            except BaseException:
                os.close(fd)
                raise
            self._fh = fh
            self._open_path = path
            self._pid = os.getpid()
            self._size = fh.seek(0, os.SEEK_END)
        return fh

    def _rotate(self, backups: int) -> None:
        path = self.path
        self._close()
        if backups <= 0:
            path.unlink(missing_ok=True)
            return
        for i in range(backups - 1, 0, -1):
            src = path.with_name(f"{path.name}.{i}")
            if src.exists():
                os.replace(src, path.with_name(f"{path.name}.{i + 1}"))
        if path.exists():
            os.replace(path, path.with_name(f"{path.name}.1"))

    def _close(self) -> None:
        fh, self._fh = self._fh, None
        self._open_path = None
        self._size = 0
        if fh is not None:
            # In a forked child this closes only the child's copy of the descriptor; nothing is
            # left buffered, since every write is flushed.
            try:
                fh.close()
            except OSError as exc:
                health.failure("log.file", exc)
