"""The stdlib logging bridge, both ways, and the guards against loops."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sounding
from sounding.collection import log as log_module
from sounding.collection.context import bind_context, clear_context
from sounding.collection.jsonl import dumps_event
from sounding.collection.log import get_logger
from sounding.collection.session import get_session_manager
from sounding.collection.stdlib import FORWARD_LOGGER, SoundingHandler, install_logging_handler
from sounding.core import health
from sounding.core.types import Event
from sounding.exceptions import InvalidTypeError, InvalidValueError
from sounding.testing import ManualClock, MemorySink, capture, strict


class ListHandler(logging.Handler):
    """A real handler that keeps the records it receives."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    sounding.reset()
    get_session_manager().reset()
    clear_context()
    log_module._reset_caches()
    with strict():
        yield
    get_session_manager().reset()
    clear_context()
    sounding.reset()


@pytest.fixture
def sink() -> Iterator[MemorySink]:
    with capture(ManualClock()) as s:
        yield s


@pytest.fixture
def app_logger() -> Iterator[tuple[logging.Logger, SoundingHandler]]:
    """A stdlib logger at DEBUG with a SoundingHandler, not propagating to the root."""
    logger = logging.getLogger("bridge.app")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = install_logging_handler(logger=logger)
    yield logger, handler
    logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.fixture
def root_handlers() -> Iterator[tuple[SoundingHandler, ListHandler]]:
    """A SoundingHandler and a ListHandler on the root logger, removed afterwards."""
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    sounding_handler = install_logging_handler()
    listing = ListHandler()
    root.addHandler(listing)
    yield sounding_handler, listing
    root.removeHandler(sounding_handler)
    root.removeHandler(listing)
    root.setLevel(old_level)


def recorded(sink: MemorySink) -> list[Event]:
    assert sounding.flush()
    return [e for e in sink.events if e["category"] != "session"]


# -- stdlib -> sounding ----


def test_record_becomes_event(
    sink: MemorySink, app_logger: tuple[logging.Logger, SoundingHandler]
) -> None:
    """Level, logger name, template as the event, formatted message, category, extra fields
    and context carry over."""
    logger, _ = app_logger
    bind_context(request="r-7")
    logger.warning("disk %s almost full", "D:", extra={"category": "storage", "free_mb": 12})
    (event,) = recorded(sink)
    assert event["level"] == "warning"
    assert event["logger"] == "bridge.app"
    assert event["event"] == "disk %s almost full"
    assert event["message"] == "disk D: almost full"
    assert event["category"] == "storage"
    assert event["free_mb"] == 12
    assert event["request"] == "r-7"
    assert event["session_id"] == get_session_manager().current_session().session_id
    assert not {"msg", "args", "lineno"} & set(event)


def test_default_category_is_system(
    sink: MemorySink, app_logger: tuple[logging.Logger, SoundingHandler]
) -> None:
    """Without extra={'category': ...} the event's category is 'system'."""
    app_logger[0].error("plain")
    assert recorded(sink)[0]["category"] == "system"


def test_record_is_scrubbed(
    sink: MemorySink, app_logger: tuple[logging.Logger, SoundingHandler]
) -> None:
    """Message, extra fields and traceback from stdlib records pass the scrubber."""
    logger, _ = app_logger
    try:
        raise OSError("cannot write /home/alice/out.wav")
    except OSError:
        logger.exception(
            "export for %s failed", "bob@example.com", extra={"api_key": "k-123", "ip": "10.0.0.9"}
        )
    (event,) = recorded(sink)
    assert event["event"] == "export for %s failed"
    assert event["message"] == "export for <email> failed"
    assert event["api_key"] == "<redacted>"
    assert event["ip"] == "<ip>"
    assert event["exc_type"] == "OSError"
    assert "/home/alice" not in event["exc_info"]
    assert event["level"] == "error"


