"""Timing: the decorator and PerformanceTimer, sync and async, thresholds, exceptions."""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Iterator
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sounding
from sounding.collection.metrics import reset_registry
from sounding.collection.timing import (
    PerformanceTimer,
    operation_name_for,
    track_execution_time,
)
from sounding.core import health
from sounding.core.clock import set_clock
from sounding.core.types import Event
from sounding.exceptions import (
    InternalError,
    InvalidNameError,
    InvalidTypeError,
    InvalidValueError,
    MetricTypeConflictError,
)
from sounding.testing import ManualClock, MemorySink, capture, strict

# Run-time failures raise in these tests (conftest resets state around each test).
pytestmark = pytest.mark.usefixtures("strict_mode")


def flush_events(sink: MemorySink) -> list[Event]:
    assert sounding.flush()
    return [e for e in sink.events if e["category"] != "session"]


# -- the decorator, sync ------------------------------------------------------------------------


def test_sync_duration_in_ms_with_status_ok(sink: MemorySink, clock: ManualClock) -> None:
    """A call is observed in <operation>.duration (ms) tagged status=ok."""

    @track_execution_time("recorder.export")
    def export(seconds: float) -> str:
        clock.advance(seconds)
        return "done"

    assert export(0.125) == "done"
    assert export(0.375) == "done"
    assert sounding.flush()
    (agg,) = sink.aggregates("recorder.export.duration", {"status": "ok"})
    assert agg.unit == "ms"
    assert agg.count == 2
    assert agg.sum == pytest.approx(500.0)
    assert agg.max == pytest.approx(375.0, rel=0.01)


def test_bare_decorator_and_default_name(sink: MemorySink, clock: ManualClock) -> None:
    """@track_execution_time without parentheses names the operation module.qualname."""

    @track_execution_time
    def load() -> int:
        clock.advance(0.01)
        return 7

    assert load() == 7
    assert load.__name__ == "load"
    assert sounding.flush()
    name = operation_name_for(load.__wrapped__)  # type: ignore[attr-defined]
    assert name.endswith("test_timing.test_bare_decorator_and_default_name.locals.load")
    assert sink.count(name + ".duration") == 1


@pytest.mark.parametrize(
    ("module", "qualname", "expected"),
    [
        ("app.jobs", "Exporter.run", "app.jobs.Exporter.run"),
        ("__main__", "main.<locals>.<lambda>", "main.main.locals.lambda"),
        ("", "9lives", "op_9lives"),
        ("pkg", "ünïcode", "pkg.n_code"),
    ],
)
def test_operation_name_normalised(module: str, qualname: str, expected: str) -> None:
    """Default names become valid metric names."""

    def fn() -> None:
        pass

    fn.__module__ = module
    fn.__qualname__ = qualname
    assert operation_name_for(fn) == expected


def test_operation_name_of_a_long_qualname_fits() -> None:
    """Very long default names are shortened to stay a valid metric name with its suffix."""

    def fn() -> None:
        pass

    fn.__qualname__ = ".".join(["part"] * 80)
    name = operation_name_for(fn)
    sounding.histogram(name + ".duration")  # accepted by the metric name rules


# -- exceptions ---------------------------------------------------------------------------------


def test_exception_passes_through_untouched(sink: MemorySink, clock: ManualClock) -> None:
    """The same exception object propagates with its traceback; the metric says error."""
    error = ValueError("cannot export bob@example.com")

    @track_execution_time("recorder.export")
    def export() -> None:
        clock.advance(0.05)
        raise error

    with pytest.raises(ValueError, match="cannot export") as caught:
        export()
    assert caught.value is error
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-1] == "export"
    assert sounding.flush()
    (agg,) = sink.aggregates("recorder.export.duration", {"status": "error"})
    assert dict(agg.tags)["exc_type"] == "ValueError"
    assert agg.sum == pytest.approx(50.0)
    assert "bob" not in repr(agg.tags)


def test_base_exceptions_are_recorded_and_reraised(sink: MemorySink) -> None:
    """KeyboardInterrupt and friends are tagged too, and still propagate."""

    @track_execution_time("app.loop")
    def loop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop()
    assert sounding.flush()
    assert sink.count("app.loop.duration", {"exc_type": "KeyboardInterrupt"}) == 1


# -- the decorator, async -----------------------------------------------------------------------


