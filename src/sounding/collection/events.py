"""The bounded in-memory buffer between the logging pipeline and the background writer.

``emit`` is called on the host's thread and never blocks or raises; when the buffer is full
the oldest event is dropped and counted (``events.dropped``), never silently lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sounding.core import health
from sounding.core.types import Event

__all__ = ["EventBuffer", "buffer", "drain", "emit", "on_first_emit"]

_first_emit_hooks: list[Callable[[], None]] = []


def on_first_emit(hook: Callable[[], None]) -> None:
    """Run ``hook`` on the first event emitted (the runtime starts its writer lazily)."""
    if hook not in _first_emit_hooks:
        _first_emit_hooks.append(hook)


class EventBuffer:
    """A bounded FIFO of events; thread-safe (``deque`` appends and pops are atomic)."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._events: deque[Event] = deque()
        self.maxlen = maxlen
        self.armed = False

    def _arm(self) -> None:
        self.armed = True
        for hook in list(_first_emit_hooks):
            hook()

    def emit(self, event: Event) -> None:
        """Queue one event; drops (and counts) the oldest when full."""
        if not self.armed:
            self._arm()
        events = self._events
        if len(events) >= self.maxlen:
            try:
                events.popleft()
                health.count("events.dropped")
            except IndexError:
                pass
        events.append(event)

    def drain(self, limit: int | None = None) -> list[Event]:
        """Remove and return up to ``limit`` queued events, oldest first."""
        out: list[Event] = []
        pop = self._events.popleft
        n = len(self._events) if limit is None else min(limit, len(self._events))
        try:
            for _ in range(n):
                out.append(pop())
        except IndexError:
            pass
        return out

    def __len__(self) -> int:
        return len(self._events)

    def clear(self) -> None:
        """Drop everything queued and disarm the first-emit hooks (tests, forked child)."""
        self._events.clear()
        self.armed = False


#: The process-wide buffer the logging pipeline emits into.
buffer = EventBuffer()


def emit(event: Event) -> None:
    """Queue ``event`` (already scrubbed) for the background writer."""
    buffer.emit(event)


def drain(limit: int | None = None) -> list[Event]:
    """Take queued events for writing."""
    return buffer.drain(limit)
