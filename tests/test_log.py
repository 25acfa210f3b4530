"""Structured logging: event shape, categories, levels, scrubbing, the pipeline, JSON lines."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sounding
from sounding.collection import events as events_module
from sounding.collection.context import bind_context, bound_context
from sounding.collection.jsonl import JsonlWriter, dumps_event
from sounding.collection.log import (
    CORE_KEYS,
    PROCESSORS,
    StructuredLogger,
    add_context,
    add_session,
    get_logger,
    level_name,
    normalise_category,
    scrub_event,
)
from sounding.collection.session import get_session_manager
from sounding.core import health
from sounding.core.types import Event, EventCategory
from sounding.exceptions import InternalError, InvalidTypeError, InvalidValueError
from sounding.testing import ManualClock, MemorySink, capture, strict

# Run-time failures raise in these tests (conftest resets state around each test).
pytestmark = pytest.mark.usefixtures("strict_mode")


def recorded(sink: MemorySink) -> list[Event]:
    """Flush, then return the events that are not session records."""
    assert sounding.flush()
    return [e for e in sink.events if e["category"] != "session"]


# -- the event ------------------------------------------------------------------------------


def test_event_carries_core_keys_context_and_fields(sink: MemorySink, clock: ManualClock) -> None:
    """Every event has timestamp, level, category, event, logger, session id, context, fields."""
    bind_context(request="r-1")
    get_logger("recorder").info(
        "recording.saved", category=EventCategory.STORAGE, format="wav", duration_ms=12.5
    )
    (event,) = recorded(sink)
    assert event == {
        "timestamp": clock.time(),
        "level": "info",
        "category": "storage",
        "event": "recording.saved",
        "logger": "recorder",
        "session_id": get_session_manager().current_session().session_id,
        "request": "r-1",
        "format": "wav",
        "duration_ms": 12.5,
    }


@pytest.mark.parametrize(
    ("method", "level"),
    [
        ("debug", "debug"),
        ("info", "info"),
        ("warning", "warning"),
        ("error", "error"),
        ("critical", "critical"),
    ],
)
def test_level_methods(method: str, level: str, clock: ManualClock) -> None:
    """Each method records its level (with the level filter at debug)."""
    sounding.configure(log_level="debug")
    with capture(clock) as sink:
        getattr(get_logger("app"), method)("thing.happened")
        (event,) = recorded(sink)
    assert event["level"] == level


@pytest.mark.parametrize(
    ("setting", "kept"),
    [
        ("debug", ["debug", "info", "warning", "error", "critical"]),
        ("info", ["info", "warning", "error", "critical"]),
        ("warning", ["warning", "error", "critical"]),
        ("critical", ["critical"]),
    ],
)
def test_level_filter(setting: str, kept: list[str], clock: ManualClock) -> None:
    """settings.log_level drops events below it."""
    sounding.configure(log_level=setting)
    with capture(clock) as sink:
        log = get_logger("app")
        for name in ("debug", "info", "warning", "error", "critical"):
            getattr(log, name)(f"at.{name}")
        assert [e["level"] for e in recorded(sink)] == kept
        assert log.is_enabled_for(setting)
        assert log.is_enabled_for(logging.CRITICAL)


def test_level_change_takes_effect_without_restart(clock: ManualClock) -> None:
    """Reconfiguring the level applies to loggers created before."""
    log = get_logger("app")
    with capture(clock) as sink:
        log.debug("hidden")
        sounding.configure(log_level="debug")
        log.debug("shown")
        assert [e["event"] for e in recorded(sink)] == ["shown"]


def test_log_method_takes_numbers_and_names(sink: MemorySink) -> None:
    """log(level, ...) accepts a stdlib number or a level name; odd numbers round down."""
    log = get_logger("app")
    log.log(logging.WARNING, "a")
    log.log("error", "b")
    log.log(25, "c")
    assert [(e["event"], e["level"]) for e in recorded(sink)] == [
        ("a", "warning"),
        ("b", "error"),
        ("c", "info"),
    ]


def test_log_method_bad_level_is_counted() -> None:
    """An unknown level name is a run-time misuse: counted, raised only in strict mode."""
    with strict(False), capture() as sink:
        get_logger("app").log("loud", "x")
        assert [e["level"] for e in recorded(sink)] == ["info"]
    assert health.counts()["log.level"] == 1


def test_fields_win_over_context_and_core_keys_are_protected(sink: MemorySink) -> None:
    """A field overrides bound context; a field named like a core key gets a '_' suffix."""
    bind_context(format="flac", level="ctx")
    get_logger("app").info("x", format="wav", level="loud", session_id="mine")
    (event,) = recorded(sink)
    assert event["format"] == "wav"
    assert event["level"] == "info"
    assert event["level_"] == "loud"
    assert event["session_id_"] == "mine"
    assert event["session_id"] != "mine"
    assert health.counts()["log.field_renamed"] == 2


def test_bind_logger(sink: MemorySink) -> None:
    """bind() returns a logger whose events carry the bound fields; calls may override."""
    base = get_logger("app")
    bound = base.bind(component="export").bind(step=1)
    bound.info("a")
    bound.info("b", step=2)
    base.info("c")
    a, b, c = recorded(sink)
    assert (a["component"], a["step"]) == ("export", 1)
    assert b["step"] == 2
    assert "component" not in c
    assert bound.name == "app"


def test_exception_adds_type_and_scrubbed_traceback(sink: MemorySink) -> None:
    """exception() records exc_type and the formatted traceback, scrubbed, as an error."""
    log = get_logger("app")
    try:
        raise ValueError("cannot open /home/alice/take.wav for bob@example.com")
    except ValueError:
        log.exception("export.failed", format="wav")
    (event,) = recorded(sink)
    assert event["level"] == "error"
    assert event["category"] == "error"
    assert event["exc_type"] == "ValueError"
    assert "Traceback (most recent call last)" in event["exc_info"]
    assert "test_exception_adds_type_and_scrubbed_traceback" in event["exc_info"]
    assert "bob@example.com" not in event["exc_info"]
    assert "/home/alice" not in event["exc_info"]
    assert "<email>" in event["exc_info"]


def test_exc_info_argument_on_any_method(sink: MemorySink) -> None:
    """exc_info=<exception> on warning() adds the traceback; exc_info outside except too."""
    error = KeyError("k")
    get_logger("app").warning("lookup.failed", exc_info=error)
    get_logger("app").info("no.exception", exc_info=True)  # nothing being handled
    first, second = recorded(sink)
    assert first["exc_type"] == "KeyError"
    assert "exc_info" not in second
    assert "exc_type" not in second


# -- categories -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_category", "recorded_as"),
    [
        (EventCategory.PERFORMANCE, "performance"),
        ("performance", "performance"),
        ("audio.export", "audio.export"),
        ("user_action", "user_action"),
        ("a-b_c.d9", "a-b_c.d9"),
    ],
)
def test_valid_categories(given_category: Any, recorded_as: str, sink: MemorySink) -> None:
    """EventCategory members and name-like strings are recorded as they are."""
    get_logger("app").info("x", category=given_category)
    assert recorded(sink)[0]["category"] == recorded_as


@pytest.mark.parametrize("bad", ["Has Spaces", "UPPER", "", "9lives", 42, None.__class__, ["x"]])
def test_invalid_category_is_replaced_and_counted(bad: Any) -> None:
    """A bad category at run time becomes 'system' and is counted, never raised."""
    with strict(False), capture() as sink:
        get_logger("app").info("x", category=bad)
        assert recorded(sink)[0]["category"] == "system"
    assert health.counts()["log.category"] == 1


def test_invalid_category_raises_in_strict_mode() -> None:
    """In strict (test) mode the misuse surfaces as InternalError."""
    with capture(), pytest.raises(InternalError):
        get_logger("app").info("x", category="Not A Name")


def test_normalise_category_direct() -> None:
    """normalise_category accepts enum members and name-like strings."""
    assert normalise_category(EventCategory.SESSION) == "session"
    assert normalise_category("my.cat") == "my.cat"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": 42}, InvalidTypeError),
        ({"name": ""}, InvalidValueError),
        ({"name": "app", "category": 3}, InvalidTypeError),
        ({"name": "app", "category": "Bad Category"}, InvalidValueError),
    ],
)
def test_get_logger_rejects_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """A bad logger name or default category raises at once, naming the argument."""
    with pytest.raises(error) as caught:
        get_logger(**kwargs)
    assert ("name" in str(caught.value)) or ("category" in str(caught.value))


def test_get_logger_returns_same_instance_and_default_category(sink: MemorySink) -> None:
    """Same name and category give the same logger; its category applies by default."""
    assert get_logger("app") is get_logger("app")
    perf = get_logger("app", category="performance")
    assert perf is not get_logger("app")
    assert isinstance(perf, StructuredLogger)
    perf.info("x")
    assert recorded(sink)[0]["category"] == "performance"


# -- scrubbing and JSON-ability ---------------------------------------------------------------


def test_every_value_is_scrubbed(sink: MemorySink) -> None:
    """Personal data in fields, context, event names and nested values is removed."""
    bind_context(user="alice@example.com")
    get_logger("app").info(
        "login for bob@example.com",
        path="/home/carol/music/take.wav",
        password="hunter2",
        nested={"ip": "10.1.2.3", "items": ["dave@example.org"]},
        count=3,
    )
    (event,) = recorded(sink)
    text = json.dumps(event)
    for secret in ("alice@", "bob@", "carol", "hunter2", "10.1.2.3", "dave@"):
        assert secret not in text
    assert event["event"] == "login for <email>"
    assert event["password"] == "<redacted>"
    assert event["path"] == "~/music/take.wav"
    assert event["count"] == 3


def test_scrub_cache_does_not_outlive_identity_change(sink: MemorySink) -> None:
    """A memoised scrub result is dropped when the scrubber's user name changes."""
    from sounding.collection import scrub as scrub_module

    log = get_logger("app")
    previous = scrub_module.set_identity(user="zelda-unique", host="box-unique")
    try:
        log.info("x", owner="quentin-unique")
        scrub_module.set_identity(user="quentin-unique")
        log.info("x", owner="quentin-unique")
    finally:
        scrub_module.set_identity(*previous)
        scrub_module.reset_identity()
    first, second = recorded(sink)
    assert first["owner"] == "quentin-unique"
    assert second["owner"] == "<user>"