def test_async_times_the_await_not_the_call(sink: MemorySink, clock: ManualClock) -> None:
    """Time spent before the coroutine runs is excluded; time inside the await counts."""

    @track_execution_time("net.upload")
    async def upload() -> str:
        await asyncio.sleep(0)
        clock.advance(0.25)
        return "ok"

    assert inspect.iscoroutinefunction(upload)

    async def main() -> str:
        coro = upload()  # created, not started
        clock.advance(10.0)  # must not be counted (prometheus_client issue 535)
        return await coro

    assert asyncio.run(main()) == "ok"
    assert sounding.flush()
    (agg,) = sink.aggregates("net.upload.duration", {"status": "ok"})
    assert agg.sum == pytest.approx(250.0)


def test_async_exception_untouched_and_tagged(sink: MemorySink, clock: ManualClock) -> None:
    """An exception from a coroutine passes through as is and is tagged by type."""
    error = TimeoutError("slow server")

    @track_execution_time("net.upload")
    async def upload() -> None:
        clock.advance(0.1)
        raise error

    async def main() -> None:
        await upload()

    with pytest.raises(TimeoutError) as caught:
        asyncio.run(main())
    assert caught.value is error
    assert sounding.flush()
    assert sink.count("net.upload.duration", {"status": "error", "exc_type": "TimeoutError"}) == 1


def test_async_cancellation_is_recorded(sink: MemorySink) -> None:
    """A cancelled coroutine is recorded as an error of type CancelledError and re-raised."""

    @track_execution_time("net.wait")
    async def wait() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.create_task(wait())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert sounding.flush()
    assert sink.count("net.wait.duration", {"exc_type": "CancelledError"}) == 1


