"""Test helpers, shipped as public API: a memory sink, a manual clock, strict mode, capture.

>>> import sounding
>>> from sounding.testing import capture
>>> with capture() as sink:
...     sounding.counter("doc.clicks").inc(3)
...     _ = sounding.flush()
>>> sink.total("doc.clicks")
3.0
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sounding import _runtime
from sounding.collection import events as _events
from sounding.collection import metrics as _metrics
from sounding.core import clock as _clock
from sounding.core import config as _config
from sounding.core import health
from sounding.core.sketch import QuantileSketch
from sounding.core.types import Event, IntervalAggregate

__all__ = [
    "ManualClock",
    "MemorySink",
    "capture",
    "isolated_data_dir",
    "reset",
    "simulated_time",
    "strict",
]


class MemorySink:
    """A :class:`~sounding.collection.sink.Sink` that keeps every batch in memory."""

    def __init__(self) -> None:
        self.metrics: list[IntervalAggregate] = []
        self.events: list[Event] = []
        self.writes = 0
        self.closed = False
        self._lock = threading.Lock()

    def write(self, metrics: Sequence[IntervalAggregate], events: Sequence[Event]) -> None:
        """Keep the batch."""
        with self._lock:
            self.metrics.extend(metrics)
            self.events.extend(events)
            self.writes += 1

    def close(self) -> None:
        """Mark closed (idempotent); the data stays readable."""
        self.closed = True

    # -- reading helpers ------------------------------------------------------------------
    def aggregates(
        self, name: str, tags: dict[str, str] | None = None
    ) -> list[IntervalAggregate]:
        """Aggregates of metric ``name`` whose tags include ``tags``."""
        want = set((tags or {}).items())
        return [a for a in self.metrics if a.name == name and want <= set(a.tags)]

    def total(self, name: str, tags: dict[str, str] | None = None) -> float:
        """Sum of ``sum`` over the matching aggregates (a counter's total)."""
        return sum(a.sum for a in self.aggregates(name, tags))

    def count(self, name: str, tags: dict[str, str] | None = None) -> int:
        """Number of observations over the matching aggregates."""
        return sum(a.count for a in self.aggregates(name, tags))

    def sketch(self, name: str, tags: dict[str, str] | None = None) -> QuantileSketch:
        """The matching aggregates' sketches merged into one."""
        merged = QuantileSketch()
        for a in self.aggregates(name, tags):
            if a.sketch is not None:
                merged.merge(a.sketch)
        return merged

    def find_events(self, event: str | None = None, **fields: Any) -> list[Event]:
        """Events named ``event`` (any when ``None``) whose fields equal ``fields``."""
        return [
            e
            for e in self.events
            if (event is None or e.get("event") == event)
            and all(e.get(k) == v for k, v in fields.items())
        ]


class ManualClock:
    """A clock that moves only when told to: ``advance(seconds)`` or ``set(epoch)``."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._wall = float(start)
        self._mono = 1000.0
        self._lock = threading.Lock()

    def time(self) -> float:
        """Wall-clock seconds."""
        return self._wall

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        with self._lock:
            self._wall += seconds
            self._mono += seconds
        self._moved()

    def set(self, epoch: float) -> None:
        """Set the wall clock (the monotonic clock moves forward by the same amount if later)."""
        with self._lock:
            if epoch > self._wall:
                self._mono += epoch - self._wall
            self._wall = float(epoch)
        self._moved()

    def _moved(self) -> None:
        # Observations made before the move belong to the interval they were made in.
        if _clock.get_clock() is self:
            _clock.clock_changed()


@contextmanager
def strict(enabled: bool = True) -> Iterator[None]:
    """Within the block, run-time telemetry failures raise ``InternalError``."""
    previous = health.set_strict(enabled)
    try:
        yield
    finally:
        health.set_strict(previous)


@contextmanager
def capture(clock: ManualClock | None = None) -> Iterator[MemorySink]:
    """Send everything to a fresh :class:`MemorySink`, with no background thread.

    Data moves only on :func:`sounding.flush`; with ``clock`` the given clock is installed.
    """
    rt = _runtime.get_runtime()
    sink = MemorySink()
    previous_clock = _clock.set_clock(clock) if clock is not None else None
    rt.set_manual(True)
    previous_sink = rt.set_sink(sink)
    try:
        yield sink
    finally:
        rt.set_sink(previous_sink)
        rt.set_manual(False)
        if clock is not None:
            _clock.set_clock(previous_clock)


@contextmanager
def simulated_time(clock: ManualClock) -> Iterator[ManualClock]:
    """Run sounding on ``clock`` with the real store but no background writer.

    For simulations and imports of history: the clock races ahead of real time, so data moves
    only when you call :func:`sounding.flush` (at interval boundaries, typically). Whatever is
    pending is flushed when the block ends.

    >>> import sounding
    >>> from sounding.testing import ManualClock, simulated_time
    >>> with simulated_time(ManualClock()) as clock:
    ...     sounding.counter("sim.events").inc()
    ...     clock.advance(60)
    ...     _ = sounding.flush()
    """
    rt = _runtime.get_runtime()
    previous = _clock.set_clock(clock)
    rt.set_manual(True)
    try:
        yield clock
    finally:
        try:
            rt.flush()
        finally:
            rt.set_manual(False)
            _clock.set_clock(previous)


@contextmanager
def isolated_data_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Run the block with sounding writing under ``path`` (a test's temporary directory).

    For the test suite of an application that calls :func:`sounding.configure`: the data
    dir is pinned through ``SOUNDING_DATA_DIR`` (which wins over the TOML file and the default,
    though not over a ``data_dir=`` the code passes itself), sounding starts pristine and is
    reset afterwards. In a ``conftest.py``::

        @pytest.fixture(autouse=True)
        def _sounding(tmp_path):
            with sounding.testing.isolated_data_dir(tmp_path / "sounding") as data_dir:
                yield data_dir

    Without it a test run still never writes into the real data dir: under pytest an
    implicit data dir is a fresh temporary directory.
    """
    target = Path(path)
    previous = os.environ.get("SOUNDING_DATA_DIR")
    reset()
    os.environ["SOUNDING_DATA_DIR"] = str(target)
    try:
        yield target
    finally:
        try:
            _runtime.get_runtime().flush()
        finally:
            reset()
            if previous is None:
                os.environ.pop("SOUNDING_DATA_DIR", None)
            else:
                os.environ["SOUNDING_DATA_DIR"] = previous


def reset() -> None:
    """Return sounding to a pristine state: settings, registry, buffers, health, clock.

    Use it in an autouse fixture so tests do not leak state into each other.
    """
    _runtime.get_runtime().reset()
    _metrics.reset_registry()
    _events.buffer.clear()
    _config.reset()
    health.reset()
    health.set_strict(False)
    health.set_debug(False)
    _clock.set_clock(None)
    from sounding.collection import identifiers, log
    from sounding.collection.context import clear_context
    from sounding.collection.session import get_session_manager
    from sounding.core import consent

    consent._reset()
    identifiers.reset_salt_cache()
    get_session_manager().reset()
    clear_context()
    log._reset_caches()
