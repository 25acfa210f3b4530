"""The runtime: the background writer that moves aggregates and events to the sink.

A daemon thread, started lazily when the first instrument or logger is created, wakes at
every aggregation-interval boundary (wall clock), collects closed intervals from the
registry and drains the event buffer, and hands both to the sink in one call (one SQLite
transaction). :func:`flush` does the same synchronously. At exit a flush runs with a bounded
time budget (``Settings.shutdown_timeout``). After ``fork()`` the child starts clean: its own
thread, its own connection, no copy of the parent's pending data.

Failures never reach the host: a sink that raises is counted (``storage.write``), its batch is
kept for retry (bounded; anything dropped is counted) and written at the next flush.
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

    # -- lifecycle ------------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the writer thread if it is not running (idempotent, cheap when running)."""
        if self._thread is not None or self._manual:
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
                atexit.register(self._at_exit)
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
            delay = min(max(boundary - now, 0.05), float(interval))
            if self._stop.wait(delay):
                break
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
        began = time.monotonic()
        budget = get_settings().shutdown_timeout if timeout is None else timeout
        self._stop_thread(timeout=budget)
        done = threading.Event()

        def final() -> None:
            try:
                self.flush()
                self._close_sink()
            finally:
                done.set()

        worker = threading.Thread(target=final, name="sounding-shutdown", daemon=True)
        worker.start()
        worker.join(budget)
        # Whatever the budget has left goes to the exporters' last delivery.
        _stop_exporters(max(budget - (time.monotonic() - began), 0.0), final=True)
        if not done.is_set():
            health.failure("shutdown.timeout", message=f"final flush took over {budget} s")
            return False
        return True

    def _at_exit(self) -> None:
        if os.getpid() != self._pid:
            return
        try:
            self.shutdown()
        except Exception as exc:
            health.failure("shutdown", exc)

    def after_fork_in_child(self) -> None:
        """Start clean in a forked child: no thread, no inherited connection or data."""
        self._pid = os.getpid()
        self._flush_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        # The parent's connection must not be used from the child; drop it without closing.
        self._sink = None
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

    def flush(self) -> bool:
        """Write everything aggregated or logged so far. Never raises (except strict mode).

        Returns ``True`` when everything reached the sink (or there was nothing to write).
        """
        with self._flush_lock:
            try:
                settings = get_settings()
                now = get_clock().time()
                metrics = _metrics.get_registry().collect(now)
                events = _events.drain()
                for output in list(self._outputs):
                    try:
                        output(events)
                    except Exception as exc:
                        health.failure("events.output", exc)
                metrics.extend(self._health_aggregates(now, now))
                if events and settings.local_recording and self._sink_override is None:
                    self._jsonl_writer().write(events)
                sink = self._get_sink(settings)
                if sink is None:
                    if not settings.local_recording:
                        return True
                    self._keep(metrics, events)
                    return False
                batch_m = self._pending_metrics + metrics
                batch_e = self._pending_events + events
                if not batch_m and not batch_e:
                    return True
                try:
                    sink.write(batch_m, batch_e)
                except Exception as exc:
                    self._pending_metrics, self._pending_events = [], []
                    self._keep(batch_m, batch_e)
                    health.failure("storage.write", exc)
                    return False
                self._pending_metrics, self._pending_events = [], []
                return True
            except Exception as exc:
                health.failure("flush", exc)
                return False

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
        _stop_exporters(1.0)


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
    # Data recorded before a reconfiguration keeps the old default tags and destination.
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
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
