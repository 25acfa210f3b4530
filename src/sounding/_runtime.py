"""The runtime: the composition root that moves aggregates and events to the outputs.

A daemon thread, started lazily when the first instrument or logger is created, wakes at
every aggregation-interval boundary (wall clock), collects closed intervals from the
registry and drains the event buffer, and hands both to every output built from the settings
(:mod:`sounding.outputs`: the SQLite store, one transaction per chunk, then
``events.jsonl`` and those added), each with its own retry buffer. :func:`flush` does the
same synchronously. At exit a flush runs with a bounded time budget
(``Settings.shutdown_timeout``). After ``fork()`` the child starts clean: its own
thread, its own connection, no copy of the parent's pending data.

Failures never reach the host: an output that raises is counted (``storage.write`` for the
store), its batch is kept in that output's retry buffer (bounded; drops are counted as
``output.<name>.dropped``) and written at a later flush; the other outputs go on. A
``SystemExit`` or ``KeyboardInterrupt`` arriving during a flush is never swallowed: the batch
is kept (for the exit flush) and the exception goes on.

Exit has one budget (``shutdown_timeout``) for everything: stopping the writer thread, the
final flush and a late flush after the application's own ``atexit`` hooks. Big batches are
written in chunks (aggregates first, then events, most severe first), so a backlog that does
not fit lands in part; what does not land is counted in a side file next to the store
(:mod:`sounding.storage.unsaved`) that ``status`` and the next run pick up.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import threading
import time
from collections.abc import Callable

from sounding.collection import events as _events
from sounding.collection import metrics as _metrics
from sounding.collection.sink import Sink
from sounding.core import health
from sounding.core.clock import get_clock
from sounding.core.config import Resolved, before_configure, current, on_resolve
from sounding.core.exceptions import InvalidTypeError
from sounding.core.types import Event, IntervalAggregate, MetricType
from sounding.outputs import (
    CallableOutput,
    JsonlOutput,
    Output,
    SinkOutput,
    Slot,
    StoreOutput,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    _Lock = AbstractContextManager[object]

__all__ = ["Runtime", "flush", "get_runtime", "shutdown"]

#: Most aggregates / events kept for retry after failed writes; beyond it the oldest go.
MAX_PENDING = 100_000
#: Aggregates or events per transaction: a big backlog lands in pieces (what fits in the exit
#: budget is kept), and the writer gives the GIL back to the host between them.
CHUNK = 2000
#: The same during exit, where the chunk in flight when the budget ends may be counted lost.
EXIT_CHUNK = 500
#: Longest a fork() waits for the store write in progress (one chunk), so the child never
#: inherits SQLite's locks or mutexes mid-statement. If it has to go ahead anyway, the child
#: does not use SQLite at all: what it records is counted as unsaved at its exit.
FORK_WAIT = 2.0
_LEVEL_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3, "debug": 4}
#: The writer wakes at least this often (seconds) to notice a wall-clock jump (a suspend: its
#: sleep runs on the monotonic clock, which stands still meanwhile), so observations after the
#: jump are stamped with their own interval, not the one before it.
CLOCK_CHECK_SECONDS = 5.0


class _NoLock:
    """A ``with`` that holds nothing (``contextlib.nullcontext``, whose module a short
    process does not otherwise need)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()
#: What a health kind may not contain in a metric name (compiled by `re` on first use: most
#: short processes have no health counts to store).
_KIND_PATTERN = r"[^A-Za-z0-9_.]+"


