"""The runtime: the background writer that moves aggregates and events to the sink.

A daemon thread, started lazily when the first instrument or logger is created, wakes at
every aggregation-interval boundary (wall clock), collects closed intervals from the
registry and drains the event buffer, and hands both to the sink in one call (one SQLite
transaction). :func:`flush` does the same synchronously. At exit a flush runs with a bounded
time budget (``Settings.shutdown_timeout``). After ``fork()`` the child starts clean: its own
thread, its own connection, no copy of the parent's pending data.

Failures never reach the host: a sink that raises is counted (``storage.write``), its batch is
kept for retry (bounded; anything dropped is counted) and written at the next flush. A
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
import re
import sys
import threading
import time
from collections.abc import Callable

from sounding.collection import events as _events
from sounding.collection import metrics as _metrics
from sounding.collection.jsonl import JsonlWriter
from sounding.collection.sink import Sink
from sounding.core import health
from sounding.core.clock import get_clock
from sounding.core.config import Settings, before_configure, get_settings, on_configure
from sounding.core.types import Event, IntervalAggregate, MetricType

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
_KIND_RE = re.compile(r"[^A-Za-z0-9_.]+")


class Runtime:
    """Owns the writer thread, the sink and the retry buffers of one process."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._flush_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sink: Sink | None = None
        self._sink_override: Sink | None = None
        self._jsonl: JsonlWriter | None = None
        self._outputs: list[Callable[[list[Event]], None]] = []
        self._pending_metrics: list[IntervalAggregate] = []
        self._pending_events: list[Event] = []
        self._health_sent: dict[str, int] = {}
        self._atexit_registered = False
        self._manual = False
        self._sink_retry_at = 0.0
        #: The monotonic instant the whole exit must be done by (set when exit starts).
        self._exit_deadline: float | None = None
        self._exiting = False
        self._claimed = False
        self._fork_locked = False
        #: Held around every call into the SQLite sink (one chunk), and by fork().
        self._sql_lock = threading.Lock()
        #: Set in a child forked while the parent was inside SQLite: never touch SQLite.
        self._sqlite_unsafe = False
        #: What the flush in progress has taken but not yet stored: counted if exit
        #: abandons that flush.
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
        """Use ``sink`` instead of the SQLite store (``None`` restores the default)."""
        with self._flush_lock:
            previous = self._sink_override
            self._sink_override = sink
            return previous

    def add_output(self, output: Callable[[list[Event]], None]) -> None:
        """Also hand every flushed batch of events to ``output`` (e.g. the JSON-lines file)."""
        if output not in self._outputs:
            self._outputs.append(output)

    def _loop(self) -> None:
        while not self._stop.is_set():
            interval = get_settings().metrics.aggregation_interval
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
        budget = get_settings().shutdown_timeout if timeout is None else timeout
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
                self._close_sink()
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
        for sink in (self._sink, self._sink_override):
            setter = getattr(sink, "set_deadline", None)
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
            self._close_sink()

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
        try:
            from sounding.storage import unsaved

            unsaved.record(get_settings().data_dir, counts)
        except Exception as exc:
            health.failure("shutdown.unsaved", exc)

    def _spill_pending(self) -> None:
        if self._abandoned:
            return
        metrics, events = self._pending_metrics, self._pending_events
        self._pending_metrics, self._pending_events = [], []
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
        self._spill(
            self._pending_metrics + inflight_m + collected,
            self._pending_events + inflight_e + _events.drain(),
        )
        self._pending_metrics, self._pending_events = [], []
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
        if self._sink is not None:
            _inherited.append(self._sink)
        self._sink = None
        # Forked while another thread was inside SQLite (its mutexes may be held forever
        # in this process): no SQLite here; counted at exit instead of hanging.
        self._sqlite_unsafe = not self._fork_locked and self._sink_override is None
        self._fork_locked = False
        self._sql_lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self._abandoned = False
        self._inflight = ([], [])
        self._exiting = False
        self._exit_deadline = None
        self._jsonl = None
        self._pending_metrics = []
        self._pending_events = []
        self._health_sent = {}

    # -- flushing -------------------------------------------------------------------------
    def _get_sink(self, settings: Settings) -> Sink | None:
        if self._sink_override is not None:
            return self._sink_override
        if not settings.local_recording:
            return None
        if self._sqlite_unsafe:
            health.count("fork.store_unavailable")
            return None
        if self._sink is None:
            now = get_clock().monotonic()
            if now < self._sink_retry_at:
                return None
            try:
                from sounding.storage import SQLiteSink

                self._sink = SQLiteSink(settings.store_path, settings.metrics)
            except Exception as exc:
                # Try again later rather than on every flush.
                self._sink_retry_at = now + 30.0
                health.failure("storage.open", exc)
                return None
        return self._sink

    def _jsonl_writer(self) -> JsonlWriter:
        if self._jsonl is None:
            self._jsonl = JsonlWriter()
        return self._jsonl

    def _close_sink(self) -> None:
        jsonl, self._jsonl = self._jsonl, None
        if jsonl is not None:
            jsonl.close()
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                with self._sql_lock:
                    sink.close()
            except Exception as exc:
                health.failure("storage.close", exc)

    def _health_aggregates(self, start: float, end: float) -> list[IntervalAggregate]:
        out = []
        for kind, total in health.counts().items():
            delta = total - self._health_sent.get(kind, 0)
            if delta <= 0:
                continue
            self._health_sent[kind] = total
            name = "sounding.internal." + _KIND_RE.sub("_", kind).strip("._")
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

        Returns ``True`` when everything reached the sink (or there was nothing to write).
        With a ``deadline`` (``time.monotonic()``, the exit budget) the batch is written in
        chunks until then and the rest is counted as unsaved.
        """
        with self._flush_lock:
            # self._inflight is what this flush has taken from the registry, the buffer and
            # the retry lists but not stored yet: kept if anything, even a KeyboardInterrupt,
            # stops the flush half-way (updated with single assignments, no call between).
            try:
                settings = get_settings()
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
                for output in list(self._outputs):
                    try:
                        output(events)
                    except Exception as exc:
                        health.failure("events.output", exc)
                self._claim_unsaved(settings)
                metrics.extend(self._health_aggregates(now, now))
                if events and settings.local_recording and self._sink_override is None:
                    self._jsonl_writer().write(events)
                sink = self._get_sink(settings)
                if sink is None:
                    if not settings.local_recording:
                        self._inflight = ([], [])
                        return True
                    self._keep_inflight()
                    return False
                if deadline is not None:
                    self._set_sink_deadline(deadline)
                batch_m = self._pending_metrics + metrics
                batch_e = self._pending_events + events
                self._pending_metrics, self._pending_events, self._inflight = (
                    [],
                    [],
                    (
                        batch_m,
                        batch_e,
                    ),
                )
                if not batch_m and not batch_e:
                    return True
                return self._write(sink, batch_m, batch_e, deadline)
            except Exception as exc:
                self._keep_inflight()
                health.failure("flush", exc)
                return False
            except BaseException:
                self._keep_inflight()
                raise

    def _keep_inflight(self) -> None:
        with self._spill_lock:
            if self._abandoned:
                return  # exit has counted it already
            metrics, events = self._inflight
            self._inflight = ([], [])
        self._keep(metrics, events)

    def _write(
        self,
        sink: Sink,
        metrics: list[IntervalAggregate],
        events: list[Event],
        deadline: float | None,
    ) -> bool:
        """Hand the batch to ``sink`` in chunks; keep (or at the deadline, count) the rest."""
        size = CHUNK
        if deadline is not None:
            # Most valuable first: aggregates (many values each), then the worst events; and
            # small chunks, so the one in flight when the budget ends is small.
            events = sorted(events, key=lambda e: _LEVEL_RANK.get(str(e.get("level")), 5))
            size = EXIT_CHUNK
        n, total = len(metrics), len(metrics) + len(events)
        # Aggregates then events, `size` items per write (a small flush is one write).
        for i in range(0, total, size):
            rest = (metrics[min(i, n) :], events[max(i - n, 0) :])
            with self._spill_lock:
                if self._abandoned:
                    return False  # exit gave up on this flush and counted all of it
                if deadline is not None and time.monotonic() >= deadline:
                    self._spill(*rest)
                    self._inflight = ([], [])
                    health.failure(
                        "shutdown.timeout", message="exit budget spent; the rest was counted"
                    )
                    return False
                self._inflight = rest
            try:
                with self._sql_lock:
                    sink.write(
                        metrics[i : min(i + size, n)],
                        events[max(i - n, 0) : max(i + size - n, 0)],
                    )
            except Exception as exc:
                self._keep_inflight()
                health.failure("storage.write", exc)
                return False
            except BaseException:
                # A signal may land after the commit: then this chunk is stored; the flush
                # keeps the rest (self._inflight) and lets the exception go on.
                landed = getattr(sink, "landed", None)
                try:
                    stored = bool(landed()) if landed is not None else False
                except Exception:
                    stored = False
                if stored:
                    j = i + size
                    self._inflight = (metrics[min(j, n) :], events[max(j - n, 0) :])
                raise
        self._inflight = ([], [])
        return True

    def _claim_unsaved(self, settings: Settings) -> None:
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

    def _keep(self, metrics: list[IntervalAggregate], events: list[Event]) -> None:
        self._pending_metrics.extend(metrics)
        self._pending_events.extend(events)
        over = len(self._pending_metrics) - MAX_PENDING
        if over > 0:
            del self._pending_metrics[:over]
            health.count("metrics.dropped", over)
        over = len(self._pending_events) - MAX_PENDING
        if over > 0:
            del self._pending_events[:over]
            health.count("events.dropped", over)

    def pending(self) -> tuple[int, int]:
        """Aggregates and events waiting for a retry."""
        return len(self._pending_metrics), len(self._pending_events)

    def reset(self) -> None:
        """Stop the thread, drop pending data and close the sink (tests)."""
        self._stop_thread(timeout=1.0)
        self._close_sink()
        self._sink_override = None
        self._pending_metrics = []
        self._pending_events = []
        self._health_sent = {}
        self._outputs = []
        self._manual = False
        self._sink_retry_at = 0.0
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
    if not get_settings().configured:
        return
    if _runtime._thread is not None or _metrics._registry is not None:
        _runtime.flush()
        _runtime._close_sink()


def _stop_exporters(timeout: float, final: bool = False) -> None:
    # The exporter thread (sounding.exporters) is a second output of the store: one hook.
    worker = sys.modules.get("sounding.exporters._worker")
    if worker is not None:
        worker.stop(timeout, final=final)


def _on_configure(settings: Settings) -> None:
    if settings.exporters or "sounding.exporters._worker" in sys.modules:
        from sounding.exporters import _worker

        _worker.apply_settings(settings)
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
on_configure(_on_configure)
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
