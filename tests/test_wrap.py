"""The one sync/async wrapper: the three decorators built on it time async work to completion."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import sounding
from sounding.collection import _wrap
from sounding.collection.boundary import operation_boundary
from sounding.collection.timing import track_execution_time
from sounding.exceptions import InvalidTypeError
from sounding.testing import ManualClock, MemorySink

pytestmark = pytest.mark.usefixtures("strict_mode")


class Upload:
    """An async callable object (``async def __call__``) that takes 0.25 s of clock time."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    async def __call__(self, size: int) -> int:
        await asyncio.sleep(0)
        self.clock.advance(0.25)
        return size


async def _slow(clock: ManualClock, size: int) -> int:
    await asyncio.sleep(0)
    clock.advance(0.25)
    return size


def _run_late(fn: Callable[..., Awaitable[Any]], clock: ManualClock) -> Any:
    """Create the coroutine, let 10 s pass before it starts, then await it."""

    async def main() -> Any:
        coro = fn(3)
        clock.advance(10.0)  # before the coroutine runs: never counted (prometheus #535)
        return await coro

    return asyncio.run(main())


def _targets(clock: ManualClock) -> list[tuple[str, Callable[..., Awaitable[Any]]]]:
    return [
        ("object", Upload(clock)),
        ("partial", functools.partial(_slow, clock)),
    ]


@pytest.mark.parametrize("kind", ["object", "partial"])
def test_is_async_sees_async_callables(kind: str, clock: ManualClock) -> None:
    """Async callable objects and partials of coroutine functions count as async."""
    fn = dict(_targets(clock))[kind]
    assert _wrap.is_async(fn)
    assert not _wrap.is_async(functools.partial(len))
    assert not _wrap.is_async(len)


@pytest.mark.parametrize("kind", ["object", "partial"])
def test_timer_times_async_callables_to_completion(
    kind: str, sink: MemorySink, clock: ManualClock
) -> None:
    """A timer on an async callable returns a coroutine function timed over its await."""
    wrapped = track_execution_time(f"w.timer.{kind}")(dict(_targets(clock))[kind])
    assert inspect.iscoroutinefunction(wrapped)
    assert _run_late(wrapped, clock) == 3
    assert sounding.flush()
    (agg,) = sink.aggregates(f"w.timer.{kind}.duration", {"status": "ok"})
    assert agg.sum == pytest.approx(250.0)


@pytest.mark.parametrize("kind", ["object", "partial"])
def test_boundary_times_async_callables_to_completion(
    kind: str, sink: MemorySink, clock: ManualClock
) -> None:
    """A boundary on an async callable awaits it and times the await."""
    wrapped = operation_boundary(f"w.boundary.{kind}")(dict(_targets(clock))[kind])
    assert inspect.iscoroutinefunction(wrapped)
    assert _run_late(wrapped, clock) == 3
    assert sounding.flush()
    (agg,) = sink.aggregates(f"w.boundary.{kind}.duration", {"status": "ok"})
    assert agg.sum == pytest.approx(250.0)


@pytest.mark.parametrize("kind", ["object", "partial"])
def test_histogram_time_times_async_callables_to_completion(
    kind: str, sink: MemorySink, clock: ManualClock
) -> None:
    """``Histogram.time()`` on an async callable records the awaited time, in its unit."""
    hist = sounding.histogram(f"w.hist.{kind}", unit="ms")
    wrapped = hist.time()(dict(_targets(clock))[kind])
    assert inspect.iscoroutinefunction(wrapped)
    assert _run_late(wrapped, clock) == 3
    assert sounding.flush()
    (agg,) = sink.aggregates(f"w.hist.{kind}")
    assert agg.count == 1
    assert agg.sum == pytest.approx(250.0)


def test_histogram_time_records_a_failed_call(sink: MemorySink, clock: ManualClock) -> None:
    """A call that raises is still observed by ``Histogram.time()`` and the error passes."""
    hist = sounding.histogram("w.hist.fail", unit="s")

    @hist.time()
    def boom() -> None:
        clock.advance(2.0)
        raise KeyError("k")

    with pytest.raises(KeyError):
        boom()
    assert sounding.flush()
    (agg,) = sink.aggregates("w.hist.fail")
    assert agg.sum == pytest.approx(2.0)


def test_backwards_clock_never_gives_a_negative_duration(
    sink: MemorySink, clock: ManualClock
) -> None:
    """A clock that steps back during a call records 0, not a negative duration."""
    hist = sounding.histogram("w.hist.back", unit="ms")
    seen: list[float] = []

    @hist.time()
    def back() -> None:
        clock.advance(-5.0)

    back()
    wrapped = _wrap.timed(lambda: clock.advance(-1.0), seen.append, lambda s, e: None)
    wrapped()
    assert seen == [0.0]
    assert sounding.flush()
    (agg,) = sink.aggregates("w.hist.back")
    assert agg.max == 0.0


@pytest.mark.parametrize("decorate", ["timer", "boundary", "histogram"])
def test_generators_refused_by_all_three(decorate: str) -> None:
    """Each decorator refuses a generator function with the same InvalidTypeError."""

    def gen() -> Any:
        yield 1

    deco: Callable[[Any], Any] = {
        "timer": track_execution_time("w.gen"),
        "boundary": operation_boundary("w.gen"),
        "histogram": sounding.histogram("w.gen.h").time(),
    }[decorate]
    with pytest.raises(InvalidTypeError, match="generator"):
        deco(gen)
