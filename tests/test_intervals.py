"""Interval timestamps: each observation belongs to the aligned interval of its own time."""

from __future__ import annotations

import pytest

import sounding
from sounding.collection import metrics as _metrics
from sounding.core import health
from sounding.core.clock import set_clock
from sounding.testing import ManualClock, MemorySink, capture

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a multiple of 60


def _starts(sink: MemorySink, name: str) -> list[tuple[float, float, float]]:
    return sorted((a.start, a.end, a.sum) for a in sink.aggregates(name))


def test_observations_land_in_the_interval_of_their_own_time() -> None:
    """Under a manual clock, increments 60 s apart land in two consecutive aligned intervals."""
    clock = ManualClock(START + 10)
    with capture(clock) as sink:
        c = sounding.counter("iv.clicks")
        c.inc()
        clock.advance(60)
        c.inc(2)
        sounding.flush()
    assert _starts(sink, "iv.clicks") == [
        (START, START + 60, 1.0),
        (START + 60, START + 120, 2.0),
    ]


def test_registry_created_before_the_manual_clock_uses_the_manual_time() -> None:
    """A registry made under the real clock stamps later data with the manual clock's time."""
    sounding.counter("iv.early").inc()  # registry and interval under the real clock
    clock = ManualClock(START + 5)
    with capture(clock) as sink:
        sounding.flush()  # what was observed before belongs to the real-time interval
        sink.metrics.clear()
        sounding.counter("iv.early").inc(4)
        clock.advance(30)
        sounding.flush()
    [(start, end, total)] = _starts(sink, "iv.early")
    assert (start, end, total) == (START, START + 60, 4.0)


def test_a_simulated_suspend_does_not_stamp_later_data_before_it() -> None:
    """After the clock jumps three hours, new data is stamped after the jump, old data before."""
    clock = ManualClock(START + 20)
    with capture(clock) as sink:
        h = sounding.histogram("iv.latency", unit="ms")
        h.observe(5.0)
        clock.set(START + 3 * 3600 + 7)  # the laptop slept
        h.observe(9.0)
        sounding.flush()
    got = sorted((a.start, a.end, a.max) for a in sink.aggregates("iv.latency"))
    assert got == [(START, START + 60, 5.0), (START + 3 * 3600, START + 3 * 3600 + 60, 9.0)]


def test_flushes_inside_one_interval_share_its_aligned_bounds() -> None:
    """Two flushes within one interval give two parts of the same [start, end) bucket."""
    clock = ManualClock(START + 1)
    with capture(clock) as sink:
        g = sounding.gauge("iv.queue")
        g.set(3)
        sounding.flush()
        clock.advance(20)
        g.set(7)
        sounding.flush()
    assert [(a.start, a.end, a.last) for a in sink.aggregates("iv.queue")] == [
        (START, START + 60, 3.0),
        (START, START + 60, 7.0),
    ]


class _SilentClock:
    """A user clock that moves without telling anyone."""

    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t


def test_a_clock_that_does_not_notify_still_gets_aligned_stamps_of_the_observation() -> None:
    """With a clock that jumps silently, data is stamped with the interval it was made in."""
    clock = _SilentClock(START + 30)
    with capture() as sink:
        previous = set_clock(clock)
        try:
            sounding.counter("iv.silent").inc()
            clock.t = START + 600.5  # nobody rolled the interval: the flush does
            sounding.flush()
        finally:
            set_clock(previous)
    assert _starts(sink, "iv.silent") == [(START, START + 60, 1.0)]


def test_a_clock_set_back_starts_the_earlier_interval() -> None:
    """Time going backwards closes the current interval and opens the earlier one."""
    clock = ManualClock(START + 120)
    with capture(clock) as sink:
        c = sounding.counter("iv.back")
        c.inc()
        clock.set(START + 1)
        c.inc(5)
        sounding.flush()
    assert _starts(sink, "iv.back") == [(START, START + 60, 5.0), (START + 120, START + 180, 1.0)]


def test_closed_intervals_kept_in_memory_are_bounded_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond MAX_CLOSED waiting aggregates the oldest go and are counted as dropped."""
    monkeypatch.setattr(_metrics, "MAX_CLOSED", 3)
    clock = ManualClock(START)
    with capture(clock) as sink:
        c = sounding.counter("iv.many")
        for i in range(5):
            c.inc(i + 1)
            clock.advance(60)
        sounding.flush()
    assert [a.sum for a in sink.aggregates("iv.many")] == [3.0, 4.0, 5.0]
    assert health.counts().get("metrics.dropped") == 2


def test_the_writer_notices_a_silent_clock_jump_between_boundaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a jump nobody announced (a suspend), the writer rolls the interval over soon,
    not only at the next boundary of its monotonic sleep."""
    import threading

    from sounding import _runtime

    monkeypatch.setattr(_runtime, "CLOCK_CHECK_SECONDS", 0.01)
    clock = _SilentClock(START + 30)
    previous = set_clock(clock)
    rt = _runtime.get_runtime()
    sink = MemorySink()
    rt.set_sink(sink)
    try:
        sounding.counter("iv.sleep").inc()
        rt.ensure_started()
        clock.t = START + 7200 + 5  # the laptop slept two hours
        jumped = threading.Event()
        for _ in range(1000):  # the writer checks every 10 ms; give it up to 10 s
            if _metrics.get_registry().interval[0] == START + 7200:
                jumped.set()
                break
            threading.Event().wait(0.01)
        assert jumped.is_set()
        sounding.counter("iv.sleep").inc(2)
        sounding.flush()
    finally:
        rt.reset()
        set_clock(previous)
    assert _starts(sink, "iv.sleep") == [
        (START, START + 60, 1.0),
        (START + 7200, START + 7260, 2.0),
    ]


def test_a_new_interval_length_applies_from_the_next_observation() -> None:
    """After configure() changes aggregation_interval, later data gets intervals of the new
    length while earlier data keeps its own."""
    clock = ManualClock(START + 25)
    with capture(clock) as sink:
        sounding.configure(metrics=sounding.MetricsConfig(aggregation_interval=60))
        c = sounding.counter("iv.step")
        c.inc()
        sounding.configure(metrics=sounding.MetricsConfig(aggregation_interval=10))
        c.inc(2)
        clock.advance(10)
        c.inc(3)
        sounding.flush()
    assert _starts(sink, "iv.step") == [
        (START, START + 60, 1.0),
        (START + 20, START + 30, 2.0),
        (START + 30, START + 40, 3.0),
    ]
