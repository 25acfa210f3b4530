"""SentryContext and error reports: local error events, scrubbing, reporters, no-SDK behaviour."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sounding
from sounding.collection import errors
from sounding.collection.errors import (
    MAX_BREADCRUMBS,
    ErrorReport,
    SentryContext,
    add_reporter,
    exception_type_name,
    record_error,
    remove_reporter,
)
from sounding.core import health
from sounding.core.types import ErrorSeverity
from sounding.exceptions import InvalidNameError, InvalidValueError
from sounding.testing import MemorySink, capture

PERSONAL = [
    "alice@example.com",
    "192.168.17.42",
    "/home/alice/",
    "4111 1111 1111 1111",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
]


@pytest.fixture
def sink() -> Iterator[MemorySink]:
    """Everything recorded goes to a memory sink on flush."""
    with capture() as s:
        yield s


def _raise_personal() -> None:
    raise ValueError(
        "cannot read /home/alice/music/take1.wav for alice@example.com at 192.168.17.42 "
        "card 4111 1111 1111 1111 token ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    )


def test_success_records_nothing(sink: MemorySink) -> None:
    """A block that succeeds records no event and no failure."""
    with SentryContext(operation="ctx.ok", device="usb") as ctx:
        ctx.add_breadcrumb("start")
        ctx.set_metric("frames", 10)
    sounding.flush()
    assert ctx.report is None
    assert sink.events == []
    assert sink.total("ctx.ok.failures") == 0


def test_exception_is_not_swallowed_and_recorded(sink: MemorySink) -> None:
    """The exception propagates; a local error event carries type, stack, crumbs, metrics."""
    ctx = SentryContext(operation="ctx.rec", device="usb")

    def body() -> None:
        with ctx:
            ctx.add_breadcrumb("opening stream", category="audio", data={"rate": 48000})
            ctx.set_metric("duration", 5.0)
            ctx.set_tag("codec", "pcm")
            _raise_personal()

    with pytest.raises(ValueError, match="cannot read"):
        body()
    sounding.flush()
    [event] = sink.find_events("operation.failed")
    assert event["category"] == "error"
    assert event["exc_type"] == "ValueError"
    assert event["operation"] == "ctx.rec"
    assert event["metrics"] == {"duration": 5.0}
    assert event["tags"] == {"device": "usb", "codec": "pcm"}
    [crumb] = event["breadcrumbs"]
    assert crumb["message"] == "opening stream"
    assert crumb["category"] == "audio"
    assert crumb["data"] == {"rate": 48000}
    assert [f["function"] for f in event["stack"]][-1] == "_raise_personal"
    assert sink.total("ctx.rec.failures", {"exc_type": "ValueError"}) == 1
    assert ctx.report is not None
    assert ctx.report.severity is ErrorSeverity.MEDIUM


def test_personal_data_is_scrubbed_everywhere(sink: MemorySink) -> None:
    """Message, breadcrumbs, data and tags of an error event never hold personal data."""
    ctx = SentryContext(operation="ctx.pii", owner="alice@example.com")

    def body() -> None:
        with ctx:
            ctx.add_breadcrumb(
                "loaded /home/alice/x from 192.168.17.42", data={"password": "hunter2"}
            )
            _raise_personal()

    with pytest.raises(ValueError, match="cannot read"):
        body()
    sounding.flush()
    text = repr(sink.events)
    for planted in [*PERSONAL, "hunter2"]:
        assert planted not in text
    [event] = sink.find_events("operation.failed")
    assert "<email>" in event["message"]


def test_stack_paths_are_scrubbed() -> None:
    """Frame file paths under a home directory lose the user name."""

    def home_frame() -> None:
        raise KeyError("x")

    # Give the function a code object that claims to live in a home directory.
    home_frame.__code__ = home_frame.__code__.replace(co_filename="/home/alice/app/main.py")
    try:
        home_frame()
    except KeyError as exc:
        report = record_error(exc, operation="ctx.paths")
    assert report is not None
    files = [f["file"] for f in report.stack]
    assert "~/app/main.py" in files
    assert not any("alice" in f for f in files)


def test_async_context(sink: MemorySink) -> None:
    """``async with`` behaves like ``with``."""

    async def main() -> None:
        async with SentryContext(operation="ctx.async") as ctx:
            ctx.add_breadcrumb("awaiting")
            await asyncio.sleep(0)
            raise TimeoutError("late")

    with pytest.raises(TimeoutError):
        asyncio.run(main())
    sounding.flush()
    [event] = sink.find_events("operation.failed")
    assert event["exc_type"] == "TimeoutError"
    assert event["breadcrumbs"][0]["message"] == "awaiting"


def test_breadcrumbs_are_bounded() -> None:
    """Only the most recent MAX_BREADCRUMBS breadcrumbs are kept."""
    ctx = SentryContext(operation="ctx.many")

    def body() -> None:
        with ctx:
            for i in range(MAX_BREADCRUMBS + 50):
                ctx.add_breadcrumb(f"step {i}")
            raise RuntimeError("x")

    with pytest.raises(RuntimeError, match="x"):
        body()
    assert ctx.report is not None
    crumbs = ctx.report.breadcrumbs
    assert len(crumbs) == MAX_BREADCRUMBS
    assert crumbs[-1]["message"] == f"step {MAX_BREADCRUMBS + 49}"


def test_invalid_metric_and_tag_are_counted_not_raised() -> None:
    """Bad set_metric/set_tag values at run time are dropped and counted."""
    with SentryContext(operation="ctx.bad") as ctx:
        ctx.set_metric("n", float("nan"))
        ctx.set_metric("s", "fast")  # type: ignore[arg-type]
        ctx.set_tag("", "x")
    assert ctx.metrics == {}
    counts = health.counts()
    assert counts["errors.invalid_metric"] == 2
    assert counts["errors.invalid_tag"] == 1


@pytest.mark.parametrize("operation", ["", "has space", "9lives"])
def test_invalid_operation_raises_at_once(operation: str) -> None:
    """The operation name is checked when the context is created."""
    with pytest.raises((InvalidNameError, InvalidValueError)):
        SentryContext(operation=operation)


def test_explicit_severity() -> None:
    """A severity given to the context overrides the classification."""
    with (
        pytest.raises(ValueError, match="minor"),
        SentryContext(operation="ctx.sev", severity="low") as ctx,
    ):
        raise ValueError("minor")
    assert ctx.report is not None
    assert ctx.report.severity is ErrorSeverity.LOW


def test_base_exceptions_are_not_reported(sink: MemorySink) -> None:
    """KeyboardInterrupt passes through without an error report."""
    with pytest.raises(KeyboardInterrupt), SentryContext(operation="ctx.kbd") as ctx:
        raise KeyboardInterrupt
    assert ctx.report is None


# -- record_error and reporters ------------------------------------------------------------


def test_reporters_get_the_report_and_a_broken_one_is_contained() -> None:
    """Installed reporters see every recorded error; one that raises is counted, not raised."""
    seen: list[tuple[BaseException, ErrorReport]] = []

    def good(exc: BaseException, report: ErrorReport) -> None:
        seen.append((exc, report))

    def bad(exc: BaseException, report: ErrorReport) -> None:
        raise RuntimeError("reporter bug")

    add_reporter(bad)
    add_reporter(good)
    try:
        err = OSError("x")
        report = record_error(err, operation="ctx.rep")
    finally:
        remove_reporter(bad)
        remove_reporter(good)
    assert seen == [(err, report)]
    assert health.counts()["errors.reporter"] == 1


def test_same_exception_recorded_once() -> None:
    """Recording the same exception object twice gives one report."""
    exc = ValueError("once")
    assert record_error(exc) is not None
    assert record_error(exc) is None


def test_chain_lists_causes() -> None:
    """The report names the types of chained exceptions (cause first)."""
    try:
        try:
            raise KeyError("k")
        except KeyError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        report = record_error(exc)
    assert report is not None
    assert report.chain == ["KeyError"]


def test_unprintable_exception() -> None:
    """An exception whose __str__ raises is still recorded."""

    class Odd(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    report = record_error(Odd())
    assert report is not None
    assert report.message == "<unprintable Odd>"
    assert report.exc_type.endswith("Odd")


@pytest.mark.parametrize(
    ("exc", "name"),
    [(ValueError(), "ValueError"), (asyncio.TimeoutError(), "TimeoutError")],
)
def test_exception_type_name(exc: BaseException, name: str) -> None:
    """Builtins are named bare, other types with their module."""
    assert exception_type_name(exc) == name
    assert exception_type_name(sounding.exceptions.StoreError()) == (
        "sounding.core.exceptions.StoreError"
    )


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.text(max_size=30),
    planted=st.sampled_from(PERSONAL),
    suffix=st.text(max_size=30),
)
def test_error_messages_never_leak(prefix: str, planted: str, suffix: str) -> None:
    """Whatever text surrounds a planted secret, the recorded message does not contain it.

    The secret is set off by " | " so that the scrubber's deliberate exceptions (a four-part
    "version 1.2.3.4" is a version, not an address) stay out of this property.
    """
    report = record_error(RuntimeError(f"{prefix} | {planted} | {suffix}"))
    assert report is not None
    assert planted not in report.message


# -- without sentry-sdk ---------------------------------------------------------------------


def test_context_works_without_sentry_sdk(
    monkeypatch: pytest.MonkeyPatch, sink: MemorySink
) -> None:
    """With sentry-sdk unimportable the context records locally and behaves the same."""
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    ctx = SentryContext(operation="ctx.nosdk")

    def body() -> None:
        with ctx:
            ctx.add_breadcrumb("step")
            raise ValueError("x")

    with pytest.raises(ValueError, match="x"):
        body()
    sounding.flush()
    assert len(sink.find_events("operation.failed")) == 1
    assert ctx.report is not None


def test_events_fall_back_to_buffer_without_structured_logger(
    monkeypatch: pytest.MonkeyPatch, sink: MemorySink
) -> None:
    """If the structured logger is unavailable, error events still carry the core keys."""
    monkeypatch.setitem(sys.modules, "sounding.collection.log", None)
    errors._structured_logger.cache_clear()
    try:
        record_error(ValueError("x"), operation="ctx.fallback")
        sounding.flush()
    finally:
        errors._structured_logger.cache_clear()
    [event] = sink.find_events("error.captured")
    for key in ("timestamp", "level", "category", "event", "logger", "session_id"):
        assert key in event
    assert event["operation"] == "ctx.fallback"


def test_recording_failure_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """If building the report breaks, record_error returns None and counts the failure."""

    def broken(exc: Any) -> Any:
        raise RuntimeError("classifier gone")

    monkeypatch.setattr(errors, "classify_exception", broken)
    assert record_error(ValueError("x")) is None
    assert health.counts()["errors.record"] == 1
