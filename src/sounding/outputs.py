"""Outputs: the places every flush goes, behind one Protocol.

The runtime (:mod:`sounding._runtime`) is the composition root: from the settings it builds a
list of outputs and hands each flushed batch to every one of them. Each output has its own
retry buffer (bounded, drops counted as ``output.<name>.dropped``), its own retry time after a
failure and its own failure count, so one output that is down neither blocks nor loses the
others' data. The exit budget (``shutdown_timeout``) is shared: outputs are written in turn
until it is spent.

Built from the settings:

- :class:`JsonlOutput` (``jsonl``): the events, appended to ``events.jsonl``;
- :class:`StoreOutput` (``store``): aggregates and events, into the SQLite store (opened
  lazily, re-tried 30 s after a failed open; left alone in a child forked mid-write);
- :class:`SinkOutput` (``store``): a :class:`~sounding.collection.sink.Sink` set with
  ``set_sink`` (``sounding.testing.capture``) in place of the store;
- :class:`CallableOutput`: a callable registered with ``Runtime.add_output`` (events only).

An output's ``write`` may raise (counted under its ``failure_kind``, the batch kept for
retry) or return ``False`` ("not now": kept, not counted again); it never sees the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sounding.collection.sink import Sink
from sounding.core import health
from sounding.core._typing import Protocol, runtime_checkable
from sounding.core.clock import get_clock
from sounding.core.config import current
from sounding.core.types import Event, IntervalAggregate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from sounding.collection.jsonl import JsonlWriter

__all__ = ["CallableOutput", "JsonlOutput", "Output", "SinkOutput", "StoreOutput"]

#: Seconds the store waits after a failed open before trying again.
STORE_OPEN_RETRY = 30.0
#: Seconds the JSON-lines file waits after a failed write before trying again.
JSONL_RETRY = 30.0


@runtime_checkable
class Output(Protocol):
    """One destination of every flush.

    ``name`` names the output in health counts (``output.<name>.dropped``). ``write`` gets
    one chunk of a batch and the exit deadline (``time.monotonic()``, ``None`` outside exit);
    it returns ``True`` when the chunk is stored, ``False`` to keep it for later, or raises
    (counted, kept). Optional attributes the runtime reads: ``failure_kind`` (health kind of
    a raised write, default ``output.<name>``), ``retry_delay`` (seconds to wait after a
    failure, default 0), ``wants_metrics`` / ``wants_events`` (default ``True``).
    """

    name: str

    def write(
        self,
        metrics: Sequence[IntervalAggregate],
        events: Sequence[Event],
        deadline: float | None,
    ) -> bool:
        """Store one chunk, all or nothing."""

    def close(self) -> None:
        """Release resources (idempotent); a later ``write`` reopens."""


class JsonlOutput:
    """The events of every flush, appended to the JSON-lines file of the settings."""

    name = "jsonl"
    failure_kind = "log.file"
    retry_delay = JSONL_RETRY
    wants_metrics = False
    wants_events = True

    def __init__(self) -> None:
        self.writer: JsonlWriter | None = None

    def write(
        self,
        metrics: Sequence[IntervalAggregate],
        events: Sequence[Event],
        deadline: float | None,
    ) -> bool:
        """Append ``events``; ``False`` when the file could not be written (counted)."""
        if not events:
            return True
        if self.writer is None:
            # Imported here (json, pathlib): a process that only counts writes no events.
            from sounding.collection.jsonl import JsonlWriter

            self.writer = JsonlWriter()
        return self.writer.write(events)

    def close(self) -> None:
        """Close the file."""
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()

    def forget(self) -> None:
        """After fork: drop the parent's file without touching it."""
        self.writer = None


class _SinkCalls:
    """Pass-through calls of an output backed by a :class:`Sink` (``self.sink``, or None)."""

    sink: Sink | None

    def set_deadline(self, deadline: float | None) -> None:
        """Pass the exit deadline on, if the sink takes one (the store's lock wait ends there)."""
        setter = getattr(self.sink, "set_deadline", None)
        if setter is not None:
            setter(deadline)

    def landed(self) -> bool:
        """Whether the sink's last write committed (asked when a signal interrupted it)."""
        landed = getattr(self.sink, "landed", None)
        return bool(landed()) if landed is not None else False


