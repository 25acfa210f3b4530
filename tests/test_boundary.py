"""operation_boundary: retry, backoff, fallback, metrics and events; severity classification."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sounding
from sounding.collection import boundary
from sounding.collection.boundary import (
    backoff_delay,
    classify_exception,
    operation_boundary,
    set_severity,
    set_severity_classifier,
)
from sounding.core.types import ErrorSeverity
from sounding.exceptions import InvalidNameError, InvalidTypeError, InvalidValueError
from sounding.testing import ManualClock, MemorySink, capture


@pytest.fixture(autouse=True)
def _restore_severities() -> Iterator[None]:
    yield
    boundary.reset_severities()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the delays instead of sleeping (sync and async seams)."""
    slept: list[float] = []

    async def fake_async_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(boundary, "sleep", slept.append)
    monkeypatch.setattr(boundary, "async_sleep", fake_async_sleep)
    return slept


@pytest.fixture
def sink() -> Iterator[MemorySink]:
    """Everything recorded goes to a memory sink on flush."""
    with capture() as s:
        yield s


class Flaky:
    """Fails ``failures`` times with ``exc`` then returns its argument."""

    def __init__(self, failures: int, exc: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self, value: Any = "ok") -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls} for alice@example.com")
        return value


# -- success path -------------------------------------------------------------------------


def test_success_returns_value_and_records_one_attempt(sink: MemorySink) -> None:
    """A call that succeeds returns its value; one attempt and an ok duration are recorded."""
    fn = operation_boundary("t.ok")(lambda x: x * 2)
    assert fn(21) == 42
    sounding.flush()
    assert sink.total("t.ok.attempts") == 1
    assert sink.count("t.ok.duration", {"status": "ok"}) == 1
    assert sink.total("t.ok.retries") == 0
    assert sink.find_events("operation.failed") == []


