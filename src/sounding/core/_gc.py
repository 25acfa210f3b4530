"""Pausing the cyclic garbage collector while a bulk operation builds many objects.

A bulk import builds a few objects per observation (tuples, lists, aggregates and their
sketches), none of them in a reference cycle. CPython's collector runs after every 700
allocations and, as the heap grows, walks every live object again (the application's own,
the snapshots being imported); for a large import that costs more than the import itself.
Reference counting frees the acyclic objects either way; what the pause defers is only the
collection of cycles made meanwhile (by any thread), which runs as soon as the pause ends.

Nested and concurrent pauses share one count: the collector is enabled again when the last
one ends, and only if it was enabled when the first one began. The switch is process-wide,
so it is used only where it clearly pays: ``record_many`` and a store write of a bulk chunk
(see "The GC pause" in docs/performance.md; a host's own ``gc.disable()`` during a pause is
undone when the pause ends).
"""

from __future__ import annotations

import gc
import threading

__all__ = ["paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


class _Paused:
    # A class, not @contextlib.contextmanager: a short process's exit flush does not load
    # contextlib for it.
    __slots__ = ()

    def __enter__(self) -> None:
        global _depth, _was_enabled
        with _lock:
            if _depth == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


_PAUSED = _Paused()


def paused() -> _Paused:
    """Run the ``with`` block with the cyclic garbage collector disabled."""
    return _PAUSED