def test_concurrent_async_calls_time_separately(sink: MemorySink, clock: ManualClock) -> None:
    """Several awaits of one decorated coroutine function in gather() are timed apart."""

    @track_execution_time("job.step")
    async def step(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def main() -> list[int]:
        return list(await asyncio.gather(*(step(i) for i in range(5))))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert sounding.flush()
    assert sink.count("job.step.duration") == 5


# -- thresholds and log_result ------------------------------------------------------------------


def test_threshold_breach_warns_and_counts(sink: MemorySink, clock: ManualClock) -> None:
    """Over threshold: a warning event <op>.slow and the counter <op>.slow; under: nothing."""

    @track_execution_time("db.query", threshold_ms=100)
    def query(seconds: float) -> None:
        clock.advance(seconds)

    query(0.05)
    query(0.0999)
    query(0.25)
    events = flush_events(sink)
    assert sink.total("db.query.slow") == 1
    (event,) = events
    assert event["event"] == "db.query.slow"
    assert event["level"] == "warning"
    assert event["category"] == "performance"
    assert event["duration_ms"] == pytest.approx(250.0)
    assert event["threshold_ms"] == 100.0
    assert event["status"] == "ok"


def test_threshold_on_error_run(sink: MemorySink, clock: ManualClock) -> None:
    """A slow run that raised is reported slow with its exception type."""

    @track_execution_time("db.query", threshold_ms=1)
    def query() -> None:
        clock.advance(0.01)
        raise OSError("disk")

    with pytest.raises(OSError, match="disk"):
        query()
    (event,) = flush_events(sink)
    assert (event["status"], event["exc_type"]) == ("error", "OSError")


def test_log_result_records_duration_only(sink: MemorySink, clock: ManualClock) -> None:
    """log_result=True logs <op>.completed with the duration, never arguments or results."""

    @track_execution_time("report.build", log_result=True)
    def build(owner: str) -> dict[str, str]:
        clock.advance(0.02)
        return {"owner": owner}

    build("alice-secret-value")
    (event,) = flush_events(sink)
    assert event["event"] == "report.build.completed"
    assert event["level"] == "info"
    assert event["duration_ms"] == pytest.approx(20.0)
    assert event["status"] == "ok"
    assert "alice-secret-value" not in repr(event)


# -- definition-time errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"operation_name": 12}, InvalidTypeError),
        ({"operation_name": "has spaces"}, InvalidNameError),
        ({"operation_name": "9starts.with.digit"}, InvalidNameError),
        ({"operation_name": "x" * 200}, InvalidNameError),
        ({"threshold_ms": -1}, InvalidValueError),
        ({"threshold_ms": float("nan")}, InvalidValueError),
        ({"threshold_ms": "100"}, InvalidTypeError),
        ({"threshold_ms": True}, InvalidTypeError),
        ({"log_result": "yes"}, InvalidTypeError),
    ],
)
def test_bad_arguments_raise_at_decoration(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Misuse raises at once, naming the argument."""
    with pytest.raises(error) as caught:
        track_execution_time(**kwargs)
    assert next(iter(kwargs)) in str(caught.value)


def test_generator_functions_are_rejected() -> None:
    """Decorating a generator function raises: only its creation would be timed."""

    def gen() -> Iterator[int]:
        yield 1

    async def agen() -> Any:
        yield 1

    with pytest.raises(InvalidTypeError):
        track_execution_time("x.gen")(gen)
    with pytest.raises(InvalidTypeError):
        track_execution_time(agen)


def test_decorator_survives_registry_reset(clock: ManualClock) -> None:
    """A function decorated at import keeps recording after the registry is replaced."""

    @track_execution_time("app.survivor")
    def work() -> None:
        clock.advance(0.001)

    reset_registry()
    with capture(clock) as sink:
        work()
        assert sounding.flush()
        assert sink.count("app.survivor.duration") == 1


# -- PerformanceTimer ---------------------------------------------------------------------------


def test_timer_context_manager(sink: MemorySink, clock: ManualClock) -> None:
    """A with-block is observed with its tags; elapsed_ms is live inside and final after."""
    with PerformanceTimer("audio.process", tags={"format": "wav"}) as timer:
        assert timer.elapsed_ms == 0.0
        clock.advance(0.03)
        assert timer.elapsed_ms == pytest.approx(30.0)
        timer.add_metric("samples", 44100)
    clock.advance(1.0)
    assert timer.elapsed_ms == pytest.approx(30.0)
    assert timer.metrics == {"samples": 44100}
    assert sounding.flush()
    (agg,) = sink.aggregates("audio.process.duration", {"format": "wav", "status": "ok"})
    assert agg.sum == pytest.approx(30.0)
    assert sink.total("audio.process.samples", {"format": "wav"}) == 44100


def test_timer_async_context_manager(sink: MemorySink, clock: ManualClock) -> None:
    """async with times the awaited block."""

    async def main() -> PerformanceTimer:
        async with PerformanceTimer("net.fetch", threshold_ms=10) as timer:
            await asyncio.sleep(0)
            clock.advance(0.02)
        return timer

    timer = asyncio.run(main())
    assert timer.elapsed_ms == pytest.approx(20.0)
    events = flush_events(sink)
    assert [e["event"] for e in events] == ["net.fetch.slow"]
    assert sink.count("net.fetch.duration", {"status": "ok"}) == 1


def test_timer_exception_passes_through(sink: MemorySink, clock: ManualClock) -> None:
    """The block's exception is not suppressed and is tagged by type."""
    error = RuntimeError("boom")

    def block() -> None:
        with PerformanceTimer("audio.process"):
            clock.advance(0.001)
            raise error

    with pytest.raises(RuntimeError) as caught:
        block()
    assert caught.value is error
    assert sounding.flush()
    assert sink.count("audio.process.duration", {"exc_type": "RuntimeError"}) == 1


def test_timer_as_decorator(sink: MemorySink, clock: ManualClock) -> None:
    """PerformanceTimer(...) decorates a function; each call is timed."""

    @PerformanceTimer("audio.encode", tags={"codec": "flac"})
    def encode() -> None:
        clock.advance(0.004)

    encode()
    encode()
    assert sounding.flush()
    assert sink.count("audio.encode.duration", {"codec": "flac", "status": "ok"}) == 2


def test_timer_reuse_resets_metrics(sink: MemorySink, clock: ManualClock) -> None:
    """Entering again starts a new run: elapsed and metrics restart."""
    timer = PerformanceTimer("audio.process")
    with timer:
        timer.add_metric("frames", 1)
        clock.advance(0.5)
    with timer:
        clock.advance(0.1)
    assert timer.metrics == {}
    assert timer.elapsed_ms == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("bad name", 1), ("ok", "1"), ("ok", float("inf")), ("ok", True), (3, 1)],
)
def test_add_metric_misuse_is_counted(name: Any, value: Any) -> None:
    """A bad metric name or value at run time is counted and skipped (raised if strict)."""
    with strict(False), PerformanceTimer("audio.process") as timer:
        timer.add_metric(name, value)
    assert timer.metrics == {}
    assert health.counts()["timing.add_metric"] == 1
    with pytest.raises(InternalError), PerformanceTimer("audio.process") as timer:
        timer.add_metric(name, value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "bad name"}, InvalidNameError),
        ({"name": None}, InvalidTypeError),
        ({"name": "ok", "threshold_ms": -5}, InvalidValueError),
        ({"name": "ok", "tags": ["format"]}, InvalidTypeError),
        ({"name": "ok", "tags": {"status": "mine"}}, InvalidValueError),
        ({"name": "ok", "tags": {"bad key!": "x"}}, InvalidNameError),
        ({"name": "ok", "log_result": 1}, InvalidTypeError),
    ],
)
def test_timer_bad_arguments_raise(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Invalid timer arguments raise at construction."""
    with pytest.raises(error):
        PerformanceTimer(**kwargs)


def test_timer_clamps_a_clock_going_backwards(sink: MemorySink) -> None:
    """A monotonic reading that goes backwards gives 0 ms, never a negative duration."""

    class Backwards:
        def __init__(self) -> None:
            self.mono = 500.0

        def time(self) -> float:
            return 1_767_225_600.0

        def monotonic(self) -> float:
            self.mono -= 1.0
            return self.mono

    set_clock(Backwards())
    with PerformanceTimer("audio.process") as timer:
        pass
    assert timer.elapsed_ms == 0.0

    @track_execution_time("audio.backwards")
    def work() -> None:
        pass

    work()
    assert sounding.flush()
    (agg,) = sink.aggregates("audio.backwards.duration")
    assert agg.min == 0.0
    assert timer.name == "audio.process"
    assert timer.threshold_ms is None


_EXCEPTIONS = [
    ValueError,
    KeyError,
    OSError,
    TimeoutError,
    RuntimeError,
    ZeroDivisionError,
    UnicodeError,
    SystemExit,
    KeyboardInterrupt,
]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exc_type=st.sampled_from(_EXCEPTIONS), message=st.text(max_size=30))
def test_any_exception_passes_through_unchanged(
    exc_type: type[BaseException], message: str, sink: MemorySink
) -> None:
    """Whatever a timed function raises comes out as the very same object, and is tagged."""
    error = exc_type(message)

    @track_execution_time("prop.raise")
    def sync() -> None:
        raise error

    @track_execution_time("prop.araise")
    async def coro() -> None:
        raise error

    for call in (sync, lambda: asyncio.run(coro())):
        with pytest.raises(exc_type) as caught:
            call()
        assert caught.value is error
    assert sounding.flush()
    assert sink.count("prop.raise.duration", {"exc_type": exc_type.__name__}) >= 1
    assert sink.count("prop.araise.duration", {"exc_type": exc_type.__name__}) >= 1


# -- command-line applications ------------------------------------------------------------


@pytest.mark.parametrize("code", [0, None])
def test_exit_with_code_zero_is_a_successful_run(sink: MemorySink, code: object) -> None:
    """A timed command that ends with SystemExit(0) is status=ok, not an error."""

    @track_execution_time(operation_name="cli.run")
    def main() -> None:
        raise SystemExit(code)

    with pytest.raises(SystemExit):
        main()
    assert sounding.flush()
    assert sink.count("cli.run.duration", {"status": "ok"}) == 1
    assert sink.count("cli.run.duration", {"status": "error"}) == 0


def test_exit_with_an_error_code_is_an_error(sink: MemorySink) -> None:
    """SystemExit(1) is still an error run, tagged with its type."""
    with pytest.raises(SystemExit), PerformanceTimer("cli.fail"):
        raise SystemExit(1)
    assert sounding.flush()
    assert sink.count("cli.fail.duration", {"status": "error", "exc_type": "SystemExit"}) == 1


def test_click_exit_and_usage_error(sink: MemorySink) -> None:
    """click's Exit(0) is ok, a click.UsageError is status=user_error (not a bug)."""
    with pytest.raises(click.exceptions.Exit), PerformanceTimer("cli.click"):
        raise click.exceptions.Exit(0)
    with pytest.raises(click.UsageError), PerformanceTimer("cli.click"):
        raise click.UsageError("missing argument PATH")
    assert sounding.flush()
    assert sink.count("cli.click.duration", {"status": "ok"}) == 1
    assert sink.count("cli.click.duration", {"status": "user_error", "exc_type": "UsageError"}) == 1


def test_ok_exceptions_and_classify_on_timers(sink: MemorySink) -> None:
    """ok_exceptions and classify say which exceptions are not failures of the timed code."""

    class Cancelled(Exception):
        pass

    @track_execution_time("cli.ok", ok_exceptions=(Cancelled,))
    def cancelled() -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        cancelled()
    timer = PerformanceTimer(
        "cli.cls", classify=lambda e: "user_error" if isinstance(e, KeyError) else None
    )
    with pytest.raises(KeyError), timer:
        raise KeyError("no such profile")
    with pytest.raises(ValueError, match="bug"), timer:
        raise ValueError("bug")
    assert sounding.flush()
    assert sink.count("cli.ok.duration", {"status": "ok"}) == 1
    assert sink.count("cli.cls.duration", {"status": "user_error"}) == 1
    assert sink.count("cli.cls.duration", {"status": "error"}) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"ok_exceptions": "Exit"}, InvalidTypeError), ({"classify": "loose"}, InvalidTypeError)],
)
def test_outcome_settings_checked_at_definition(kwargs: dict[str, Any], error: type) -> None:
    """Bad ok_exceptions or classify raise when the timer is defined."""
    with pytest.raises(error):
        track_execution_time("cli.bad", **kwargs)
    with pytest.raises(error):
        PerformanceTimer("cli.bad", **kwargs)