def test_wraps_keeps_metadata() -> None:
    """The wrapper keeps the function's name and docstring."""

    @operation_boundary("t.meta")
    def documented() -> None:
        """Docs."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docs."


def test_duration_uses_injected_clock(sink: MemorySink) -> None:
    """Durations come from the configured clock, in milliseconds."""
    clock = ManualClock()
    sounding.core.clock.set_clock(clock)

    @operation_boundary("t.slow")
    def slow() -> None:
        clock.advance(0.25)

    slow()
    sounding.flush()
    [agg] = sink.aggregates("t.slow.duration", {"status": "ok"})
    assert agg.sum == pytest.approx(250.0)


def test_bare_decorator_names_operation_after_function(sink: MemorySink) -> None:
    """``@operation_boundary`` without arguments names the metrics module.qualname."""

    @operation_boundary
    def plain() -> int:
        return 7

    assert plain() == 7
    sounding.flush()
    names = {a.name for a in sink.metrics}
    assert any(
        n.endswith("test_bare_decorator_names_operation_after_function.locals.plain.attempts")
        for n in names
    ), names


# -- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [0, 1, 2, 3])
def test_retries_until_success(failures: int, sleeps: list[float], sink: MemorySink) -> None:
    """A call that fails fewer than max_retries+1 times succeeds after that many retries."""
    flaky = Flaky(failures)
    fn = operation_boundary("t.retry", retry_on_failure=True, max_retries=3)(flaky)
    assert fn("v") == "v"
    assert flaky.calls == failures + 1
    assert len(sleeps) == failures
    sounding.flush()
    assert sink.total("t.retry.attempts") == failures + 1
    assert sink.total("t.retry.retries") == failures
    assert sink.count("t.retry.duration", {"status": "ok"}) == 1
    assert len(sink.find_events("operation.retry")) == failures


def test_max_retries_counts_retries_after_first_call(sleeps: list[float]) -> None:
    """max_retries=2 means three calls in all; then the original exception is raised."""
    flaky = Flaky(10)
    fn = operation_boundary("t.max", retry_on_failure=True, max_retries=2)(flaky)
    with pytest.raises(ConnectionError) as info:
        fn()
    assert flaky.calls == 3
    assert len(sleeps) == 2
    # The exception of the last attempt, unwrapped.
    assert str(info.value) == "failure 3 for alice@example.com"
    assert type(info.value) is ConnectionError


def test_only_retry_exceptions_are_retried(sleeps: list[float], sink: MemorySink) -> None:
    """An exception outside retry_exceptions fails at once, without retry."""
    flaky = Flaky(5, exc=ValueError)
    fn = operation_boundary("t.only", retry_on_failure=True, retry_exceptions=(OSError,))(flaky)
    with pytest.raises(ValueError, match="failure 1"):
        fn()
    assert flaky.calls == 1
    assert sleeps == []
    sounding.flush()
    assert sink.total("t.only.failures", {"exc_type": "ValueError"}) == 1


def test_retry_exceptions_accepts_single_class(sleeps: list[float]) -> None:
    """retry_exceptions may be one class; subclasses of it are retried."""
    flaky = Flaky(1, exc=ConnectionRefusedError)
    fn = operation_boundary("t.single", retry_on_failure=True, retry_exceptions=OSError)(flaky)
    assert fn() == "ok"
    assert flaky.calls == 2


def test_no_retry_without_retry_on_failure(sleeps: list[float]) -> None:
    """Without retry_on_failure a failure is final on the first call."""
    flaky = Flaky(1)
    fn = operation_boundary("t.noretry", max_retries=5)(flaky)
    with pytest.raises(ConnectionError):
        fn()
    assert flaky.calls == 1
    assert sleeps == []


def test_backoff_schedule_without_jitter(sleeps: list[float]) -> None:
    """Delays grow by retry_backoff from retry_delay and stop at max_delay."""
    fn = operation_boundary(
        "t.sched",
        retry_on_failure=True,
        max_retries=5,
        retry_delay=0.5,
        retry_backoff=3.0,
        max_delay=5.0,
        jitter=False,
    )(Flaky(10))
    with pytest.raises(ConnectionError):
        fn()
    assert sleeps == [0.5, 1.5, 4.5, 5.0, 5.0]


def test_full_jitter_draws_below_cap(sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    """With jitter each delay is cap * random(), the random source being the seam."""
    draws = iter([0.0, 0.5, 0.999])
    monkeypatch.setattr(boundary, "random", lambda: next(draws))
    fn = operation_boundary("t.jitter", retry_on_failure=True, max_retries=3, retry_delay=2.0)(
        Flaky(10)
    )
    with pytest.raises(ConnectionError):
        fn()
    assert sleeps == pytest.approx([0.0, 2.0, 0.999 * 8.0])


@given(
    retry=st.integers(1, 200),
    delay=st.floats(0, 100),
    factor=st.floats(1, 100),
    cap=st.floats(0, 1000),
    u=st.floats(0, 1, exclude_max=True),
)
def test_backoff_delay_is_bounded(
    retry: int, delay: float, factor: float, cap: float, u: float
) -> None:
    """Every delay lies in [0, max_delay], never overflows, for any settings."""
    d = backoff_delay(retry, retry_delay=delay, retry_backoff=factor, max_delay=cap, draw=lambda: u)
    assert 0.0 <= d <= cap


def test_broken_random_source_is_clamped() -> None:
    """A random source outside [0, 1) cannot make a negative or huge delay."""
    d = backoff_delay(1, retry_delay=4.0, retry_backoff=2.0, max_delay=10.0, draw=lambda: 7.0)
    assert d == 2.0


def test_retry_events_never_record_arguments(sleeps: list[float], sink: MemorySink) -> None:
    """Retry events name the operation, attempt, delay and type, never argument values."""
    fn = operation_boundary("t.args", retry_on_failure=True)(Flaky(1))
    fn("secret-argument-value")
    sounding.flush()
    [event] = sink.find_events("operation.retry")
    assert event["operation"] == "t.args"
    assert event["attempt"] == 1
    assert event["exc_type"] == "ConnectionError"
    assert "secret-argument-value" not in repr(sink.events)
    assert "alice@example.com" not in repr(event)


# -- final failure, fallback ----------------------------------------------------------------


def test_failure_records_type_not_message(sink: MemorySink) -> None:
    """A failure is counted by exception type; the event's message is scrubbed."""
    fn = operation_boundary("t.fail")(Flaky(1, exc=KeyError))
    with pytest.raises(KeyError):
        fn()
    sounding.flush()
    assert sink.total("t.fail.failures", {"exc_type": "KeyError"}) == 1
    assert sink.count("t.fail.duration", {"status": "error"}) == 1
    for agg in sink.metrics:
        assert "alice" not in repr(agg.tags)
    [event] = sink.find_events("operation.failed")
    assert event["exc_type"] == "KeyError"
    assert event["outcome"] == "error"
    assert event["severity"] == "medium"
    assert "alice@example.com" not in event["message"]
    assert event["stack"][-1]["function"] == "__call__"