def test_stack_info_is_kept(
    sink: MemorySink, app_logger: tuple[logging.Logger, SoundingHandler]
) -> None:
    """stack_info=True adds the (scrubbed) stack as a field."""
    app_logger[0].info("where", stack_info=True)
    assert "test_stack_info_is_kept" in recorded(sink)[0]["stack_info"]


def test_records_pass_the_level_filter(
    app_logger: tuple[logging.Logger, SoundingHandler],
) -> None:
    """settings.log_level applies to stdlib records too."""
    sounding.configure(log_level="error")
    with capture() as sink:
        app_logger[0].warning("dropped")
        app_logger[0].error("kept")
        assert [e["event"] for e in recorded(sink)] == ["kept"]


def test_bad_format_string_is_recorded_not_raised() -> None:
    """A message whose arguments do not fit its format is still recorded, and counted."""
    record = logging.LogRecord("bridge.app", logging.INFO, "", 0, "%d items", ("x",), None)
    with capture() as sink:
        SoundingHandler().handle(record)
        (event,) = recorded(sink)
    assert event["event"] == "%d items"
    assert event["message"] == "'%d items' TypeError"
    assert health.counts()["log.bad_format"] == 1


def test_handler_level_and_install_is_idempotent() -> None:
    """install_logging_handler returns the handler already there, with the new level."""
    logger = logging.getLogger("bridge.idempotent")
    try:
        first = install_logging_handler(level="warning", logger=logger)
        second = install_logging_handler(level=logging.ERROR, logger="bridge.idempotent")
        assert first is second
        assert first.level == logging.ERROR
        assert sum(isinstance(h, SoundingHandler) for h in logger.handlers) == 1
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"level": "loud"}, InvalidValueError),
        ({"level": -1}, InvalidValueError),
        ({"level": 1.5}, InvalidTypeError),
        ({"logger": 42}, InvalidTypeError),
    ],
)
def test_install_rejects_bad_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    """A bad level or logger raises at once."""
    with pytest.raises(error):
        install_logging_handler(**kwargs)  # type: ignore[arg-type]


# -- sounding -> stdlib ----


def test_events_are_forwarded_when_enabled() -> None:
    """With forward_to_logging, events reach sounding.events.<logger> already scrubbed."""
    sounding.configure(forward_to_logging=True)
    listing = ListHandler()
    target = logging.getLogger(FORWARD_LOGGER)
    target.addHandler(listing)
    target.setLevel(logging.DEBUG)
    try:
        with capture():
            get_logger("recorder").info(
                "recording.saved", format="wav", user="alice@example.com", module="audio"
            )
    finally:
        target.removeHandler(listing)
        target.setLevel(logging.NOTSET)
    (record,) = [r for r in listing.records if r.name != "sounding.events.sounding.session"]
    assert record.name == "sounding.events.recorder"
    assert record.getMessage() == "recording.saved"
    assert record.levelno == logging.INFO
    assert record.format == "wav"  # type: ignore[attr-defined]
    assert record.user == "<email>"  # type: ignore[attr-defined]
    assert record.category == "system"  # type: ignore[attr-defined]
    assert record.sounding_module == "audio"  # type: ignore[attr-defined]
    assert record.module != "audio"
    assert record.sounding_event["event"] == "recording.saved"  # type: ignore[attr-defined]


def test_forwarded_exception_prints_scrubbed_traceback() -> None:
    """An ordinary Formatter prints the forwarded event's scrubbed traceback."""
    sounding.configure(forward_to_logging=True)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    target = logging.getLogger(FORWARD_LOGGER)
    target.addHandler(handler)
    try:
        with capture():
            try:
                raise ValueError("bad address carol@example.org")
            except ValueError:
                get_logger("recorder").exception("export.failed")
    finally:
        target.removeHandler(handler)
    text = stream.getvalue()
    assert text.startswith("ERROR sounding.events.recorder export.failed\nTraceback")
    assert "ValueError: bad address <email>" in text
    assert "carol@" not in text


