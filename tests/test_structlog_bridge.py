"""structlog -> sounding: the processor records structlog events through sounding's pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import sounding
from sounding.core.types import Event
from sounding.integrations.structlog import SoundingProcessor
from sounding.testing import MemorySink

# structlog is the `structlog` extra: these tests are deselected in the no-extras run.
pytestmark = pytest.mark.needs_extras


@pytest.fixture
def structlog() -> Any:
    """The real structlog, imported here so that collecting this module never needs it."""
    import structlog as module

    return module


@pytest.fixture
def output(structlog: Any) -> Iterator[list[str]]:
    """structlog configured with the processor before a renderer that collects lines."""
    lines: list[str] = []

    def collect(logger: Any, method_name: str, event_dict: Any) -> str:
        lines.append(f"{method_name} {event_dict['event']}")
        return ""

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            SoundingProcessor(),
            collect,
        ],
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    yield lines
    structlog.reset_defaults()


def recorded(sink: MemorySink) -> list[Event]:
    assert sounding.flush()
    return [e for e in sink.events if e["category"] != "session"]


def test_structlog_event_is_recorded_and_passed_on(
    sink: MemorySink, output: list[str], structlog: Any
) -> None:
    """The event reaches sounding with its level, name and fields, and the next processor."""
    log = structlog.get_logger("recorder")
    log.warning("export.slow", rows=12, category="performance", logger="recorder")
    (event,) = recorded(sink)
    assert (event["event"], event["level"], event["category"]) == (
        "export.slow",
        "warning",
        "performance",
    )
    assert event["rows"] == 12
    assert event["logger"] == "recorder"
    assert output == ["warning export.slow"]


def test_structlog_fields_are_scrubbed(sink: MemorySink, output: list[str], structlog: Any) -> None:
    """Personal data in structlog fields is scrubbed like any sounding event."""
    structlog.get_logger().info("login", email="alice@example.com", password="hunter2")
    (event,) = recorded(sink)
    assert event["email"] == "<email>"
    assert event["password"] == "<redacted>"


def test_structlog_exception_carries_the_traceback(
    sink: MemorySink, output: list[str], structlog: Any
) -> None:
    """log.exception() inside an except block records the exception type and traceback."""
    try:
        raise OSError("cannot open /home/alice/take.wav")
    except OSError:
        structlog.get_logger().exception("export.failed")
    (event,) = recorded(sink)
    assert event["level"] == "error"
    assert event["exc_type"] == "OSError"
    assert "alice" not in event["exc_info"]


def test_drop_ends_the_chain(sink: MemorySink, structlog: Any) -> None:
    """With drop=True sounding is the only destination: later processors never run."""
    later: list[str] = []
    structlog.configure(
        processors=[SoundingProcessor(drop=True), lambda _l, _m, d: later.append(d["event"])],
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        structlog.get_logger().info("only.here")
    finally:
        structlog.reset_defaults()
    assert [e["event"] for e in recorded(sink)] == ["only.here"]
    assert later == []