@pytest.mark.parametrize("fallback", [None, 0, [], "default"])
def test_fallback_value_returned_when_reraise_false(fallback: Any, sink: MemorySink) -> None:
    """With reraise=False the fallback value is returned and counted."""
    fn = operation_boundary("t.fb", fallback_value=fallback, reraise=False)(Flaky(1))
    assert fn() == fallback
    sounding.flush()
    assert sink.total("t.fb.fallbacks") == 1
    assert sink.count("t.fb.duration", {"status": "fallback"}) == 1
    [event] = sink.find_events("operation.failed")
    assert event["outcome"] == "fallback"


def test_fallback_value_alone_implies_no_reraise() -> None:
    """Passing fallback_value is asking for it: the call returns it."""
    fn = operation_boundary("t.implied", fallback_value=-1)(Flaky(1))
    assert fn() == -1


def test_reraise_false_without_fallback_returns_none() -> None:
    """reraise=False without a fallback value returns None (the seed's default)."""
    assert operation_boundary("t.none", reraise=False)(Flaky(1))() is None


def test_fallback_after_exhausting_retries(sleeps: list[float], sink: MemorySink) -> None:
    """Retries come first; the fallback is returned only after the last one failed."""
    flaky = Flaky(10)
    fn = operation_boundary("t.fbr", retry_on_failure=True, max_retries=2, fallback_value="cached")(
        flaky
    )
    assert fn() == "cached"
    assert flaky.calls == 3
    sounding.flush()
    assert sink.total("t.fbr.attempts") == 3
    assert sink.total("t.fbr.retries") == 2
    assert sink.total("t.fbr.failures", {"exc_type": "ConnectionError"}) == 1
    assert sink.total("t.fbr.fallbacks") == 1


def test_base_exceptions_pass_through(sink: MemorySink) -> None:
    """KeyboardInterrupt is neither retried nor turned into a fallback."""

    def interrupted() -> None:
        raise KeyboardInterrupt

    fn = operation_boundary("t.kbd", retry_on_failure=True, fallback_value=1)(interrupted)
    with pytest.raises(KeyboardInterrupt):
        fn()
    sounding.flush()
    assert sink.count("t.kbd.duration", {"status": "cancelled"}) == 1
    assert sink.total("t.kbd.retries") == 0


def test_nested_boundaries_report_an_exception_once(sink: MemorySink) -> None:
    """An exception crossing two boundaries gives one error event but both failure counts."""
    inner = operation_boundary("t.inner")(Flaky(1, exc=ValueError))
    outer = operation_boundary("t.outer", fallback_value=None)(lambda: inner())
    assert outer() is None
    sounding.flush()
    assert len(sink.find_events("operation.failed")) == 1
    assert sink.total("t.inner.failures") == 1
    assert sink.total("t.outer.failures") == 1


def test_severity_argument_sets_event_level(sink: MemorySink) -> None:
    """A fixed severity overrides the classification, and sets the event's level."""
    fn = operation_boundary("t.sev", severity="critical", fallback_value=0)(Flaky(1))
    fn()
    sounding.flush()
    [event] = sink.find_events("operation.failed")
    assert event["severity"] == "critical"
    assert event["level"] == "critical"


