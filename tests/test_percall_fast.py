"""The per-call fast paths of PerformanceTimer and operation_boundary (issue 13, fourth round):
the series they append to directly is forgotten when the registry is reset, and the state
a timer leaves unset until its first run reads as before."""

from __future__ import annotations

import asyncio
import math

import pytest

import sounding
from sounding.collection import metrics
from sounding.collection.boundary import operation_boundary
from sounding.collection.timing import PerformanceTimer, track_execution_time
from sounding.core import health
from sounding.testing import ManualClock, MemorySink, capture


def _ok_count(sink: MemorySink, name: str) -> int:
    sounding.flush()
    return sum(a.count for a in sink.aggregates(name, {"status": "ok"}))


def test_a_plain_timer_after_a_reset_records_in_the_new_registry(clock: ManualClock) -> None:
    """A per-call ``PerformanceTimer("op")`` and a decorated function, both used before
    sounding.reset(), record their runs after it in the new registry, and the old registry's
    series gets nothing more."""

    @track_execution_time("t.fast.decorated")
    def work() -> None:
        clock.advance(0.002)

    with capture(clock):
        with PerformanceTimer("t.fast.block"):
            clock.advance(0.001)
        work()
    old = metrics.get_registry()
    old_hist = old.get(metrics.MetricType.HISTOGRAM, "t.fast.block.duration", "ms", "")
    old_cell = next(iter(old_hist._cells.values()))
    before = len(old_cell.buf) + old_cell.sketch.count
    sounding.reset()
    with capture(clock) as sink:
        for _ in range(3):
            with PerformanceTimer("t.fast.block"):
                clock.advance(0.001)
            work()
        assert _ok_count(sink, "t.fast.block.duration") == 3
        assert _ok_count(sink, "t.fast.decorated.duration") == 3
    assert metrics.get_registry() is not old
    assert len(old_cell.buf) + old_cell.sketch.count == before


def test_a_boundary_block_after_a_reset_records_in_the_new_registry(clock: ManualClock) -> None:
    """``with operation_boundary("op"):`` used before sounding.reset() counts its attempts
    and durations in the new registry after it."""
    with capture(clock), operation_boundary("t.fast.boundary"):
        clock.advance(0.001)
    sounding.reset()
    with capture(clock) as sink:
        for _ in range(2):
            with operation_boundary("t.fast.boundary"):
                clock.advance(0.001)
        sounding.flush()
        assert sink.total("t.fast.boundary.attempts") == 2
        assert _ok_count(sink, "t.fast.boundary.duration") == 2


def test_a_timer_never_entered_reads_as_before(sink: MemorySink) -> None:
    """Before its first run a timer reads 0 ms and no metrics; exited without being entered
    it records a run of 0 ms and raises nothing."""
    timer = PerformanceTimer("t.fast.unentered")
    assert timer.elapsed_ms == 0.0
    assert timer.metrics == {}
    assert "elapsed_ms=0.000" in repr(timer)
    timer.__exit__(None, None, None)
    assert timer.elapsed_ms == 0.0
    sounding.flush()
    aggs = sink.aggregates("t.fast.unentered.duration", {"status": "ok"})
    assert sum(a.count for a in aggs) == 1
    assert max(a.max for a in aggs if a.max is not None) == 0.0


def test_a_timer_run_after_metrics_starts_with_none(sink: MemorySink, clock: ManualClock) -> None:
    """Metrics attached in one run are observed with it and kept for reading, and the next
    run of the same timer starts with none (its end takes the fast path again)."""
    timer = PerformanceTimer("t.fast.metrics")
    with timer:
        timer.add_metric("rows", 3)
        clock.advance(0.001)
    assert timer.metrics == {"rows": 3}
    with timer:
        clock.advance(0.002)
    assert timer.metrics == {}
    assert timer.elapsed_ms == pytest.approx(2.0)
    sounding.flush()
    assert sum(a.count for a in sink.aggregates("t.fast.metrics.rows")) == 1
    assert _ok_count(sink, "t.fast.metrics.duration") == 2


class _JumpClock(ManualClock):
    """A clock whose monotonic time jumps to infinity once ``infinite`` is set."""

    infinite = False

    def monotonic(self) -> float:
        return math.inf if self.infinite else super().monotonic()


def test_an_infinite_duration_is_rejected_not_folded() -> None:
    """A run whose duration is past the largest float (an injected clock) is counted as an
    invalid value, not appended to the series (where it would spoil a whole batch)."""
    clock = _JumpClock()
    with capture(clock) as sink:
        kind = "metrics.invalid_value.t.fast.infinite.duration"
        before = health.counts().get(kind, 0)
        with PerformanceTimer("t.fast.infinite"):
            clock.infinite = True
        clock.infinite = False
        assert health.counts().get(kind, 0) == before + 1
        assert _ok_count(sink, "t.fast.infinite.duration") == 0


def test_boundary_blocks_pair_with_their_starts_across_stale_stacks(
    sink: MemorySink, clock: ManualClock
) -> None:
    """A task created inside a nested block (it inherits that context's stack) runs after
    the blocks around it ended; its own block and a block of the creating context, open at
    the same time, each record their own duration (the exit of the slot's block reads no
    stack while no push is outstanding, and reads its own when one is)."""
    b = operation_boundary("t.fast.stale")

    async def main() -> None:
        release = asyncio.Event()
        opened = asyncio.Event()

        async def late() -> None:
            with b:  # the inherited stack is not empty: pushed, from t=3
                opened.set()
                await release.wait()

        with b:  # the slot, t=0
            with b:  # pushed, t=0
                task = asyncio.create_task(late())
                clock.advance(1)
            clock.advance(2)  # the outer block: 3 s
        await opened.wait()
        with b:  # the slot again, t=3, while the task's push is outstanding
            clock.advance(4)
        release.set()  # the task's block ends at t=7: 4 s
        await task

    asyncio.run(main())
    sounding.flush()
    aggs = sink.aggregates("t.fast.stale.duration", {"status": "ok"})
    assert sum(a.count for a in aggs) == 4
    sketch_total = sum(a.sum for a in aggs)
    assert sketch_total == pytest.approx(1000 + 3000 + 4000 + 4000)
    assert min(a.min for a in aggs if a.min is not None) == pytest.approx(1000)
    assert sink.total("t.fast.stale.attempts") == 4
