"""The output seam: the runtime writes every flush to a list of outputs, each on its own."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import sounding
from sounding import _runtime
from sounding.collection import events
from sounding.core import clock as _clock
from sounding.core import health
from sounding.core.exceptions import InvalidTypeError
from sounding.core.types import Event, IntervalAggregate
from sounding.outputs import JsonlOutput, Output, StoreOutput
from sounding.storage import open_store, unsaved
from sounding.testing import ManualClock, MemorySink, capture


class RecordingOutput:
    """An output that fails its first ``failures`` writes, then records what it gets."""

    def __init__(self, name: str = "rec", failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.metrics: list[IntervalAggregate] = []
        self.events: list[Event] = []
        self.closed = False

    def write(
        self,
        metrics: Sequence[IntervalAggregate],
        events: Sequence[Event],
        deadline: float | None,
    ) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("endpoint down")
        self.metrics.extend(metrics)
        self.events.extend(events)
        return True

    def close(self) -> None:
        self.closed = True


def _total(metrics: Sequence[IntervalAggregate], name: str) -> float:
    return sum(a.sum for a in metrics if a.name == name)


def test_the_store_and_the_jsonl_file_are_the_outputs_built_from_settings(
    tmp_path: Path,
) -> None:
    """Configured, the runtime writes to the store and events.jsonl; local recording off, none."""
    sounding.configure(data_dir=tmp_path / "d")
    rt = _runtime.get_runtime()
    built = rt.outputs()
    assert [type(o) for o in built] == [StoreOutput, JsonlOutput]
    assert all(isinstance(o, Output) for o in built)
    sounding.configure(data_dir=tmp_path / "d", local_recording=False)
    assert rt.outputs() == []


def test_a_failing_output_keeps_its_batch_and_does_not_hold_back_the_store() -> None:
    """An output that raises is counted under its name and retried; the store gets its data."""
    rt = _runtime.get_runtime()
    out = RecordingOutput(failures=1)
    with capture() as sink:
        rt.add_output(out)
        c = sounding.counter("out.c")
        c.inc(2)
        events.emit({"event": "first", "timestamp": 1.0})
        assert sounding.flush() is False
        assert sink.total("out.c") == 2
        assert health.counts()["output.rec"] == 1
        c.inc(3)
        assert sounding.flush() is True
    assert _total(out.metrics, "out.c") == 5
    assert [e["event"] for e in out.events] == ["first"]
    assert sink.total("out.c") == 5


def test_an_output_that_stays_down_drops_and_counts_under_its_own_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An output's retry buffer is bounded; its drops count as output.<name>.dropped."""
    monkeypatch.setattr(_runtime, "MAX_PENDING", 5)
    rt = _runtime.get_runtime()
    with capture() as sink:
        rt.add_output(RecordingOutput(name="down", failures=10**6))
        c = sounding.counter("out.bound")
        for i in range(20):
            c.inc(tags={"i": str(i)})
        sounding.flush()
    counts = health.counts()
    assert counts["output.down.dropped"] >= 15
    assert "metrics.dropped" not in counts
    assert sink.total("out.bound") == 20


def test_a_failed_jsonl_file_waits_its_retry_time_then_writes_the_kept_events(
    tmp_path: Path,
) -> None:
    """events.jsonl failing keeps its events for 30 s while the store writes them at once."""
    manual = ManualClock()
    previous = _clock.set_clock(manual)
    try:
        settings = sounding.configure(data_dir=tmp_path / "d")
        rt = _runtime.get_runtime()
        rt.set_manual(True)
        settings.log_path.mkdir(parents=True)  # a directory where the file should be
        events.emit({"event": "kept", "timestamp": manual.time()})
        assert sounding.flush() is False
        assert health.counts()["log.file"] == 1
        assert sounding.flush() is False
        assert health.counts()["log.file"] == 1  # not retried before its time
        settings.log_path.rmdir()
        manual.advance(31.0)
        assert sounding.flush() is True
        lines = [json.loads(x) for x in settings.log_path.read_text().splitlines()]
        assert [e["event"] for e in lines] == ["kept"]
        with open_store(settings.data_dir) as store:
            stored = store.events()
        assert [e["event"] for e in stored if e["event"] == "kept"] == ["kept"]
    finally:
        _runtime.get_runtime().reset()
        _clock.set_clock(previous)


def test_what_an_output_still_holds_at_exit_is_counted() -> None:
    """At shutdown an output's unwritten items are counted (output.<name>.dropped); it is closed."""
    rt = _runtime.get_runtime()
    sink = MemorySink()
    rt.set_sink(sink)
    never = RecordingOutput(name="never", failures=10**6)
    rt.add_output(never)
    for i in range(3):
        events.emit({"event": f"e{i}", "timestamp": 1.0})
    sounding.shutdown(timeout=2)
    assert health.counts()["output.never.dropped"] == 3
    assert never.closed
    assert [e["event"] for e in sink.events] == ["e0", "e1", "e2"]


def test_a_callable_output_gets_the_events_once() -> None:
    """A plain callable registered twice is one output that receives each event once."""
    rt = _runtime.get_runtime()
    got: list[str] = []

    def collect(batch: list[Event]) -> None:
        got.extend(str(e["event"]) for e in batch)

    with capture():
        rt.add_output(collect)
        rt.add_output(collect)
        events.emit({"event": "a", "timestamp": 1.0})
        assert sounding.flush() is True
    assert got == ["a"]


def test_add_output_refuses_what_is_neither_an_output_nor_callable() -> None:
    """add_output(42) raises sounding's TypeError naming the argument."""
    with pytest.raises(InvalidTypeError, match=r"add_output\(output\)=42"):
        _runtime.get_runtime().add_output(42)  # type: ignore[arg-type]


class SlowOutput(RecordingOutput):
    """An output whose every write takes ``delay`` seconds (a slow endpoint)."""

    def __init__(self, delay: float) -> None:
        super().__init__(name="slow")
        self.delay = delay

    def write(
        self,
        metrics: Sequence[IntervalAggregate],
        events: Sequence[Event],
        deadline: float | None,
    ) -> bool:
        time.sleep(self.delay)
        return super().write(metrics, events, deadline)


def test_the_exit_budget_is_shared_and_every_event_is_written_or_counted(
    data_dir: Path,
) -> None:
    """A slow output spends the exit budget; what it and the store miss is counted, not lost."""
    total = 2000
    rt = _runtime.get_runtime()
    sink = MemorySink()
    rt.set_sink(sink)
    slow = SlowOutput(delay=0.2)
    rt.add_output(slow)
    for i in range(total):
        events.emit({"event": f"e{i}", "timestamp": 1.0})
    sounding.shutdown(timeout=0.5)
    assert len(slow.events) < total  # the budget ended before the slow output finished
    assert len(slow.events) + health.counts().get("output.slow.dropped", 0) >= total
    unsaved_events = unsaved.peek(data_dir).get("shutdown.events_unsaved", 0)
    assert len(sink.events) + unsaved_events >= total