def test_internal_recording_failure_never_reaches_caller(
    monkeypatch: pytest.MonkeyPatch, sink: MemorySink
) -> None:
    """If recording the failure breaks, the caller still gets the fallback (and it is counted)."""
    from sounding.collection import errors
    from sounding.core import health

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("recorder broken")

    monkeypatch.setattr(errors, "record_error", broken)
    fn = operation_boundary("t.broken", fallback_value="safe")(Flaky(1))
    assert fn() == "safe"
    assert health.counts().get("boundary.record") == 1


# -- async ---------------------------------------------------------------------------------


def test_async_success_and_retry(sleeps: list[float], sink: MemorySink) -> None:
    """Coroutine functions are awaited and retried with the async sleep seam."""
    calls = 0

    @operation_boundary("t.async", retry_on_failure=True, max_retries=2)
    async def fetch(x: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls < 3:
            raise TimeoutError("slow")
        return x

    assert asyncio.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(5)) == 5
    assert calls == 3
    assert len(sleeps) == 2
    sounding.flush()
    assert sink.total("t.async.attempts") == 3
    assert sink.total("t.async.retries") == 2


def test_async_fallback_and_reraise() -> None:
    """Async boundaries return the fallback or re-raise the original exception."""

    async def boom() -> int:
        raise ValueError("no")

    fb = operation_boundary("t.afb", fallback_value=9)(boom)
    assert asyncio.run(fb()) == 9
    rr = operation_boundary("t.arr")(boom)
    with pytest.raises(ValueError, match="no"):
        asyncio.run(rr())


def test_async_times_the_await(sink: MemorySink) -> None:
    """The duration covers the awaited body, not just creating the coroutine."""
    clock = ManualClock()
    sounding.core.clock.set_clock(clock)

    @operation_boundary("t.await")
    async def work() -> None:
        await asyncio.sleep(0)
        clock.advance(0.1)

    asyncio.run(work())
    sounding.flush()
    [agg] = sink.aggregates("t.await.duration", {"status": "ok"})
    assert agg.sum == pytest.approx(100.0)


def test_async_cancellation_passes_through(sink: MemorySink) -> None:
    """Task cancellation is not retried and is recorded as cancelled."""

    @operation_boundary("t.cancel", retry_on_failure=True)
    async def forever() -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.create_task(forever())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    sounding.flush()
    assert sink.count("t.cancel.duration", {"status": "cancelled"}) == 1


# -- context manager -------------------------------------------------------------------------


def test_context_manager_records_success_and_failure(sink: MemorySink) -> None:
    """As a context manager it records attempts and failures and re-raises by default."""
    with operation_boundary("t.block"):
        pass
    with pytest.raises(OSError, match="disk"), operation_boundary("t.block"):
        raise OSError("disk")
    sounding.flush()
    assert sink.total("t.block.attempts") == 2
    assert sink.total("t.block.failures", {"exc_type": "OSError"}) == 1


def test_context_manager_suppresses_with_reraise_false(sink: MemorySink) -> None:
    """reraise=False suppresses the block's exception."""
    with operation_boundary("t.quiet", reraise=False):
        raise ValueError("ignored")
    sounding.flush()
    assert sink.total("t.quiet.fallbacks") == 1


def test_context_manager_reusable_and_async(sink: MemorySink) -> None:
    """One boundary object can be entered repeatedly, nested, and with ``async with``."""
    b = operation_boundary("t.reuse")
    with b, b:
        pass

    async def main() -> None:
        async with b:
            await asyncio.sleep(0)

    asyncio.run(main())
    sounding.flush()
    assert sink.total("t.reuse.attempts") == 3


def test_context_manager_rejects_retry() -> None:
    """A block cannot be retried: entering a retrying boundary raises at once."""
    with (
        pytest.raises(InvalidValueError, match="retry_on_failure"),
        operation_boundary("t.cmretry", retry_on_failure=True),
    ):
        pass