def test_nothing_is_forwarded_by_default() -> None:
    """forward_to_logging is off by default."""
    listing = ListHandler()
    target = logging.getLogger(FORWARD_LOGGER)
    target.addHandler(listing)
    try:
        with capture():
            get_logger("recorder").warning("x")
    finally:
        target.removeHandler(listing)
    assert listing.records == []


def test_forwarding_respects_stdlib_levels() -> None:
    """A forward logger set to ERROR gets no info events (and no record is built)."""
    sounding.configure(forward_to_logging=True)
    listing = ListHandler()
    target = logging.getLogger(FORWARD_LOGGER)
    target.addHandler(listing)
    target.setLevel(logging.ERROR)
    try:
        with capture():
            get_logger("recorder").info("quiet")
            get_logger("recorder").error("loud")
    finally:
        target.removeHandler(listing)
        target.setLevel(logging.NOTSET)
    assert [r.getMessage() for r in listing.records] == ["loud"]


def test_forwarding_works_with_local_recording_off() -> None:
    """Local recording off stops recording, not the application's own logging."""
    sounding.configure(forward_to_logging=True, local_recording=False)
    listing = ListHandler()
    target = logging.getLogger(FORWARD_LOGGER)
    target.addHandler(listing)
    target.setLevel(logging.DEBUG)
    try:
        with capture() as sink:
            get_logger("recorder").warning("x")
            assert sounding.flush()
            assert sink.events == []
    finally:
        target.removeHandler(listing)
        target.setLevel(logging.NOTSET)
    assert [r.getMessage() for r in listing.records] == ["session.start", "x"]


# -- no loops ----


def test_no_loop_with_root_handler_and_forwarding(
    root_handlers: tuple[SoundingHandler, ListHandler],
) -> None:
    """A sounding event is recorded once and forwarded once; it does not come back."""
    sounding.configure(forward_to_logging=True)
    _, listing = root_handlers
    with capture() as sink:
        get_logger("recorder").warning("once")
        events = recorded(sink)
    assert [e["event"] for e in events] == ["once"]
    assert [r.getMessage() for r in listing.records if r.name.endswith("recorder")] == ["once"]


def test_stdlib_records_are_not_forwarded_back(
    root_handlers: tuple[SoundingHandler, ListHandler],
) -> None:
    """A stdlib record becomes one event and is not handed back to stdlib logging."""
    sounding.configure(forward_to_logging=True)
    _, listing = root_handlers
    with capture() as sink:
        logging.getLogger("bridge.plain").warning("from stdlib")
        events = recorded(sink)
    assert [e["event"] for e in events] == ["from stdlib"]
    assert [r.name for r in listing.records if r.name.startswith(FORWARD_LOGGER)] == [
        "sounding.events.sounding.session"
    ]


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    __repr__ = __str__


def test_handler_never_raises_into_the_caller() -> None:
    """A record whose message cannot even be shown is counted, not raised (unless strict)."""
    record = logging.LogRecord("bridge.app", logging.INFO, "", 0, _Unprintable(), None, None)
    with strict(False), capture() as sink:
        SoundingHandler().handle(record)
        assert recorded(sink) == []
    assert health.counts()["log.record"] == 1


def test_failures_inside_the_handler_are_not_reingested(
    root_handlers: tuple[SoundingHandler, ListHandler],
) -> None:
    """When the pipeline fails, sounding's own warning about it is not recorded in turn."""
    sounding_handler, listing = root_handlers
    record = logging.LogRecord("bridge.app", logging.INFO, "", 0, _Unprintable(), None, None)
    with strict(False), capture() as sink:
        sounding_handler.handle(record)
        events = recorded(sink)
    # health reported the failure once through the stdlib logger "sounding" ...
    warnings = [r for r in listing.records if r.name == "sounding"]
    assert len(warnings) == 1
    assert "log.record" in warnings[0].getMessage()
    # ... and that warning, logged while the handler was busy, was not ingested.
    assert events == []


