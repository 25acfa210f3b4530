"""Internal health: counts of run-time failures and dropped data, reported once each.

At run time telemetry never raises into the host application. Instead every failure is
counted here under a ``kind`` (for example ``"storage.write"``, ``"events.dropped"``) and the
first occurrence of each kind is reported through the stdlib logger ``sounding``, which
follows the library convention: it carries a ``NullHandler``, so nothing reaches the end
user's stderr unless the application configures logging or asks for it
(``configure(debug=True)`` or ``SOUNDING_DEBUG=1``). Strict mode
(:func:`sounding.testing.strict`) turns failures into :class:`InternalError` so tests see them.

Counts are visible in ``sounding status`` (the store persists them with every flush).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable

from sounding.core.exceptions import InternalError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "count",
    "counts",
    "failure",
    "get_logger",
    "is_strict",
    "reset",
    "set_debug",
    "set_strict",
    "tally",
]

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_reported: set[str] = set()
_strict = False
_debug = False
_logger: Any = None
_debug_handler: Any = None
#: Lock-free counters of hot paths (see :func:`tally`) and their values at the last reset.
_tallies: dict[str, itertools.count[int]] = {}
_tally_base: dict[str, int] = {}


def get_logger() -> Any:
    """The stdlib logger ``sounding``, with its ``NullHandler`` (and the stderr handler of
    debug mode) attached on first use. Imported lazily: logging is a large part of a cold
    start."""
    global _logger
    if _logger is None:
        import logging

        logger = logging.getLogger("sounding")
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
        _logger = logger
        _sync_debug_handler()
    return _logger


def set_debug(debug: bool) -> None:
    """Print sounding's own health messages on stderr (``True``) or not (the default)."""
    global _debug
    _debug = debug
    if _logger is not None or debug:
        get_logger()
        _sync_debug_handler()


def _sync_debug_handler() -> None:
    global _debug_handler
    import logging

    logger = logging.getLogger("sounding")
    if _debug and _debug_handler is None:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))
        # The logger's level is left alone: raising it would also forward INFO events of
        # the `sounding.events` loggers below it.
        logger.addHandler(handler)
        _debug_handler = handler
    elif not _debug and _debug_handler is not None:
        logger.removeHandler(_debug_handler)
        _debug_handler = None


def count(kind: str, n: int = 1) -> None:
    """Count ``n`` occurrences of a non-error condition (dropped data, replaced tag values)."""
    with _lock:
        _counts[kind] += n


def failure(kind: str, exc: BaseException | None = None, message: str = "") -> None:
    """Record a run-time failure: count it, log the first of its kind, raise in strict mode.

    Call this from ``except`` blocks on paths that must never raise into the host.
    """
    with _lock:
        _counts[kind] += 1
        first = kind not in _reported
        _reported.add(kind)
    if _strict:
        raise InternalError(kind, exc)
    if first:
        try:
            logger = get_logger()
            detail = message or (f"{type(exc).__name__}: {exc}" if exc else "")
            logger.warning(
                "sounding: %s failed (%s); counted, telemetry continues. "
                "Further failures of this kind are counted silently; see `sounding status`.",
                kind,
                detail,
            )
        except Exception:
            pass


def tally(kind: str) -> Callable[[], object]:
    """A counter of ``kind`` for a hot path: each call of the returned function counts one,
    without a lock (``next()`` of an ``itertools.count`` is one C call, atomic under the
    GIL). Its counts are part of :func:`counts`."""
    with _lock:
        c = _tallies.get(kind)
        if c is None:
            c = _tallies[kind] = itertools.count()
            _tally_base[kind] = 0
        return c.__next__


def _tally_value(c: itertools.count[int]) -> int:
    # The next value ``count`` would return is in its repr: "count(7)".
    return int(repr(c)[6:-1])


def counts() -> dict[str, int]:
    """A copy of all counts so far."""
    with _lock:
        out = dict(_counts)
        for kind, c in _tallies.items():
            n = _tally_value(c) - _tally_base.get(kind, 0)
            if n:
                out[kind] = out.get(kind, 0) + n
        return out


def set_strict(strict: bool) -> bool:
    """Turn strict mode on or off; returns the previous value."""
    global _strict
    previous = _strict
    _strict = strict
    return previous


def is_strict() -> bool:
    """Whether failures raise (tests) instead of being counted."""
    return _strict


def reset() -> None:
    """Forget all counts and which kinds were reported (tests, and in a forked child)."""
    global _lock
    _lock = threading.Lock()
    _counts.clear()
    _reported.clear()
    for kind, c in _tallies.items():
        _tally_base[kind] = _tally_value(c)