def test_context_manager_needs_a_name() -> None:
    """Without a name there is nothing to call the metrics."""
    with pytest.raises(InvalidValueError, match="operation_name"), operation_boundary():
        pass


# -- validation at definition time -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_retries": -1}, InvalidValueError, "max_retries"),
        ({"max_retries": 1.5}, InvalidTypeError, "max_retries"),
        ({"max_retries": True}, InvalidTypeError, "max_retries"),
        ({"retry_delay": -0.1}, InvalidValueError, "retry_delay"),
        ({"retry_delay": float("nan")}, InvalidValueError, "retry_delay"),
        ({"retry_backoff": 0.5}, InvalidValueError, "retry_backoff"),
        ({"max_delay": float("inf")}, InvalidValueError, "max_delay"),
        ({"retry_exceptions": ()}, InvalidValueError, "retry_exceptions"),
        ({"retry_exceptions": (ValueError, "OSError")}, InvalidTypeError, "retry_exceptions"),
        ({"retry_exceptions": KeyboardInterrupt}, InvalidTypeError, "retry_exceptions"),
        ({"retry_on_failure": "yes"}, InvalidTypeError, "retry_on_failure"),
        ({"reraise": 1}, InvalidTypeError, "reraise"),
        ({"reraise": True, "fallback_value": 0}, InvalidValueError, "reraise"),
        ({"severity": "dire"}, InvalidValueError, "severity"),
        ({"jitter": None}, InvalidTypeError, "jitter"),
    ],
)
def test_invalid_settings_raise_at_definition(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Misuse raises when the boundary is defined, naming the argument."""
    with pytest.raises(error, match=match):
        operation_boundary("t.bad", **kwargs)


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a..b", "x" * 300])
def test_invalid_operation_names(name: str) -> None:
    """Operation names follow the metric naming rules."""
    with pytest.raises((InvalidNameError, InvalidValueError)):
        operation_boundary(name)


def test_generator_functions_are_rejected() -> None:
    """A generator function cannot be bounded (only its creation would be)."""

    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(InvalidTypeError, match="generator"):
        operation_boundary("t.gen")(gen)


# -- severity classification ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "severity"),
    [
        (MemoryError(), ErrorSeverity.CRITICAL),
        (RecursionError(), ErrorSeverity.CRITICAL),
        (OSError(), ErrorSeverity.HIGH),
        (FileNotFoundError(), ErrorSeverity.HIGH),
        (ValueError(), ErrorSeverity.MEDIUM),
        (KeyError(), ErrorSeverity.MEDIUM),
        (UnicodeDecodeError("utf-8", b"", 0, 1, "x"), ErrorSeverity.MEDIUM),
        (UserWarning(), ErrorSeverity.LOW),
        (Exception(), ErrorSeverity.HIGH),
    ],
)
def test_default_classification(exc: BaseException, severity: ErrorSeverity) -> None:
    """Exception types map to severities along their MRO."""
    assert classify_exception(exc) is severity


def test_set_severity_overrides_and_restores() -> None:
    """The application can reclassify a type; None restores the inherited severity."""
    set_severity(FileNotFoundError, "low")
    assert classify_exception(FileNotFoundError()) is ErrorSeverity.LOW
    assert classify_exception(PermissionError()) is ErrorSeverity.HIGH
    set_severity(FileNotFoundError, None)
    assert classify_exception(FileNotFoundError()) is ErrorSeverity.HIGH
    with pytest.raises(InvalidTypeError):
        set_severity("OSError", "low")  # type: ignore[arg-type]


def test_classifier_wins_and_broken_classifier_is_contained() -> None:
    """A custom classifier decides first; None defers; one that raises falls back."""
    set_severity_classifier(lambda e: ErrorSeverity.CRITICAL if "db" in str(e) else None)
    assert classify_exception(ValueError("db down")) is ErrorSeverity.CRITICAL
    assert classify_exception(ValueError("other")) is ErrorSeverity.MEDIUM

    def broken(exc: BaseException) -> ErrorSeverity:
        raise RuntimeError("bug")

    set_severity_classifier(broken)
    assert classify_exception(ValueError()) is ErrorSeverity.MEDIUM


def test_severity_maps_to_logging_level(sink: MemorySink) -> None:
    """A MemoryError boundary failure is a critical event; an OSError an error event."""
    operation_boundary("t.mem", fallback_value=0)(Flaky(1, exc=MemoryError))()
    operation_boundary("t.os", fallback_value=0)(Flaky(1, exc=OSError))()
    sounding.flush()
    levels = {e["operation"]: e["level"] for e in sink.find_events("operation.failed")}
    assert levels == {"t.mem": "critical", "t.os": "error"}
    assert ErrorSeverity.CRITICAL.logging_level == logging.CRITICAL


def test_reset_registry_rebinds_instruments() -> None:
    """A boundary defined before sounding.reset() records into the new registry."""
    fn = operation_boundary("t.rebind")(lambda: 1)
    sounding.reset()
    with capture() as s:
        fn()
        sounding.flush()
    assert s.total("t.rebind.attempts") == 1


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        ("__main__", "f"),
        ("2fa.tools", "check"),
        ("pkg", "Outer.<locals>.inner"),
        ("pkg", "café"),
        ("p" * 150, "q" * 150),
    ],
)
def test_default_names_are_valid_metric_names(module: str, qualname: str) -> None:
    """Whatever a function's module and qualname, the derived operation name is usable."""

    def fn() -> int:
        return 1

    fn.__module__ = module
    fn.__qualname__ = qualname
    wrapped = operation_boundary(fn)
    assert wrapped() == 1
    name = boundary._name_for(fn)
    assert name == sounding.collection.metrics.validate_name(name)
    assert len(name) <= boundary.MAX_OPERATION_LENGTH


# -- the seed's keyword form --------------------------------------------------------------


def test_operation_name_by_keyword(sink: MemorySink) -> None:
    """operation_boundary(operation_name="x", ...) is the same as the positional form."""
    fn = operation_boundary(operation_name="t.kw", retry_on_failure=True, retry_delay=0)(Flaky(1))
    assert fn() == "ok"
    assert sounding.flush()
    assert sink.total("t.kw.attempts") == 2
    with operation_boundary(operation_name="t.kw.block"):
        pass


# -- command-line applications: exits, ok exceptions, user errors -------------------------


def _exits(code: object) -> Any:
    def run() -> None:
        raise SystemExit(code)

    return run


@pytest.mark.parametrize("code", [0, None])
def test_exit_with_code_zero_is_a_success(sink: MemorySink, code: object) -> None:
    """SystemExit(0) passes through and is recorded as ok, never as a failure."""
    fn = operation_boundary("t.exit0", fallback_value="x")(_exits(code))
    with pytest.raises(SystemExit):
        fn()
    assert sounding.flush()
    assert sink.count("t.exit0.duration", {"status": "ok"}) == 1
    assert sink.total("t.exit0.failures") == 0
    assert sink.find_events("operation.failed") == []


def test_exit_with_another_code_is_cancelled(sink: MemorySink) -> None:
    """SystemExit(2) still passes through as before, recorded as cancelled."""
    with pytest.raises(SystemExit):
        operation_boundary("t.exit2")(_exits(2))()
    assert sounding.flush()
    assert sink.count("t.exit2.duration", {"status": "cancelled"}) == 1


def test_click_exit_zero_is_a_success(sink: MemorySink, sleeps: list[float]) -> None:
    """click.exceptions.Exit(0) (a RuntimeError) is not a failure: not retried, not reported."""

    @operation_boundary("t.click.exit", retry_on_failure=True)
    def command() -> None:
        raise click.exceptions.Exit(0)

    with pytest.raises(click.exceptions.Exit):
        command()
    assert sleeps == []
    assert sounding.flush()
    assert sink.count("t.click.exit.duration", {"status": "ok"}) == 1
    assert sink.total("t.click.exit.failures") == 0


def test_click_usage_error_is_a_user_error(sink: MemorySink, sleeps: list[float]) -> None:
    """A click.UsageError is the user's mistake: counted apart from failures, low severity."""

    @operation_boundary("t.click.usage", retry_on_failure=True)
    def command() -> None:
        raise click.UsageError("no such option: --frobnicate")

    with pytest.raises(click.UsageError):
        command()
    assert sleeps == []
    assert sounding.flush()
    assert sink.total("t.click.usage.user_errors", {"exc_type": "click.exceptions.UsageError"}) == 1
    assert sink.total("t.click.usage.failures") == 0
    assert sink.count("t.click.usage.duration", {"status": "user_error"}) == 1
    (event,) = sink.find_events("operation.failed")
    assert event["user_error"] is True
    assert event["severity"] == "low"


def test_ok_exceptions_are_successes(sink: MemorySink) -> None:
    """Exceptions listed in ok_exceptions pass through unchanged and count as ok."""

    class Done(Exception):
        pass

    @operation_boundary("t.okexc", ok_exceptions=(Done,), fallback_value="never")
    def fn() -> None:
        raise Done

    with pytest.raises(Done):
        fn()
    block = operation_boundary("t.okexc.block", ok_exceptions=Done, reraise=False)
    with pytest.raises(Done), block:
        raise Done
    assert sounding.flush()
    assert sink.count("t.okexc.duration", {"status": "ok"}) == 1
    assert sink.count("t.okexc.block.duration", {"status": "ok"}) == 1
    assert sink.total("t.okexc.fallbacks") == 0


@pytest.mark.parametrize(
    ("answer", "status"), [("ok", "ok"), ("user_error", "user_error"), ("error", "error")]
)
def test_classify_decides_the_outcome(sink: MemorySink, answer: str, status: str) -> None:
    """classify(exc) returning ok, user_error or error decides how the exception counts."""
    fn = operation_boundary("t.classify", classify=lambda exc: answer)(Flaky(5, KeyError))
    with pytest.raises(KeyError):
        fn()
    assert sounding.flush()
    assert sink.count("t.classify.duration", {"status": status}) == 1


def test_broken_classifier_falls_back_to_error(sink: MemorySink) -> None:
    """A classifier that raises or answers nonsense is counted; the exception is an error."""
    from sounding.core import health
    from sounding.testing import strict

    def broken(exc: BaseException) -> str:
        raise RuntimeError("classifier bug")

    with strict(False):
        for classify in (broken, lambda exc: "maybe"):
            with pytest.raises(KeyError):
                operation_boundary("t.badclass", classify=classify)(Flaky(5, KeyError))()
    assert health.counts()["severity.outcome_classifier"] == 2
    assert sounding.flush()
    assert sink.total("t.badclass.failures") == 2


# -- retries by predicate, on results, with a deadline ------------------------------------


def test_retry_if_chooses_which_exceptions_retry(sink: MemorySink, sleeps: list[float]) -> None:
    """retry_if(exc) False ends the call at once; True retries as usual."""
    transient = Flaky(2, ConnectionError)
    fn = operation_boundary(
        "t.retryif", retry_on_failure=True, retry_if=lambda e: "failure 1" in str(e)
    )(transient)
    with pytest.raises(ConnectionError, match="failure 2"):
        fn()
    assert transient.calls == 2
    assert len(sleeps) == 1


def test_retry_if_result_retries_rejected_results(sink: MemorySink, sleeps: list[float]) -> None:
    """A rejected result is retried; an accepted one is returned."""
    results = iter([None, None, "ready"])
    fn = operation_boundary(
        "t.result", retry_on_failure=True, retry_if_result=lambda r: r is None, retry_delay=0.5
    )(lambda: next(results))
    assert fn() == "ready"
    assert len(sleeps) == 2
    assert sounding.flush()
    assert sink.total("t.result.retries") == 2
    assert sink.total("t.result.attempts") == 3
    assert sink.count("t.result.duration", {"status": "ok"}) == 1


def test_retry_if_result_returns_the_last_result_when_exhausted(
    sink: MemorySink, sleeps: list[float]
) -> None:
    """When retries run out the last result is returned, counted as a rejected result."""
    fn = operation_boundary(
        "t.result.out", retry_on_failure=True, max_retries=2, retry_if_result=lambda r: r < 0
    )(lambda: -1)
    assert fn() == -1
    assert len(sleeps) == 2
    assert sounding.flush()
    assert sink.total("t.result.out.failures", {"exc_type": "rejected_result"}) == 1
    assert len(sink.find_events("operation.rejected")) == 1


def test_async_retry_if_result(sink: MemorySink, sleeps: list[float]) -> None:
    """Coroutine functions retry rejected results too."""
    results = iter([0, 0, 7])

    @operation_boundary("t.result.async", retry_on_failure=True, retry_if_result=lambda r: r == 0)
    async def poll() -> int:
        return next(results)

    assert asyncio.run(poll()) == 7
    assert len(sleeps) == 2


def test_deadline_stops_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """No retry starts when its delay would end past the deadline (clock-driven, no sleep)."""
    clock = ManualClock()
    waited: list[float] = []

    def fake_sleep(delay: float) -> None:
        waited.append(delay)
        clock.advance(delay)

    monkeypatch.setattr(boundary, "sleep", fake_sleep)
    fn = operation_boundary(
        "t.deadline", retry_on_failure=True, max_retries=10, retry_delay=1.0,
        retry_backoff=2.0, jitter=False, deadline=5.0,
    )(Flaky(100))  # fmt: skip
    with capture(clock), pytest.raises(ConnectionError):
        fn()
    # 1 + 2 = 3 s waited; the next delay (4 s) would end at 7 s > 5 s.
    assert waited == [1.0, 2.0]


@pytest.mark.parametrize("field", ["retry_if", "retry_if_result", "deadline"])
def test_retry_settings_need_retry_on_failure(field: str) -> None:
    """retry_if, retry_if_result and deadline without retry_on_failure=True fail at once."""
    value: Any = 1.0 if field == "deadline" else (lambda x: True)
    with pytest.raises(InvalidValueError, match=field):
        operation_boundary("t.misuse", **{field: value})


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"retry_if": "yes"}, InvalidTypeError),
        ({"deadline": -1}, InvalidValueError),
        ({"ok_exceptions": ("Exit",)}, InvalidTypeError),
        ({"classify": 3}, InvalidTypeError),
    ],
)
def test_new_settings_are_checked_at_definition(kwargs: dict[str, Any], error: type) -> None:
    """Bad predicates, deadlines, ok_exceptions and classifiers raise when defined."""
    with pytest.raises(error):
        operation_boundary("t.bad", retry_on_failure=True, **kwargs)