def test_kept_key_is_scrubbed_again_after_identity_change(sink: MemorySink) -> None:
    """A key once kept as it is (the fast path) is scrubbed again, as a key and for its
    value, when the scrubber's user name changes to one it contains."""
    from sounding.collection import scrub as scrub_module

    log = get_logger("app")
    previous = scrub_module.set_identity(user="zelda-unique", host="box-unique")
    try:
        log.info("x", **{"notes_of_yuri-unique": "draft"}, take=1)
        log.info("x", **{"notes_of_yuri-unique": "draft"}, take=2)
        scrub_module.set_identity(user="yuri-unique")
        log.info("x", **{"notes_of_yuri-unique": "yuri-unique wrote"}, take=3)
    finally:
        scrub_module.set_identity(*previous)
        scrub_module.reset_identity()
    first, second, third = recorded(sink)
    assert first["notes_of_yuri-unique"] == second["notes_of_yuri-unique"] == "draft"
    assert "notes_of_yuri-unique" not in third
    assert [v for k, v in third.items() if k.startswith("notes_of_")] == ["<user> wrote"]


class _Odd:
    def __repr__(self) -> str:
        return "<Odd owned by eve@example.com>"


class _Broken:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_non_json_values_fall_back_to_repr(sink: MemorySink) -> None:
    """Objects JSON cannot hold become their repr (scrubbed); containers are converted."""
    get_logger("app").info(
        "x",
        odd=_Odd(),
        broken=_Broken(),
        tup=(1, "a"),
        st=frozenset({2}),
        mapping={1: Path("rel/file.txt")},
        category_value=EventCategory.NETWORK,
    )
    (event,) = recorded(sink)
    assert event["odd"] == "<Odd owned by <email>>"
    assert event["broken"] == "<unrepresentable _Broken>"
    assert event["tup"] == [1, "a"]
    assert event["st"] == [2]
    assert event["mapping"] == {"1": "PosixPath('rel/file.txt')"} or event["mapping"] == {
        "1": "WindowsPath('rel/file.txt')"
    }
    assert event["category_value"] == "network"
    json.dumps(event, allow_nan=False)


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.builds(object),
)
field_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True), field_values),
    name=st.text(max_size=40),
)
def test_logging_never_raises_and_stays_json(
    fields: dict[str, Any], name: str, sink: MemorySink
) -> None:
    """Any field values and event names: no exception, and the event is strict JSON."""
    sink.events.clear()
    get_logger("app").info(name, **{k: v for k, v in fields.items() if k not in CORE_KEYS})
    assert sounding.flush()
    for event in sink.events:
        json.dumps(event, allow_nan=False)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    planted=st.sampled_from(["alice.smith@example.com", "4111 1111 1111 1111", "192.168.17.42"]),
    before=st.text(alphabet="abc xyz-_.:", max_size=20),
    after=st.text(alphabet="abc xyz-_.:", max_size=20),
)
def test_planted_personal_data_never_survives(
    planted: str, before: str, after: str, sink: MemorySink
) -> None:
    """Personal data planted in a field, in context and in the event name is never kept."""
    sink.events.clear()
    text = f"{before} {planted} {after}"
    with bound_context(note=text):
        get_logger("app").warning(text, detail=text, nested=[{"deep": text}])
    assert sounding.flush()
    assert planted not in json.dumps(sink.events)