class Runtime:
    """Owns the writer thread and the outputs (each with its retry buffer) of one process."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._flush_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sink_override: Sink | None = None
        #: The outputs built from the settings: the store (or the sink set in its place,
        #: sharing its retry buffer) and the JSON-lines file; then those added.
        self._store = StoreOutput()
        self._primary = Slot(self._store)
        self._jsonl = Slot(JsonlOutput())
        self._added: list[Slot] = []
        self._health_sent: dict[str, int] = {}
        self._atexit_registered = False
        self._manual = False
        #: The monotonic instant the whole exit must be done by (set when exit starts).
        self._exit_deadline: float | None = None
        self._exiting = False
        self._claimed = False
        self._fork_locked = False
        #: Held around every call into the SQLite sink (one chunk), and by fork().
        self._sql_lock = threading.Lock()
        #: What the flush in progress has taken but not yet handed to the outputs: counted
        #: if exit abandons that flush.
        self._inflight: tuple[list[IntervalAggregate], list[Event]] = ([], [])
        #: Set when exit counted a still-running flush as lost: that flush must stop.
        self._abandoned = False
        self._spill_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the writer thread if it is not running (idempotent, cheap when running)."""
        if self._thread is not None or self._manual or self._exiting:
            return
        self._start()

    def _start(self) -> None:
        # Create the registry before taking the lock: its first-use hook comes back here.
        registry = _metrics.get_registry()
        with self._state_lock:
            if self._thread is not None or self._manual:
                return
            registry.mark_start()
            self._stop.clear()
            t = threading.Thread(target=self._loop, name="sounding-writer", daemon=True)
            self._thread = t
            if not self._atexit_registered:
                atexit.register(self._at_exit)  # runs before hooks the app registered earlier
                self._atexit_registered = True
            t.start()

    def set_manual(self, manual: bool) -> None:
        """In manual mode no thread runs; data moves only on :meth:`flush` (tests)."""
        self._manual = manual
        if manual:
            self._stop_thread(timeout=1.0)

    def set_sink(self, sink: Sink | None) -> Sink | None:
        """Use ``sink`` instead of the SQLite store (``None`` restores the default).

        The sink takes over the store's retry buffer: what the store could not write yet
        goes to the sink, and back.
        """
        with self._flush_lock:
            previous = self._sink_override
            self._sink_override = sink
            self._primary.output = self._store if sink is None else SinkOutput(sink)
            return previous

    @property
    def _sink(self) -> Sink | None:
        """The open SQLite store, if any."""
        return self._store.sink

    def add_output(self, output: Output | Callable[[list[Event]], object]) -> None:
        """Also hand every flush to ``output``: an :class:`~sounding.outputs.Output`, or a
        callable that takes the events (e.g. a :class:`JsonlWriter`).

        Never waits for a flush in progress: the next flush sees the new output."""
        for slot in self._added:
            known = slot.output
            if known is output or getattr(known, "fn", None) is output:
                return
        if isinstance(output, Output):
            slot = Slot(output)
        elif callable(output):
            slot = Slot(CallableOutput(output))
        else:
            raise InvalidTypeError("add_output(output)", output, "an Output or a callable(events)")
        with self._state_lock:
            self._added = [*self._added, slot]  # a new list: a flush iterating keeps its own

    def outputs(self) -> list[Output]:
        """The outputs the next flush writes to, in order."""
        return [slot.output for slot in self._slots(current())]

    def _slots(self, settings: Resolved) -> list[Slot]:
        # The store first: at exit the budget goes to it before the others.
        slots: list[Slot] = []
        if self._sink_override is not None:
            slots.append(self._primary)
        elif settings.local_recording:
            slots.append(self._primary)
            slots.append(self._jsonl)
        return slots + self._added

    def _loop(self) -> None:
        while not self._stop.is_set():
            interval = current().metrics.aggregation_interval
            now = get_clock().time()
            boundary = (math.floor(now / interval) + 1) * interval
            # Wake at the interval boundary; clamp so a stepped clock cannot spin or stall.
            delay = min(max(boundary - now, 0.05), float(interval), CLOCK_CHECK_SECONDS)
            if self._stop.wait(delay):
                break
            now = get_clock().time()
            start, end = _metrics.get_registry().interval
            if now >= boundary or not start <= now < end:
                self.flush()

    def _stop_thread(self, timeout: float) -> None:
        t = self._thread
        if t is None:
            return
        self._stop.set()
        if t is not threading.current_thread():
            t.join(timeout)
        self._thread = None

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop the thread and flush what is left within ``timeout`` seconds.

        Returns ``True`` when the final flush completed in time. Idempotent.
        """
        budget = current().shutdown_timeout if timeout is None else timeout
        # One budget for the whole exit: the writer's join and the final flush share it.
        end = time.monotonic() + budget
        self._exit_deadline = end
        # Writes stop a little early, so the final flush can still count what is left.
        deadline = end - min(0.25, budget / 5)
        self._set_sink_deadline(deadline)
        self._stop_thread(timeout=budget)
        done = threading.Event()

        def final() -> None:
            try:
                self.flush(deadline=deadline)
                self._spill_pending()
                self._close_sink(added=True)
            finally:
                done.set()

        worker = threading.Thread(target=final, name="sounding-shutdown", daemon=True)
        worker.start()
        worker.join(max(end - time.monotonic(), 0.0))
        # Whatever the budget has left goes to the exporters' last delivery.
        _stop_exporters(max(end - time.monotonic(), 0.0), final=True)
        if not done.is_set():
            try:
                health.failure("shutdown.timeout", message=f"final flush took over {budget} s")
            finally:
                self._spill_everything()
            return False
        return True

    def _set_sink_deadline(self, deadline: float | None) -> None:
        for output in [self._store, self._primary.output] + [s.output for s in self._added]:
            setter = getattr(output, "set_deadline", None)
            if setter is not None:
                try:
                    setter(deadline)
                except Exception as exc:
                    health.failure("shutdown", exc)

    def _at_exit(self) -> None:
        """The exit hook, registered at import and again at first use: ``atexit`` runs hooks
        last-registered first, so the first call is the final flush and the second one runs
        after the hooks the application registered in between (values recorded there land)."""
        if os.getpid() != self._pid:
            return
        try:
            if not self._exiting:
                if self._thread is None and _metrics._registry is None and not len(_events.buffer):
                    return  # sounding was imported but never used
                self._exiting = True
                self.shutdown()
            else:
                self._late_flush()
        except Exception as exc:
            health.failure("shutdown", exc)

    def _late_flush(self) -> None:
        reg = _metrics._registry
        has_metrics = reg is not None and any(
            i._cells and any(_has_data(c) for c in i._cells.values()) for i in reg.instruments()
        )
        if not has_metrics and not len(_events.buffer) and not self._unsent_health():
            return
        deadline = self._exit_deadline if self._exit_deadline is not None else time.monotonic()
        remaining = deadline - time.monotonic()
        # The final flush may still be writing (it overran the budget): do not wait for it.
        if remaining <= 0 or self._abandoned or not self._flush_lock.acquire(timeout=remaining):
            self._spill_everything()
            return
        try:
            self._set_sink_deadline(deadline)
            self.flush(deadline=deadline)
        finally:
            self._flush_lock.release()
            self._spill_pending()
            self._close_sink(added=True)

    def _unsent_health(self) -> bool:
        return any(total > self._health_sent.get(k, 0) for k, total in health.counts().items())

    # -- what could not be stored ------------------------------------------------------------
    def _spill(self, metrics: list[IntervalAggregate], events: list[Event]) -> None:
        """Count ``metrics`` and ``events`` as unsaved in the side file ``status`` reads."""
        counts: dict[str, int] = {}
        values = 0
        for agg in metrics:
            if agg.name.startswith("sounding.internal."):
                # Health counts keep their kind: the next run stores them as they were.
                kind = agg.name[len("sounding.internal.") :]
                counts[kind] = counts.get(kind, 0) + int(agg.count)
            else:
                counts["shutdown.metrics_unsaved"] = counts.get("shutdown.metrics_unsaved", 0) + 1
                values += int(agg.count)
        if values:
            counts["shutdown.values_unsaved"] = values
        if events:
            counts["shutdown.events_unsaved"] = len(events)
        if not counts:
            return
        if not current().configured and self._sink_override is None:
            # Library mode: the application never said where data goes, so nothing is
            # written, not even this count (a library must leave no file behind).
            return
        try:
            from sounding.storage import unsaved

            unsaved.record(current().data_dir, counts)
        except Exception as exc:
            health.failure("shutdown.unsaved", exc)

    def _all_slots(self) -> list[Slot]:
        return [self._primary, self._jsonl, *self._added]

    def _give_up(self, slot: Slot, metrics: list[IntervalAggregate], events: list[Event]) -> None:
        """Exit: what ``slot`` could not write is counted (the store's in the side file)."""
        if slot.is_store:
            self._spill(metrics, events)
        else:
            slot.count_dropped(len(metrics), len(events))

    def _spill_pending(self) -> None:
        if self._abandoned:
            return
        for slot in self._all_slots():
            metrics, events = slot.pending_metrics, slot.pending_events
            slot.pending_metrics, slot.pending_events = [], []
            if slot is not self._primary:
                self._give_up(slot, metrics, events)
        metrics, events = self._primary.pending_metrics, self._primary.pending_events
        self._primary.pending_metrics, self._primary.pending_events = [], []
        now = get_clock().time()
        self._spill(metrics + self._health_aggregates(now, now), events)

    def _spill_everything(self) -> None:
        """The exit budget ran out with a flush still running: count all that is left."""
        reg = _metrics._registry
        collected = reg.collect() if reg is not None else []
        with self._spill_lock:
            self._abandoned = True
            inflight_m, inflight_e = self._inflight
            self._inflight = ([], [])
            taken = []
            for slot in self._all_slots():
                (kept_m, kept_e), (dm, de) = slot.inflight, slot.inflight_done
                taken.append(
                    (slot, slot.pending_metrics + kept_m[dm:], slot.pending_events + kept_e[de:])
                )
                slot.inflight, slot.inflight_done = ([], []), (0, 0)
                slot.pending_metrics, slot.pending_events = [], []
        # Not handed to any output yet: the store's (the side file counts it).
        self._spill(inflight_m + collected, inflight_e + _events.drain())
        for slot, metrics, events in taken:
            self._give_up(slot, metrics, events)
        now = get_clock().time()
        self._spill(self._health_aggregates(now, now), [])

    # -- fork ---------------------------------------------------------------------------------
    def before_fork(self) -> None:
        """Wait (briefly) for a flush in progress, so no transaction is open across fork()."""
        try:
            if self._thread is not None or _metrics._registry is not None:
                # The child imports these to write; if another thread is importing them at
                # fork time, the child would wait forever on that import's lock: finish first.
                import sounding.storage
                import sounding.storage.unsaved  # noqa: F401
            self._fork_locked = self._sql_lock.acquire(timeout=FORK_WAIT)
        except BaseException:
            self._fork_locked = False

    def after_fork_in_parent(self) -> None:
        """Release what :meth:`before_fork` took."""
        if self._fork_locked:
            self._fork_locked = False
            self._sql_lock.release()

    def after_fork_in_child(self) -> None:
        """Start clean in a forked child: no thread, no inherited connection or data."""
        self._pid = os.getpid()
        self._flush_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        # The parent's connection must not be used, nor closed, from the child (closing runs
        # SQLite's clean-up on the parent's WAL): keep it referenced, never touched again.
        inherited = self._store.forget()
        if inherited is not None:
            _inherited.append(inherited)
        # Forked while another thread was inside SQLite (its mutexes may be held forever
        # in this process): no SQLite here; counted at exit instead of hanging.
        self._store.unsafe = not self._fork_locked and self._sink_override is None
        self._fork_locked = False
        self._sql_lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self._abandoned = False
        self._inflight = ([], [])
        self._exiting = False
        self._exit_deadline = None
        jsonl = self._jsonl.output
        if isinstance(jsonl, JsonlOutput):
            jsonl.forget()
        for slot in self._all_slots():
            slot.clear()
        self._health_sent = {}

    # -- flushing -------------------------------------------------------------------------
    def _close_sink(self, added: bool = False) -> None:
        """Close the outputs built from the settings, with ``added`` also those added (the
        next write reopens them)."""
        for slot in self._added if added else []:
            try:
                slot.output.close()
            except Exception as exc:
                health.failure(f"output.{slot.name}.close", exc)
        try:
            self._jsonl.output.close()
        except Exception as exc:
            health.failure("log.file", exc)
        try:
            with self._sql_lock:
                self._store.close()
        except Exception as exc:
            health.failure("storage.close", exc)

    def _health_aggregates(self, start: float, end: float) -> list[IntervalAggregate]:
        out = []
        for kind, total in health.counts().items():
            delta = total - self._health_sent.get(kind, 0)
            if delta <= 0:
                continue
            self._health_sent[kind] = total
            import re  # most short processes have no health counts to store

            name = "sounding.internal." + re.sub(_KIND_PATTERN, "_", kind).strip("._")
            out.append(
                IntervalAggregate(
                    name=name,
                    metric_type=MetricType.COUNTER,
                    tags=(),
                    start=start,
                    end=end,
                    count=delta,
                    sum=float(delta),
                )
            )
        return out

    def flush(self, deadline: float | None = None) -> bool:
        """Write everything aggregated or logged so far. Never raises (except strict mode).

        Returns ``True`` when everything reached every output (or there was nothing to
        write). With a ``deadline`` (``time.monotonic()``, the exit budget) each output is
        written in chunks until then and the rest is counted (the store's as unsaved).
        """
        with self._flush_lock:
            # self._inflight is what this flush has taken from the registry and the buffer
            # but not handed to the outputs yet: kept if anything, even a KeyboardInterrupt,
            # stops the flush half-way (updated with single assignments, no call between).
            # Once handed over, each output's slot keeps its own share.
            try:
                settings = current()
                now = get_clock().time()
                if not settings.configured and self._sink_override is None:
                    # Library mode: the application has not said where data goes. Keep it
                    # in memory (bounded, drops counted) until it does; write nothing.
                    _metrics.get_registry().roll(now)
                    return False
                metrics: list[IntervalAggregate] = []
                self._inflight = (metrics, [])
                _metrics.get_registry().collect_into(metrics, now)
                self._inflight = (metrics, _events.drain())
                events = self._inflight[1]
                self._claim_unsaved(settings)
                metrics.extend(self._health_aggregates(now, now))
                slots = self._slots(settings)
                if deadline is not None:
                    self._set_sink_deadline(deadline)
                with self._spill_lock:
                    if self._abandoned:
                        return False  # exit counted all of it already
                    for slot in slots:
                        slot.keep(metrics, events, None)  # bounded if it is not written
                    self._inflight = ([], [])
                ok = True
                for slot in slots:
                    ok = self._write(slot, deadline) and ok
                return ok
            except Exception as exc:
                self._keep_inflight()
                health.failure("flush", exc)
                return False
            except BaseException:
                self._keep_inflight()
                raise

    def _keep_inflight(self) -> None:
        """The flush stopped before handing its batch over: the outputs keep it for retry."""
        with self._spill_lock:
            if self._abandoned:
                return  # exit has counted it already
            metrics, events = self._inflight
            self._inflight = ([], [])
            if not metrics and not events:
                return
            try:
                slots = self._slots(current())
            except Exception:
                slots = [self._primary]
            # Under the lock: an exit counting what is left sees it in the retry buffers.
            for slot in slots:
                slot.keep(metrics, events, MAX_PENDING)

    def _keep_slot(self, slot: Slot) -> None:
        """What ``slot`` had in flight goes back to the front of its retry buffer."""
        with self._spill_lock:
            if self._abandoned:
                return  # exit has counted it already
            (metrics, events), (dm, de) = slot.inflight, slot.inflight_done
            metrics, events = metrics[dm:], events[de:]  # (what is not stored yet)
            slot.inflight, slot.inflight_done = ([], []), (0, 0)
            rest_m, rest_e = slot.pending_metrics, slot.pending_events
            slot.pending_metrics, slot.pending_events = [], []
            slot.keep(metrics + rest_m, events + rest_e, MAX_PENDING)

    def _write(self, slot: Slot, deadline: float | None) -> bool:
        """Hand ``slot``'s retry buffer to its output in chunks; keep (or at the deadline,
        count) the rest."""
        output = slot.output
        if deadline is None and get_clock().monotonic() < slot.retry_at:
            slot.keep([], [], MAX_PENDING)
            return False  # failed recently: wait before trying again
        with self._spill_lock:
            # (If exit has abandoned this flush, the slot is empty and the loop stops.)
            metrics, events = slot.pending_metrics, slot.pending_events
            slot.pending_metrics, slot.pending_events = [], []
            slot.inflight, slot.inflight_done = (metrics, events), (0, 0)
        if not metrics and not events:
            slot.inflight = ([], [])
            return True
        size = CHUNK
        if deadline is not None:
            # Most valuable first: aggregates (many values each), then the worst events; and
            # small chunks, so the one in flight when the budget ends is small.
            events = sorted(events, key=lambda e: _LEVEL_RANK.get(str(e.get("level")), 5))
            size = EXIT_CHUNK
        n, total = len(metrics), len(metrics) + len(events)
        # fork() waits on the store's lock; the other outputs are serialised by the flush lock.
        lock: _Lock = self._sql_lock if slot is self._primary else _NO_LOCK
        # Aggregates then events, `size` items per write (a small flush is one write).
        for i in range(0, total, size):
            with self._spill_lock:
                if self._abandoned:
                    return False  # exit gave up on this flush and counted all of it
                # In flight: the rest of the batch, by offsets (not a copy per chunk).
                slot.inflight = (metrics, events)  # (the events sorted for exit)
                slot.inflight_done = (min(i, n), max(i - n, 0))
                if deadline is not None and time.monotonic() >= deadline:
                    rest = (metrics[min(i, n) :], events[max(i - n, 0) :])
                    slot.inflight, slot.inflight_done = ([], []), (0, 0)
                    self._give_up(slot, *rest)
                    if slot.is_store:
                        health.failure(
                            "shutdown.timeout", message="exit budget spent; the rest was counted"
                        )
                    return False
            try:
                with lock:
                    stored = output.write(
                        metrics[i : min(i + size, n)],
                        events[max(i - n, 0) : max(i + size - n, 0)],
                        deadline,
                    )
            except Exception as exc:
                self._failed(slot)
                health.failure(str(getattr(output, "failure_kind", f"output.{slot.name}")), exc)
                return False
            except BaseException:
                # A signal may land after the commit: then this chunk is stored; the output
                # keeps the rest and the exception goes on.
                landed = getattr(output, "landed", None)
                try:
                    done = bool(landed()) if landed is not None else False
                except Exception:
                    done = False
                if done:
                    j = i + size
                    slot.inflight_done = (min(j, n), max(j - n, 0))
                self._keep_slot(slot)
                raise
            if not stored:
                self._failed(slot)
                return False
        slot.inflight, slot.inflight_done = ([], []), (0, 0)
        slot.retry_at = 0.0
        return True

    def _failed(self, slot: Slot) -> None:
        self._keep_slot(slot)
        delay = float(getattr(slot.output, "retry_delay", 0.0) or 0.0)
        if delay > 0:
            slot.retry_at = get_clock().monotonic() + delay

    def _claim_unsaved(self, settings: Resolved) -> None:
        """Once per process: take the counts an earlier process could not store."""
        if self._claimed or not settings.local_recording or self._sink_override is not None:
            return
        self._claimed = True
        try:
            from sounding.storage import unsaved

            for kind, n in unsaved.claim(settings.data_dir).items():
                health.count(kind, n)
        except Exception as exc:
            health.failure("storage.unsaved", exc)

    def pending(self) -> tuple[int, int]:
        """Aggregates and events waiting for a retry, over all outputs."""
        slots = self._all_slots()
        return (
            sum(len(s.pending_metrics) for s in slots),
            sum(len(s.pending_events) for s in slots),
        )

    def reset(self) -> None:
        """Stop the thread, drop pending data and close the sink (tests)."""
        self._stop_thread(timeout=1.0)
        self._close_sink()
        self.set_sink(None)
        for slot in self._all_slots():
            slot.clear()
        self._store.retry_at = 0.0
        self._health_sent = {}
        self._added = []
        self._manual = False
        self._exit_deadline = None
        self._exiting = False
        self._claimed = False
        _stop_exporters(1.0)


def _has_data(cell: object) -> bool:
    return bool(getattr(cell, "n", 0) or getattr(cell, "buf", None)) or bool(
        getattr(getattr(cell, "sketch", None), "count", 0)
    )


#: Objects inherited across fork() that the child must neither use nor close.
_inherited: list[object] = []
_runtime = Runtime()


def get_runtime() -> Runtime:
    """The process-wide runtime."""
    return _runtime


def flush() -> bool:
    """Write everything recorded so far to the store now; ``True`` when it all landed.

    >>> import sounding
    >>> sounding.flush() in (True, False)
    True
    """
    return _runtime.flush()


def shutdown(timeout: float | None = None) -> bool:
    """Stop the background writer and flush, waiting at most ``timeout`` seconds."""
    return _runtime.shutdown(timeout)


def _before_configure() -> None:
    # Data recorded before a reconfiguration keeps the old default tags and destination;
    # data recorded in library mode waits for the application's settings instead.
    if not current().configured:
        return
    if _runtime._thread is not None or _metrics._registry is not None:
        _runtime.flush()
        _runtime._close_sink()


def _stop_exporters(timeout: float, final: bool = False) -> None:
    # The exporter thread (sounding.exporters) is a second output of the store: one hook.
    worker = sys.modules.get("sounding.exporters._worker")
    if worker is not None:
        worker.stop(timeout, final=final)


def _on_configure(settings: Resolved) -> None:
    if settings.exporters or "sounding.exporters._worker" in sys.modules:
        from sounding.exporters import _worker

        _worker.apply_settings(settings.public())
    reg = _metrics._registry
    if reg is not None:
        reg.apply_settings()
    _events.buffer.maxlen = settings.event_buffer_size
    health.set_debug(settings.debug)


def _start_on_first_use() -> None:
    _runtime.ensure_started()


def _after_fork() -> None:
    _runtime.after_fork_in_child()
    reg = _metrics._registry
    if reg is not None:
        reg.discard_pending()
    _events.buffer.clear()
    health.reset()


before_configure(_before_configure)
on_resolve(_on_configure)
_metrics.on_first_use(_start_on_first_use)
_events.on_first_emit(_start_on_first_use)


def _before_fork() -> None:
    _runtime.before_fork()


def _after_fork_in_parent() -> None:
    _runtime.after_fork_in_parent()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork
    )