def test_unknown_keyword_raises_naming_it() -> None:
    """operation_boundary("op", retries=3) raises InvalidTypeError naming 'retries'."""
    with pytest.raises(InvalidTypeError, match="retries"):
        operation_boundary("t.unknown_kw", retries=3)


def test_block_boundary_made_per_call_is_the_same_boundary() -> None:
    """operation_boundary(name) without options gives one boundary; with options another."""
    first = operation_boundary("t.per_call")
    assert operation_boundary("t.per_call") is first
    assert operation_boundary(operation_name="t.per_call") is first
    other = operation_boundary("t.per_call", reraise=False)
    assert other is not first
    assert other.reraise is False
    assert operation_boundary("t.per_call") is first


def test_block_success_after_clock_change_uses_the_new_clock(sink: MemorySink) -> None:
    """A `with` block times with the clock installed by set_clock, also after a change."""
    from sounding.core.clock import set_clock

    clock = ManualClock()
    previous = set_clock(clock)
    try:
        with operation_boundary("t.clocked"):
            clock.advance(0.25)
        sounding.flush()
    finally:
        set_clock(previous)
    durations = [a for a in sink.aggregates("t.clocked.duration") if a.count]
    assert durations
    assert durations[0].max == pytest.approx(250.0)
    assert sink.total("t.clocked.attempts") == 1