# -- metric name clashes ------------------------------------------------------------------


def test_declared_metric_clashing_with_a_counter_fails_at_definition() -> None:
    """PerformanceTimer(metrics=("rows",)) against an existing counter "<timer>.rows" raises."""
    sounding.counter("import.rows").inc()
    with pytest.raises(MetricTypeConflictError, match=r"'import\.rows' is not already a counter"):
        PerformanceTimer("import", metrics=("rows",))


def test_declared_metrics_are_recorded(sink: MemorySink) -> None:
    """Declared metrics are ordinary add_metric names: observed when the block ends."""
    with PerformanceTimer("import.ok", metrics=("rows",)) as timer:
        timer.add_metric("rows", 120)
    assert sounding.flush()
    assert sink.total("import.ok.rows") == 120


def test_add_metric_clash_is_reported_when_added_not_at_the_end() -> None:
    """An undeclared clashing add_metric fails at the add_metric call (strict mode raises)."""
    sounding.counter("load.rows").inc()
    with PerformanceTimer("load") as timer:
        with pytest.raises(InternalError):
            timer.add_metric("rows", 3)
        assert timer.metrics == {}


def test_declared_metric_names_must_be_names() -> None:
    """metrics= must be a tuple of valid names."""
    with pytest.raises(InvalidTypeError):
        PerformanceTimer("import.bad", metrics="rows")  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError):
        PerformanceTimer("import.bad", metrics=("no spaces",))