# -- processors one by one ------------------------------------------------------------------


def test_processors_in_order() -> None:
    """The default pipeline is context, session, then JSON-ability and scrubbing."""
    assert (add_context, add_session, scrub_event) == PROCESSORS


def test_a_logged_event_is_what_the_processors_make(sink: MemorySink, clock: ManualClock) -> None:
    """The logger's call (the pipeline written out) records what running PROCESSORS in order
    on the same event gives: context filled in, session stamped, everything scrubbed."""
    with bound_context(take=7, where="/home/alice/take.wav", format="ctx"):
        get_logger("app").info("saved", format="wav", password="hunter2", ratio=0.5)
        expected: Event = {
            "timestamp": clock.time(),
            "level": "info",
            "category": "system",
            "event": "saved",
            "logger": "app",
            "format": "wav",
            "password": "hunter2",
            "ratio": 0.5,
        }
        for processor in PROCESSORS:
            result = processor(expected)
            assert result is not None
            expected = result
    assert sounding.flush()
    [event] = [e for e in recorded(sink) if e["event"] == "saved"]
    assert list(event.items()) == list(expected.items())
    assert event["password"] == "<redacted>"
    assert event["where"] == "~/take.wav"


def test_add_context_does_not_override_event_keys() -> None:
    """add_context fills in bound keys the event does not already have."""
    with bound_context(a=1, b=2):
        assert add_context({"b": "event"}) == {"b": "event", "a": 1}


