"""The runtime: flushing to the sink, failures, retries, shutdown budget, fork safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

import sounding
from sounding import _runtime
from sounding.collection import events
from sounding.core import health
from sounding.core.types import Event, IntervalAggregate
from sounding.testing import MemorySink, capture

SRC = str(Path(sounding.__file__).parents[1])


class FlakySink(MemorySink):
    """Fails the first ``failures`` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def write(self, metrics: Sequence[IntervalAggregate], events: Sequence[Event]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        super().write(metrics, events)


def test_flush_hands_metrics_and_events_to_the_sink_in_one_write() -> None:
    """One flush is one write() holding both aggregates and events."""
    with capture() as sink:
        sounding.counter("rt.c").inc()
        events.emit({"event": "e", "timestamp": 1.0})
        assert sounding.flush() is True
    assert sink.writes == 1
    assert sink.total("rt.c") == 1
    assert [e["event"] for e in sink.events] == ["e"]


def test_failed_write_is_counted_and_retried_without_loss() -> None:
    """A failing sink never raises into the host; the batch is written on a later flush."""
    rt = _runtime.get_runtime()
    sink = FlakySink(failures=2)
    rt.set_manual(True)
    rt.set_sink(sink)
    c = sounding.counter("rt.retry")
    c.inc(3)
    assert sounding.flush() is False
    c.inc(4)
    assert sounding.flush() is False
    assert rt.pending()[0] >= 2
    assert sounding.flush() is True
    assert sink.total("rt.retry") == 7
    assert health.counts()["storage.write"] == 2
    assert sink.total("sounding.internal.storage.write") == 2


def test_pending_data_is_bounded_and_drops_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the sink stays down, the retry buffer is capped and what is dropped is counted."""
    monkeypatch.setattr(_runtime, "MAX_PENDING", 5)
    rt = _runtime.get_runtime()
    rt.set_manual(True)
    rt.set_sink(FlakySink(failures=10**6))
    c = sounding.counter("rt.bound")
    for i in range(20):
        c.inc(tags={"i": str(i)})
    sounding.flush()
    assert rt.pending()[0] <= 5
    assert health.counts()["metrics.dropped"] >= 15


def test_events_beyond_the_buffer_are_dropped_and_counted() -> None:
    """The event buffer is bounded; overflow drops the oldest and counts it."""
    sounding.configure(event_buffer_size=3)
    with capture() as sink:
        for i in range(10):
            events.emit({"event": f"e{i}"})
        sounding.flush()
    assert [e["event"] for e in sink.events] == ["e7", "e8", "e9"]
    assert health.counts()["events.dropped"] == 7


def test_local_recording_off_writes_nothing() -> None:
    """With local recording off, nothing is written and nothing is kept."""
    sounding.configure(local_recording=False)
    rt = _runtime.get_runtime()
    rt.set_manual(True)
    sounding.counter("rt.off").inc()
    assert sounding.flush() is True
    assert rt.pending() == (0, 0)


def test_shutdown_is_idempotent() -> None:
    """shutdown() twice is fine and flushes what is left."""
    rt = _runtime.get_runtime()
    sink = MemorySink()
    rt.set_sink(sink)
    sounding.counter("rt.sd").inc()
    assert sounding.shutdown(timeout=2) is True
    assert sounding.shutdown(timeout=2) is True
    assert sink.total("rt.sd") == 1


def _run(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_exit_flush_respects_the_time_budget(tmp_path: Path) -> None:
    """At exit a sink that hangs cannot hold the process past the shutdown budget."""
    proc = _run(
        f"""
        import time, sounding
        from sounding import _runtime
        class Hanging:
            def write(self, m, e): time.sleep(30)
            def close(self): pass
        sounding.configure(data_dir={str(tmp_path)!r}, shutdown_timeout=0.5, debug=True)
        _runtime.get_runtime().set_sink(Hanging())
        sounding.counter("x.y").inc()
        print("started", time.monotonic(), flush=True)
        """,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert "started" in proc.stdout
    assert "shutdown.timeout" in proc.stderr


def test_forked_child_starts_clean(tmp_path: Path) -> None:
    """After fork the child has its own writer and none of the parent's pending data."""
    proc = _run(
        """
        import os, sounding
        from sounding import _runtime
        from sounding.testing import MemorySink
        sink = MemorySink()
        _runtime.get_runtime().set_sink(sink)
        c = sounding.counter("fork.c")
        c.inc(5)
        pid = os.fork()
        if pid == 0:
            c.inc(1)
            sounding.flush()
            print("child", sink.total("fork.c"), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        sounding.flush()
        print("parent", sink.total("fork.c"), flush=True)
        """
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split() for line in proc.stdout.split("\n") if line)
    assert lines == {"child": "1.0", "parent": "5.0"}


def test_background_thread_flushes_at_the_interval(tmp_path: Path) -> None:
    """Without any explicit flush, the writer thread delivers data at the interval."""
    proc = _run(
        """
        import time, sounding
        from sounding import _runtime
        from sounding.testing import MemorySink
        sounding.configure(metrics=sounding.MetricsConfig(aggregation_interval=1))
        sink = MemorySink()
        _runtime.get_runtime().set_sink(sink)
        sounding.counter("bg.c").inc()
        deadline = time.monotonic() + 10
        while sink.total("bg.c") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        print(sink.total("bg.c"))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1.0"


def test_first_event_before_any_instrument_starts_the_writer(tmp_path: Path) -> None:
    """An event emitted before any instrument exists starts the writer without deadlock."""
    proc = _run(
        """
        import sounding
        from sounding.collection import events
        from sounding import _runtime
        events.emit({"event": "first", "timestamp": 0.0})
        print(_runtime.get_runtime()._thread is not None)
        """,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