def test_timer_unknown_keyword_raises_naming_it() -> None:
    """PerformanceTimer("op", threshold=5) raises InvalidTypeError naming 'threshold'."""
    with pytest.raises(InvalidTypeError, match="threshold"):
        PerformanceTimer("t.unknown_kw", threshold=5)  # type: ignore[call-overload]


def test_timer_made_per_call_keeps_its_own_run(sink: MemorySink) -> None:
    """Timers made per call with the same name share settings, not elapsed time or metrics."""
    clock = set_clock(None)
    manual = ManualClock()
    set_clock(manual)
    try:
        with PerformanceTimer("t.per_call") as first:
            manual.advance(0.5)
            first.add_metric("rows", 3)
        with PerformanceTimer("t.per_call") as second:
            manual.advance(0.25)
        sounding.flush()
    finally:
        set_clock(clock)
    assert first.elapsed_ms == pytest.approx(500.0)
    assert second.elapsed_ms == pytest.approx(250.0)
    assert first.metrics == {"rows": 3}
    assert second.metrics == {}
    assert sink.count("t.per_call.duration", {"status": "ok"}) == 2


def test_threshold_timer_after_registry_reset_still_reports_slow_runs(clock: ManualClock) -> None:
    """A timer with a threshold, made per call across a registry reset, still counts slow runs."""

    @track_execution_time("app.slow_after_reset", threshold_ms=100)
    def work() -> None:
        clock.advance(0.5)

    with PerformanceTimer("app.block_after_reset", threshold_ms=100):
        clock.advance(0.01)
    reset_registry()  # the registry is None until its next use
    with capture(clock) as sink:
        with PerformanceTimer("app.block_after_reset", threshold_ms=100):
            clock.advance(0.5)
        work()
        assert sounding.flush()
        assert sink.total("app.block_after_reset.slow") == 1
        assert sink.total("app.slow_after_reset.slow") == 1