def test_add_session_keeps_an_explicit_session_id() -> None:
    """add_session stamps the current session only when the event has none."""
    manager = get_session_manager()
    with capture():
        assert add_session({})["session_id"] == manager.current_session().session_id
        assert add_session({"session_id": "given"})["session_id"] == "given"


def test_scrub_event_makes_values_json() -> None:
    """scrub_event leaves JSON values alone, converts the rest, and works in place."""
    event: Event = {"a": 1, "b": "x", "c": None, "d": (1, 2), "e": {3}, "f": 2.5}
    assert scrub_event(event) is event
    assert event == {"a": 1, "b": "x", "c": None, "d": [1, 2], "e": [3], "f": 2.5}


def test_scrub_event_renames_personal_keys() -> None:
    """A key that is itself personal is scrubbed; two keys scrubbed alike both survive."""
    event: Event = {"alice@example.com": 1, "bob@example.com": 2, "n": 3}
    assert scrub_event(event) == {"<email>": 1, "<email>#2": 2, "n": 3}


def test_scrub_event_leaves_trusted_values() -> None:
    """scrub_event does not touch the timestamp, level or session id it generated itself."""
    event: Event = {"timestamp": 1.5, "level": "info", "session_id": "ab" * 16, "token": 5}
    assert scrub_event(event) == {
        "timestamp": 1.5,
        "level": "info",
        "session_id": "ab" * 16,
        "token": "<redacted>",
    }


def test_level_name_rounds_down() -> None:
    """Custom stdlib levels map to the standard level below them."""
    assert [level_name(n) for n in (1, 10, 15, 20, 35, 50, 99)] == [
        "debug",
        "debug",
        "debug",
        "info",
        "warning",
        "critical",
        "critical",
    ]


# -- never raising, local recording ------------------------------------------------------------


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot print")

    __repr__ = __str__


def test_pipeline_failure_is_counted_not_raised() -> None:
    """A failure inside the pipeline drops the event and is counted (raises only if strict)."""
    with strict(False), capture() as sink:
        get_logger("app").info(_Unprintable())  # type: ignore[arg-type]
        assert recorded(sink) == []
    assert health.counts()["log.record"] == 1
    with capture(), pytest.raises(InternalError):
        get_logger("app").info(_Unprintable())  # type: ignore[arg-type]


def test_non_str_event_name_is_converted(sink: MemorySink) -> None:
    """A non-str event name is recorded as its str()."""
    get_logger("app").info(404)  # type: ignore[arg-type]
    assert recorded(sink)[0]["event"] == "404"