class StoreOutput(_SinkCalls):
    """Aggregates and events into the SQLite store of the settings (one transaction each)."""

    name = "store"
    failure_kind = "storage.write"
    retry_delay = 0.0
    wants_metrics = True
    wants_events = True

    def __init__(self) -> None:
        self.sink: Sink | None = None
        #: Monotonic instant before which a failed open is not tried again.
        self.retry_at = 0.0
        #: Set in a child forked while the parent was inside SQLite: never touch SQLite.
        self.unsafe = False

    def _open(self) -> Sink | None:
        if self.unsafe:
            health.count("fork.store_unavailable")
            return None
        if self.sink is None:
            now = get_clock().monotonic()
            if now < self.retry_at:
                return None
            try:
                from sounding.storage import SQLiteSink

                self.sink = SQLiteSink(current().store_path)
            except Exception as exc:
                self.retry_at = now + STORE_OPEN_RETRY
                health.failure("storage.open", exc)
                return None
        return self.sink

    def write(
        self,
        metrics: Sequence[IntervalAggregate],
        events: Sequence[Event],
        deadline: float | None,
    ) -> bool:
        """Write one chunk in one transaction; ``False`` when the store cannot be opened."""
        sink = self._open()
        if sink is None:
            return False
        sink.write(metrics, events)
        return True

    def close(self) -> None:
        """Close the store connection; the next write opens it again."""
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.close()

    def forget(self) -> Sink | None:
        """After fork: give up the parent's connection without using or closing it."""
        sink, self.sink = self.sink, None
        self.retry_at = 0.0
        return sink


class SinkOutput(_SinkCalls):
    """A :class:`Sink` set with ``set_sink`` in place of the store (not closed here)."""

    name = "store"
    failure_kind = "storage.write"
    retry_delay = 0.0
    wants_metrics = True
    wants_events = True

    def __init__(self, sink: Sink) -> None:
        self.sink: Sink = sink

    def write(
        self,
        metrics: Sequence[IntervalAggregate],
        events: Sequence[Event],
        deadline: float | None,
    ) -> bool:
        """Hand the chunk to the sink."""
        self.sink.write(metrics, events)
        return True

    def close(self) -> None:
        """Nothing: whoever set the sink closes it."""


class CallableOutput:
    """A callable that takes the events of every flush (``Runtime.add_output``)."""

    failure_kind = "events.output"
    retry_delay = 0.0
    wants_metrics = False
    wants_events = True

    def __init__(self, fn: Callable[[list[Event]], object]) -> None:
        self.fn = fn
        self.name = _name_of(fn)

    def write(
        self,
        metrics: Sequence[IntervalAggregate],
        events: Sequence[Event],
        deadline: float | None,
    ) -> bool:
        """Call the function with the events; a ``False`` result means "keep them"."""
        if not events:
            return True
        return self.fn(list(events)) is not False

    def close(self) -> None:
        """Close the callable's object if it has a ``close``."""
        close = getattr(self.fn, "close", None)
        if callable(close):
            close()


def _name_of(fn: object) -> str:
    raw = getattr(fn, "__name__", None) or type(fn).__name__
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in str(raw).lower())
    return cleaned.strip("_") or "callable"


class Slot:
    """The runtime's state for one output: its retry buffer, retry time and chunk in flight."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.pending_metrics: list[IntervalAggregate] = []
        self.pending_events: list[Event] = []
        #: What the write in progress has taken but not stored yet: the batch, of which the
        #: first ``inflight_done`` aggregates and events are stored already (a write in
        #: chunks moves the offsets on instead of copying the rest per chunk). Plain
        #: attributes, no property: a signal handler cannot run between a take and its store.
        self.inflight: tuple[list[IntervalAggregate], list[Event]] = ([], [])
        self.inflight_done = (0, 0)
        #: Monotonic instant before which a failed output is not written again (outside exit).
        self.retry_at = 0.0

    @property
    def name(self) -> str:
        """The output's name."""
        return str(getattr(self.output, "name", "output"))

    @property
    def is_store(self) -> bool:
        """Whether this output is the store (what it cannot write is counted as unsaved)."""
        return isinstance(self.output, (StoreOutput, SinkOutput))

    def keep(
        self, metrics: list[IntervalAggregate], events: list[Event], limit: int | None
    ) -> None:
        """Add to the retry buffer, dropping (and counting) the oldest beyond ``limit``
        (``None``: a fresh batch about to be written, not bounded yet)."""
        if metrics and getattr(self.output, "wants_metrics", True):
            self.pending_metrics.extend(metrics)
        if events and getattr(self.output, "wants_events", True):
            self.pending_events.extend(events)
        if limit is None:
            return
        over_m = len(self.pending_metrics) - limit
        if over_m > 0:
            del self.pending_metrics[:over_m]
        over_e = len(self.pending_events) - limit
        if over_e > 0:
            del self.pending_events[:over_e]
        if over_m > 0 or over_e > 0:
            self.count_dropped(max(over_m, 0), max(over_e, 0))

    def count_dropped(self, metrics: int, events: int) -> None:
        """Count what this output lost (``output.<name>.dropped``; the store's also keeps
        the older ``metrics.dropped`` / ``events.dropped`` kinds)."""
        if metrics + events <= 0:
            return
        health.count(f"output.{self.name}.dropped", metrics + events)
        if self.is_store:
            if metrics:
                health.count("metrics.dropped", metrics)
            if events:
                health.count("events.dropped", events)

    def clear(self) -> None:
        """Forget everything kept (reset, fork)."""
        self.pending_metrics, self.pending_events = [], []
        self.inflight, self.inflight_done = ([], []), (0, 0)
        self.retry_at = 0.0