def test_handler_that_logs_through_sounding_does_not_recurse() -> None:
    """A stdlib handler that logs via sounding while handling a forwarded event: no loop."""
    sounding.configure(forward_to_logging=True)
    inner = get_logger("inner")

    class Echo(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.seen: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.seen.append(record.getMessage())
            inner.warning("echo.of." + record.getMessage())

    echo = Echo()
    target = logging.getLogger(FORWARD_LOGGER + ".outer")
    target.addHandler(echo)
    try:
        with capture() as sink:
            get_logger("outer").warning("ping")
            events = recorded(sink)
    finally:
        target.removeHandler(echo)
    assert echo.seen == ["ping"]
    assert [e["event"] for e in events] == ["ping", "echo.of.ping"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    msg=st.one_of(st.text(max_size=30), st.integers(), st.builds(object)),
    args=st.tuples() | st.tuples(st.text(max_size=10)) | st.tuples(st.integers(), st.none()),
    extra=st.dictionaries(
        st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True),
        st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.lists(st.integers())),
        max_size=5,
    ),
    level=st.integers(min_value=0, max_value=60),
)
def test_handler_never_raises(
    msg: object, args: tuple[object, ...], extra: dict[str, object], level: int
) -> None:
    """Any message, arguments, extra fields and level: the handler records or counts, never
    raises, and what it records is strict JSON."""
    record = logging.LogRecord("bridge.prop", level, "", 0, msg, args or None, None)
    for key, value in extra.items():
        if key not in record.__dict__:
            setattr(record, key, value)
    with strict(False), capture() as sink:
        SoundingHandler().handle(record)
        assert sounding.flush()
        for event in sink.events:
            json.loads(dumps_event(event), parse_constant=_reject_constant)


def _reject_constant(name: str) -> None:
    raise AssertionError(f"{name} is not strict JSON")


def test_event_name_is_the_template_not_the_formatted_message(
    sink: MemorySink, app_logger: tuple[logging.Logger, SoundingHandler]
) -> None:
    """Records of one template with different arguments share one event name."""
    logger, _ = app_logger
    for table in ("users", "orders", "session_4821"):
        logger.error("query failed: no such table: %s", table)
    events = recorded(sink)
    assert {e["event"] for e in events} == {"query failed: no such table: %s"}
    assert [e["message"] for e in events][-1] == "query failed: no such table: session_4821"


def test_a_non_string_message_is_named_by_its_type(
    sink: MemorySink, app_logger: tuple[logging.Logger, SoundingHandler]
) -> None:
    """logger.error(exc) names the event by the object's type, the text goes in message."""
    logger, _ = app_logger
    logger.error(KeyError("user 4821"))
    (event,) = recorded(sink)
    assert event["event"] == "<KeyError>"
    assert event["message"] == "'user 4821'"


def test_install_can_lower_the_logger_level() -> None:
    """set_logger_level=True lowers a logger that would hide the records the handler wants."""
    logger = logging.getLogger("bridge.levels")
    logger.setLevel(logging.WARNING)
    try:
        handler = install_logging_handler("info", logger, set_logger_level=True)
        assert logger.level == logging.INFO
        with capture() as sink:
            logger.info("loaded %d plugins", 3)
            assert [e["event"] for e in recorded(sink)] == ["loaded %d plugins"]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def test_install_counts_a_logger_level_that_hides_records() -> None:
    """Without set_logger_level the logger's level is kept and the mismatch is counted."""
    logger = logging.getLogger("bridge.hidden")
    logger.setLevel(logging.WARNING)
    try:
        handler = install_logging_handler("debug", logger)
        assert logger.level == logging.WARNING
        assert health.counts()["log.handler_level_hidden"] == 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