def test_local_recording_off_records_nothing(clock: ManualClock) -> None:
    """With local_recording=False no event reaches the buffer."""
    sounding.configure(local_recording=False)
    with capture(clock):
        get_logger("app").error("x")
        assert len(events_module.buffer) == 0


# -- the JSON-lines file ------------------------------------------------------------------------


def test_jsonl_writes_one_strict_json_line_per_event(tmp_path: Path) -> None:
    """Each event becomes one line of strict JSON; odd values fall back."""
    path = tmp_path / "logs" / "events.jsonl"
    writer = JsonlWriter(path)
    writer.write([{"event": "a", "n": 1}, {"event": "b", "x": float("inf"), "o": object()}])
    writer.write([])
    writer.close()
    writer.close()  # idempotent
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"event": "a", "n": 1}
    second = json.loads(lines[1])
    assert second["x"] == "Infinity"
    assert second["o"].startswith("<object object")


def test_jsonl_permissions(tmp_path: Path) -> None:
    """The directory is created 0700 and the file 0600."""
    path = tmp_path / "private" / "events.jsonl"
    writer = JsonlWriter(path)
    writer.write([{"event": "a"}])
    writer.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_jsonl_rotation_keeps_the_configured_backups(tmp_path: Path) -> None:
    """Past max_bytes the file rotates to .1, .2, ...; older ones beyond backups go."""
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path, max_bytes=200, backups=2)
    for i in range(40):
        writer.write([{"event": "tick", "i": i, "pad": "x" * 20}])
    writer.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 200
    # The newest events are in the live file, in order across the files.
    numbers = [
        json.loads(line)["i"]
        for name in ("events.jsonl.2", "events.jsonl.1", "events.jsonl")
        for line in (tmp_path / name).read_text().splitlines()
    ]
    assert numbers == sorted(numbers)
    assert numbers[-1] == 39


def test_jsonl_rotation_without_backups(tmp_path: Path) -> None:
    """backups=0 starts the file over instead of keeping old ones."""
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path, max_bytes=100, backups=0)
    for i in range(20):
        writer.write([{"event": "tick", "i": i}])
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]
    assert path.stat().st_size <= 100


def test_jsonl_uses_settings_by_default(tmp_path: Path) -> None:
    """Without arguments the writer follows settings.log_path and its size limits."""
    sounding.configure(data_dir=tmp_path, log_file_max_bytes=1024, log_file_backups=1)
    writer = JsonlWriter()
    assert writer.path == tmp_path / "events.jsonl"
    for i in range(100):
        writer([{"event": "tick", "i": i}])
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "events.jsonl.1"]


def test_jsonl_recreates_a_deleted_file(tmp_path: Path) -> None:
    """If the file is deleted between writes, the next write starts a new one."""
    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path)
    writer.write([{"event": "a"}])
    path.unlink()
    writer.write([{"event": "b"}])
    writer.close()
    assert [json.loads(x)["event"] for x in path.read_text().splitlines()] == ["b"]


def test_jsonl_failure_is_counted_not_raised(tmp_path: Path) -> None:
    """An unwritable location is counted as log.file (raised only in strict mode)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("file")
    writer = JsonlWriter(blocker / "events.jsonl")
    with strict(False):
        writer.write([{"event": "a"}])
    assert health.counts()["log.file"] == 1
    with pytest.raises(InternalError):
        writer.write([{"event": "a"}])


def test_jsonl_as_runtime_output(tmp_path: Path, clock: ManualClock) -> None:
    """Registered as a runtime output, the writer receives every flushed event."""
    from sounding._runtime import get_runtime

    path = tmp_path / "events.jsonl"
    writer = JsonlWriter(path)
    with capture(clock):
        get_runtime().add_output(writer)
        get_logger("app").info("saved", format="wav", user="alice@example.com")
        assert sounding.flush()
    writer.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [e["event"] for e in lines] == ["session.start", "saved"]
    assert lines[1]["user"] == "<email>"


def test_dumps_event_is_compact() -> None:
    """dumps_event writes compact JSON without escaping non-ASCII text."""
    assert dumps_event({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'


def test_a_field_named_event_is_kept_beside_the_event_name(sink: MemorySink) -> None:
    """log.info("name", event=...) records the name and keeps the field as event_ (counted)."""
    get_logger("recorder").info("recording.saved", event="user text", category="storage")
    (event,) = recorded(sink)
    assert event["event"] == "recording.saved"
    assert event["event_"] == "user text"
    assert event["category"] == "storage"
    assert health.counts()["log.field_renamed"] == 1
