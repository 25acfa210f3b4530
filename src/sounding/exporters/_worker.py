"""The background exporter: one daemon thread that ships closed intervals from the store.

Started by the runtime (one hook, :func:`apply_settings`, on every ``configure()``) when
``exporters`` are configured, the telemetry level is ``all`` and local recording is on;
otherwise no thread runs and no socket is opened. Its first cycle runs two seconds after it
starts (a backlog goes out at once); then it wakes half an interval after each aggregation
boundary (the writer has flushed by then), delivers every destination up to that boundary
and sleeps again: the hot path never sees it. :func:`stop` joins it within the shutdown
budget and, at shutdown, spends what is left on one last delivery.
``SOUNDING_EXPORT_DEBUG=1`` (Homebrew's ``HOMEBREW_ANALYTICS_DEBUG`` convention) prints each
payload to stderr instead of sending it.
"""

from __future__ import annotations

import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sounding.core import health
from sounding.core.clock import get_clock
from sounding.core.config import Settings
from sounding.core.exceptions import ConfigurationError
from sounding.core.types import TelemetryLevel
from sounding.exporters._deliver import DeliveryReport, deliver
from sounding.exporters.base import Exporter, Payload
from sounding.storage.outbox import ExportLock

__all__ = ["ExportWorker", "apply_settings", "build_exporters", "from_spec", "stop"]

#: History further behind than this is skipped (counted) rather than sent.
MAX_BACKLOG_DAYS = 30
#: Seconds after start before the first cycle.
FIRST_CYCLE_DELAY = 2.0
_DEBUG_ENV = "SOUNDING_EXPORT_DEBUG"


def from_spec(spec: Mapping[str, Any]) -> Exporter:
    """An exporter from a TOML table: ``type`` (``remote-write`` or ``otlp``), ``url`` and
    the exporter's keyword arguments (``headers``, ``instance``, ``tags``, ...)."""
    args = dict(spec)
    kind = args.pop("type", None)
    url = args.pop("url", None)
    if "bucket_range" in args:
        args["bucket_range"] = tuple(args["bucket_range"])
    if kind == "remote-write":
        from sounding.exporters.remote_write import RemoteWriteExporter

        return RemoteWriteExporter(url, **args)
    if kind == "otlp":
        from sounding.exporters.otlp import OTLPExporter

        return OTLPExporter(url, **args)
    raise ConfigurationError("exporters.type", kind, "'remote-write' or 'otlp'")


def build_exporters(items: Sequence[Any]) -> list[Exporter]:
    """Exporter objects for the configured items (TOML tables are built)."""
    return [from_spec(i) if isinstance(i, Mapping) else i for i in items]


def sending_allowed(settings: Settings) -> bool:
    """Aggregates leave only at telemetry level ``all``, and only from a local store."""
    return settings.telemetry_level is TelemetryLevel.ALL and settings.local_recording


class ExportWorker:
    """The thread and its destinations."""

    def __init__(self, exporters: list[Exporter], settings: Settings) -> None:
        self.exporters = exporters
        self.settings = settings
        self.stop_event = threading.Event()
        self.last_reports: dict[str, DeliveryReport] = {}
        self._thread = threading.Thread(target=self._loop, name="sounding-exporter", daemon=True)
        self._pid = os.getpid()

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def _loop(self) -> None:
        interval = float(self.settings.metrics.aggregation_interval)
        # A first cycle soon after start: a laptop back online delivers its backlog now.
        if self.stop_event.wait(min(FIRST_CYCLE_DELAY, interval)):
            return
        self.run_once()
        while not self.stop_event.is_set():
            now = get_clock().time()
            wake = (math.floor(now / interval) + 1.5) * interval
            if self.stop_event.wait(min(max(wake - now, 0.05), interval * 1.5)):
                break
            self.run_once()

    def run_once(
        self, until: float | None = None, deadline: float | None = None
    ) -> list[DeliveryReport]:
        """Deliver every destination up to the last closed boundary (or ``until``), never
        past ``deadline`` (``time.monotonic()``; default 80 % of an interval). Never raises."""
        interval = float(self.settings.metrics.aggregation_interval)
        if deadline is None:
            deadline = time.monotonic() + max(interval * 0.8, 1.0)
        end = until if until is not None else math.floor(get_clock().time() / interval) * interval
        reports: list[DeliveryReport] = []
        lock = ExportLock(self.settings.data_dir)
        if not lock.acquire():
            return reports  # another process of this data dir is exporting
        try:
            conn = sqlite3.connect(self.settings.store_path, timeout=5.0, isolation_level=None)
        except Exception as exc:
            lock.release()
            health.failure("export.open", exc)
            return []
        try:
            for exp in self.exporters:
                if time.monotonic() >= deadline:
                    break
                try:
                    report = deliver(
                        exp,
                        conn,
                        since=end - 86400.0,
                        until=end,
                        max_backlog=MAX_BACKLOG_DAYS * 86400.0,
                        deadline=deadline,
                        dry_run=_echo if self._echo() else None,
                    )
                except Exception as exc:
                    health.failure("export.deliver", exc)
                    continue
                self.last_reports[exp.destination] = report
                reports.append(report)
        finally:
            conn.close()
            lock.release()
        return reports

    def _echo(self) -> bool:
        # Echo mode: the user's (``sounding telemetry ... --echo``, SOUNDING_TELEMETRY_ECHO)
        # or SOUNDING_EXPORT_DEBUG: print each payload, send nothing.
        return bool(getattr(self.settings, "telemetry_echo", False) or os.environ.get(_DEBUG_ENV))

    def stop(self, timeout: float, final: bool = False) -> bool:
        """Stop within ``timeout`` seconds; ``True`` when the thread ended in time.

        With ``final`` (process shutdown), the intervals closed since the last cycle are
        delivered first, within what is left of ``timeout``: a short-lived program sends at
        exit what it recorded in earlier runs.
        """
        end = time.monotonic() + timeout
        self.stop_event.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(max(min(timeout / 2, end - time.monotonic()), 0.0))
        if final and not self._thread.is_alive() and end - time.monotonic() > 0.1:
            self.run_once(deadline=end)
        return not self._thread.is_alive()


def _echo(payload: Payload) -> None:
    print(f"sounding: would send {payload.samples} samples:\n{payload.text}", file=sys.stderr)


_lock = threading.Lock()
_worker: ExportWorker | None = None


def current() -> ExportWorker | None:
    """The running worker, if any."""
    return _worker


def apply_settings(settings: Settings) -> None:
    """(Re)start the worker for ``settings``: none unless exporters are configured and the
    telemetry level is ``all``. Never raises at run time (a bad TOML table is counted)."""
    global _worker
    with _lock:
        old, _worker = _worker, None
    if old is not None:
        old.stop(1.0)
    if not settings.exporters or not sending_allowed(settings):
        return
    try:
        exporters = build_exporters(settings.exporters)
    except Exception as exc:
        health.failure("export.config", exc)
        return
    worker = ExportWorker(exporters, settings)
    with _lock:
        _worker = worker
    worker.start()


def stop(timeout: float = 1.0, final: bool = False) -> bool:
    """Stop the worker (shutdown with ``final``: one last delivery within ``timeout``; reset;
    fork); ``True`` when it ended within ``timeout``."""
    global _worker
    with _lock:
        w, _worker = _worker, None
    if w is None:
        return True
    if w._pid != os.getpid():
        return True
    return w.stop(timeout, final=final)
