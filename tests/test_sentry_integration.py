"""Opt-in Sentry reporting with the real sentry-sdk posting to a local endpoint on 127.0.0.1.

Tests marked ``needs_sentry`` run the real SDK; the others pin down the behaviour without it
(``filter_event``, the outbox, argument checks, and a missing SDK made unimportable).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sounding
from sentry_server import free_port, hanging_server, sentry_server
from sounding.collection.errors import SentryContext
from sounding.collection.scrub import reset_identity, set_identity
from sounding.core import health
from sounding.exceptions import ConfigurationError, InvalidTypeError, InvalidValueError
from sounding.integrations import sentry as integration
from sounding.integrations.sentry import (
    Outbox,
    filter_event,
    initialize_telemetry,
    outbox_path,
    shutdown_telemetry,
)

USER, HOST = "alicebox", "alicebox-laptop"
PLANTED = [
    "alice@example.com",
    "192.168.17.42",
    "2001:db8::8a2e:370:7334",
    "/home/alicebox",
    "4111 1111 1111 1111",
    "4111111111111111",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "AKIAIOSFODNN7EXAMPLE",
    "hunter2",
    USER,
    HOST,
]
SECRET_TEXT = (
    "user alicebox on alicebox-laptop (alice@example.com, 192.168.17.42, "
    "2001:db8::8a2e:370:7334) opened /home/alicebox/take1.wav, paid with 4111 1111 1111 1111 "
    "using ghp_abcdefghijklmnopqrstuvwxyz0123456789 and AKIAIOSFODNN7EXAMPLE password=hunter2"
)


@pytest.fixture(autouse=True)
def _clean_integration() -> Iterator[None]:
    """Every test starts and ends with remote reporting off and the real identity."""
    set_identity(user=USER, host=HOST)
    yield
    shutdown_telemetry(0.0)
    integration._state.warned_missing = False
    integration._state.warned_not_started.clear()
    reset_identity()


def _level(level: str) -> None:
    sounding.configure(telemetry_level=level, local_recording=False)


# =========================================================================================
# Without the SDK: filter_event, outbox, arguments
# =========================================================================================


def _error_event(**extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "0123456789abcdef0123456789abcdef",
        "timestamp": "2026-01-01T00:00:00Z",
        "level": "error",
        "platform": "python",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": SECRET_TEXT,
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {
                        "frames": [
                            {
                                "abs_path": "/home/alicebox/app/main.py",
                                "filename": "app/main.py",
                                "function": "run",
                                "vars": {"email": "alice@example.com", "token": "abc"},
                                "context_line": "secret = 'hunter2'",
                            }
                        ]
                    },
                }
            ]
        },
        "breadcrumbs": {"values": [{"message": SECRET_TEXT, "data": {"url": SECRET_TEXT}}]},
        "tags": {"owner": "alice@example.com"},
        "extra": {"note": SECRET_TEXT},
        "contexts": {"device": {"name": HOST}},
    }
    event.update(extra)
    return event


def test_filter_event_scrubs_every_string() -> None:
    """No planted value survives anywhere in the filtered event."""
    _level("error")
    out = filter_event(_error_event(), {})
    assert out is not None
    text = json.dumps(out)
    for planted in PLANTED:
        assert planted not in text, planted
    assert out["event_id"] == "0123456789abcdef0123456789abcdef"
    frame = out["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["abs_path"] == "~/app/main.py"
    # No source lines and no local variables leave the machine.
    assert "vars" not in frame
    assert "context_line" not in frame


def test_filter_event_makes_frames_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame under the working directory (a temporary one too) is sent relative to it."""
    _level("error")
    monkeypatch.chdir(tmp_path)
    event = _error_event()
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][0]
    frame["abs_path"] = str(tmp_path / "app" / "main.py")
    out = filter_event(event, {})
    assert out is not None
    sent = out["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert sent["abs_path"] == "app/main.py"
    assert str(tmp_path) not in json.dumps(out)


def test_filter_event_removes_identifying_keys() -> None:
    """user, server_name, modules and unknown keys go; request keeps method and path only."""
    _level("error")
    event = _error_event(
        user={"id": "42", "ip_address": "192.168.17.42"},
        server_name=HOST,
        modules={"numpy": "1.0"},
        surprise="x",
        request={
            "method": "POST",
            "url": "https://api.example.com/v1/items?email=alice@example.com",
            "headers": {"Authorization": "Bearer abc"},
            "cookies": "session=1",
            "query_string": "email=alice@example.com",
            "data": {"password": "hunter2"},
            "env": {"REMOTE_ADDR": "192.168.17.42"},
        },
    )
    out = filter_event(event, {})
    assert out is not None
    for key in ("user", "server_name", "modules", "surprise"):
        assert key not in out
    assert out["request"] == {"method": "POST", "url": "https://api.example.com/v1/items"}
    assert set(out) <= integration.ALLOWED_EVENT_KEYS


@pytest.mark.parametrize(
    ("level", "handled", "event_level", "sent"),
    [
        ("off", False, "error", False),
        ("crash", True, "error", False),
        ("crash", False, "fatal", True),
        ("error", True, "error", True),
        ("error", None, "info", False),
        ("error", None, "error", True),
        ("all", None, "info", True),
        ("all", True, "warning", True),
    ],
)
def test_filter_event_respects_level(
    level: str, handled: bool | None, event_level: str, sent: bool
) -> None:
    """crash sends only unhandled exceptions, error errors, all everything, off nothing."""
    _level(level)
    event: dict[str, Any] = {"level": event_level, "message": "hello"}
    if handled is not None:
        event["exception"] = {
            "values": [{"type": "E", "value": "v", "mechanism": {"handled": handled}}]
        }
    assert (filter_event(event, {}) is not None) is sent


def test_filter_event_level_follows_configuration_changes() -> None:
    """Lowering the level later applies to the next event."""
    _level("all")
    assert filter_event({"level": "info"}, {}) is not None
    _level("error")
    assert filter_event({"level": "info"}, {}) is None


def test_filter_event_drops_duplicates_of_one_exception() -> None:
    """The same exception object passes once (boundary capture, then the excepthook)."""
    _level("error")
    exc = ValueError("x")
    hint = {"exc_info": (ValueError, exc, None)}
    assert filter_event(_error_event(), hint) is not None
    assert filter_event(_error_event(), hint) is None


@pytest.mark.parametrize("event", [None, "text", 3, ["list"]])
def test_filter_event_drops_malformed(event: Any) -> None:
    """Anything that is not an event dict is dropped, not raised on."""
    _level("all")
    assert filter_event(event, None) is None


def test_filter_event_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """If scrubbing breaks, the event is dropped (never sent unscrubbed) and counted."""
    _level("error")

    def broken(value: Any) -> Any:
        raise RuntimeError("scrubber bug")

    monkeypatch.setattr(integration, "_scrub", broken)
    assert filter_event(_error_event(), {}) is None
    assert health.counts()["sentry.filter"] == 1


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=_json,
    planted=st.sampled_from(PLANTED[:8]),
    key=st.sampled_from(["extra", "tags", "contexts", "message", "breadcrumbs", "exception"]),
)
def test_filter_event_never_leaks(payload: Any, planted: str, key: str) -> None:
    """A planted value nested anywhere under any allowed key never comes out."""
    _level("all")
    event = {"level": "error", key: {"a": [payload, f"x {planted} y"], "b": payload}}
    out = filter_event(event, None)
    assert out is not None
    assert planted not in json.dumps(out, default=repr)


def test_scrub_breadcrumb() -> None:
    """Breadcrumbs are scrubbed as they are added."""
    crumb = scrub = integration.scrub_breadcrumb({"message": SECRET_TEXT, "category": "x"}, {})
    assert crumb is scrub
    for planted in PLANTED:
        assert planted not in json.dumps(crumb)


def test_outbox_is_private_bounded_and_counts_drops(tmp_path: Path) -> None:
    """The outbox file is 0600, keeps at most max_items (oldest dropped, counted)."""
    box = Outbox(tmp_path / "sub" / "outbox.db", max_items=3)
    ids = [box.put(f"envelope {i}".encode()) for i in range(5)]
    assert all(isinstance(i, int) for i in ids)
    assert len(box) == 3
    assert [d for _, d in box.pending()] == [b"envelope 2", b"envelope 3", b"envelope 4"]
    assert health.counts()["sentry.outbox.dropped"] == 2
    assert stat.S_IMODE(os.stat(box.path).st_mode) == 0o600
    box.delete(ids[3])  # type: ignore[arg-type]
    assert [d for _, d in box.pending(exclude=[ids[4]])] == [b"envelope 2"]  # type: ignore[list-item]
    box.close()
    box.close()
    assert box.put(b"after close") is None


def test_outbox_survives_a_new_process_object(tmp_path: Path) -> None:
    """What one Outbox kept, a later one (a later run) reads."""
    first = Outbox(tmp_path / "outbox.db")
    first.put(b"kept")
    first.close()
    second = Outbox(tmp_path / "outbox.db")
    assert [d for _, d in second.pending()] == [b"kept"]


def test_outbox_unwritable_location_is_counted(tmp_path: Path) -> None:
    """An outbox that cannot be created reports failure once and keeps nothing."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    box = Outbox(blocker / "outbox.db")
    assert box.put(b"x") is None
    assert box.pending() == []
    assert health.counts()["sentry.outbox.open"] == 1


def test_outbox_path_in_data_dir(data_dir: Path) -> None:
    """The outbox lives in the data directory."""
    assert outbox_path() == data_dir / "outbox.db"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"dsn": 42}, InvalidTypeError),
        ({"enabled": "yes"}, InvalidTypeError),
        ({"sample_rate": 1.5}, InvalidValueError),
        ({"sample_rate": True}, InvalidValueError),
        ({"before_send": "hook"}, InvalidTypeError),
        ({"shutdown_timeout": -1}, InvalidValueError),
        ({"shutdown_timeout": float("nan")}, InvalidValueError),
        ({"max_queued": 0}, InvalidValueError),
        ({"environment": 3}, InvalidTypeError),
    ],
)
def test_invalid_arguments_raise_even_when_disabled(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Argument mistakes surface at once, whatever the telemetry level."""
    with pytest.raises(error):
        initialize_telemetry(**kwargs)


def test_disabled_by_default_initialises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """enabled defaults to False: nothing starts, sentry-sdk is not even imported."""
    _level("all")
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    assert initialize_telemetry("http://public@127.0.0.1:9/1") is False
    assert not integration.is_enabled()


def test_missing_sdk_warns_once_and_stays_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without sentry-sdk: one warning naming the extra, False, errors still recorded."""
    _level("error")
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    with pytest.warns(RuntimeWarning, match=r"sounding\[sentry\]"):
        assert initialize_telemetry("http://public@127.0.0.1:9/1", enabled=True) is False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert initialize_telemetry("http://public@127.0.0.1:9/1", enabled=True) is False
    with (
        pytest.raises(ValueError, match="still local"),
        SentryContext(operation="nosdk.op") as ctx,
    ):
        raise ValueError("still local")
    assert ctx.report is not None


@pytest.mark.parametrize("level", ["off"])
def test_level_off_initialises_nothing_without_sdk(
    level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At level off the SDK is never imported; one RuntimeWarning says why, not the extra."""
    _level(level)
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    with pytest.warns(RuntimeWarning, match="telemetry level is off") as caught:
        assert initialize_telemetry("http://public@127.0.0.1:9/1", enabled=True) is False
    assert not any("sounding[sentry]" in str(w.message) for w in caught)


# =========================================================================================
# With the real SDK and a local endpoint
# =========================================================================================


def _raw(server: Any) -> bytes:
    return b"\n".join(server.envelopes)


def _fail_in_context(message: str = SECRET_TEXT, **tags: Any) -> None:
    ctx = SentryContext(operation="rec.start", **tags)

    def body() -> None:
        with ctx:
            ctx.add_breadcrumb(f"opened {SECRET_TEXT}", category="io", data={"path": SECRET_TEXT})
            ctx.set_metric("frames", 1024)
            raise ValueError(message)

    with pytest.raises(ValueError, match=re.escape(message)):
        body()


@pytest.mark.needs_sentry
def test_planted_personal_data_never_reaches_the_envelope() -> None:
    """Everything personal planted in message, tags, breadcrumbs, extra, user, paths is gone."""
    import sentry_sdk

    _level("all")
    with sentry_server() as server:
        assert initialize_telemetry(server.dsn, enabled=True, environment="test") is True
        sentry_sdk.set_user({"email": "alice@example.com", "ip_address": "192.168.17.42"})
        sentry_sdk.set_tag("owner", "alice@example.com")
        sentry_sdk.set_extra("note", SECRET_TEXT)
        sentry_sdk.add_breadcrumb(message=SECRET_TEXT, data={"password": "hunter2"})
        _fail_in_context(owner="alice@example.com")
        sentry_sdk.capture_message(SECRET_TEXT, level="error")
        try:
            raise OSError(SECRET_TEXT)
        except OSError:
            sentry_sdk.capture_exception()
        shutdown_telemetry(5.0)
        server.wait_for(3)
        raw = _raw(server)
    assert len(server.envelopes) == 3
    for planted in PLANTED:
        assert planted.encode() not in raw, planted
    for event in server.events():
        assert "user" not in event
        assert "server_name" not in event
        assert set(event) <= integration.ALLOWED_EVENT_KEYS


@pytest.mark.needs_sentry
def test_context_capture_carries_the_same_data() -> None:
    """A SentryContext error arrives with its tags, breadcrumbs, metrics and severity."""
    _level("error")
    with sentry_server() as server:
        initialize_telemetry(server.dsn, enabled=True)
        _fail_in_context(message="bad take", device="usb")
        shutdown_telemetry(5.0)
        [event] = server.events()
    assert event["tags"]["device"] == "usb"
    assert event["tags"]["operation"] == "rec.start"
    assert event["level"] == "warning"  # ValueError is MEDIUM
    assert event["contexts"]["sounding"]["metrics"] == {"frames": 1024.0}
    [value] = event["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["value"] == "bad take"
    assert value["mechanism"]["handled"] is True
    crumbs = event["breadcrumbs"]["values"]
    assert any(c.get("category") == "io" for c in crumbs)


@pytest.mark.needs_sentry
def test_context_tags_do_not_leak_into_later_events() -> None:
    """Tags of a SentryContext live in their own scope."""
    import sentry_sdk

    _level("all")
    with sentry_server() as server:
        initialize_telemetry(server.dsn, enabled=True)
        _fail_in_context(device="usb")
        sentry_sdk.capture_message("later", level="error")
        shutdown_telemetry(5.0)
        events = server.events()
    later = [e for e in events if "exception" not in e]
    assert len(later) == 1
    assert "device" not in later[0].get("tags", {})
    assert "operation" not in later[0].get("tags", {})


@pytest.mark.needs_sentry
def test_boundary_failure_is_captured() -> None:
    """An operation_boundary failure is reported with its operation tag."""
    from sounding.collection.boundary import operation_boundary

    _level("error")

    @operation_boundary("export.file", fallback_value=None)
    def export() -> None:
        raise PermissionError("denied for /home/alicebox/out.wav")

    with sentry_server() as server:
        initialize_telemetry(server.dsn, enabled=True)
        export()
        shutdown_telemetry(5.0)
        [event] = server.events()
    assert event["tags"]["operation"] == "export.file"
    assert event["level"] == "error"  # OSError is HIGH
    assert b"alicebox" not in _raw(server)


@pytest.mark.needs_sentry
@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ({"level": "off"}, "level off"),
        ({"level": "all", "env": {"DO_NOT_TRACK": "1"}}, "DO_NOT_TRACK"),
        ({"level": "all", "env": {"SOUNDING_TELEMETRY": "off"}}, "SOUNDING_TELEMETRY=off"),
        ({"level": "all", "enabled": False}, "not enabled"),
    ],
)
def test_nothing_is_sent_without_opt_in(
    setup: dict[str, Any], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without both the app's opt-in and the user's consent no request reaches the server."""
    import sentry_sdk

    for key, value in setup.get("env", {}).items():
        monkeypatch.setenv(key, value)
    _level(setup["level"])
    with sentry_server() as server:
        started = initialize_telemetry(server.dsn, enabled=setup.get("enabled", True))
        _fail_in_context()
        sentry_sdk.capture_message("hello", level="error")
        sentry_sdk.flush(2.0)
        assert started is False, why
        assert not sentry_sdk.get_client().is_active()
        assert server.requests == []


@pytest.mark.needs_sentry
def test_crash_level_sends_only_unhandled(capsys: pytest.CaptureFixture[str]) -> None:
    """At crash level handled errors stay local; an unhandled exception is sent."""
    _level("crash")
    with sentry_server() as server:
        initialize_telemetry(server.dsn, enabled=True)
        _fail_in_context()
        try:
            raise LookupError("nobody caught this")
        except LookupError:
            exc_info = sys.exc_info()
        sys.excepthook(*exc_info)  # what the interpreter does with an uncaught exception
        shutdown_telemetry(5.0)
        events = server.events()
    capsys.readouterr()
    assert len(events) == 1
    [value] = events[0]["exception"]["values"]
    assert value["type"] == "LookupError"
    assert value["mechanism"]["handled"] is False


@pytest.mark.needs_sentry
def test_error_level_drops_info_messages() -> None:
    """At error level messages below error stay local."""
    import sentry_sdk

    _level("error")
    with sentry_server() as server:
        initialize_telemetry(server.dsn, enabled=True)
        sentry_sdk.capture_message("just info")
        sentry_sdk.capture_message("really bad", level="error")
        shutdown_telemetry(5.0)
        messages = [e.get("message") for e in server.events()]
    assert messages == ["really bad"]


@pytest.mark.needs_sentry
def test_lowering_level_to_off_stops_reporting() -> None:
    """configure(telemetry_level='off') while running shuts the integration down."""
    import sentry_sdk

    _level("error")
    with sentry_server() as server:
        assert initialize_telemetry(server.dsn, enabled=True)
        _level("off")
        assert not integration.is_enabled()
        sentry_sdk.capture_message("after off", level="error")
        sentry_sdk.flush(1.0)
        assert server.requests == []


@pytest.mark.needs_sentry
def test_user_before_send_runs_first_and_cannot_break_anything() -> None:
    """The app's hook may enrich or drop; PII it adds is scrubbed; if it raises, sending goes on."""
    import sentry_sdk

    _level("all")
    calls: list[str] = []

    def hook(event: dict[str, Any], hint: Any) -> dict[str, Any] | None:
        message = event.get("message", "")
        calls.append(message)
        if message == "drop me":
            return None
        if message == "explode":
            raise RuntimeError("hook bug")
        event.setdefault("extra", {})["added"] = "contact alice@example.com"
        return event

    with sentry_server() as server:
        initialize_telemetry(server.dsn, enabled=True, before_send=hook)
        for message in ("keep", "drop me", "explode"):
            sentry_sdk.capture_message(message, level="error")
        shutdown_telemetry(5.0)
        messages = sorted(e.get("message") for e in server.events())
    assert calls == ["keep", "drop me", "explode"]
    assert messages == ["explode", "keep"]
    assert b"alice@example.com" not in _raw(server)
    assert health.counts()["sentry.before_send"] == 1


@pytest.mark.needs_sentry
def test_events_queued_while_offline_arrive_on_a_later_run(data_dir: Path) -> None:
    """With the endpoint down the event waits in the outbox; a later run delivers it once."""
    import sentry_sdk

    _level("error")
    port = free_port()
    dsn = f"http://public@127.0.0.1:{port}/1"
    assert initialize_telemetry(dsn, enabled=True, shutdown_timeout=1.0)
    sentry_sdk.capture_message("sent while offline", level="error")
    shutdown_telemetry()
    # Written before sending, so it is kept whether or not the attempt has ended yet.
    assert len(Outbox(data_dir / "outbox.db")) == 1

    with sentry_server(port=port) as server:
        assert initialize_telemetry(dsn, enabled=True)
        server.wait_for(1)
        shutdown_telemetry(5.0)
        messages = [e.get("message") for e in server.events()]
    assert messages == ["sent while offline"]
    assert len(Outbox(data_dir / "outbox.db")) == 0


@pytest.mark.needs_sentry
def test_failed_sends_are_retried_after_a_success_in_the_same_run() -> None:
    """Once the server answers again, what failed earlier in the run is sent too."""
    import sentry_sdk

    _level("error")
    with sentry_server(status=503) as server:
        initialize_telemetry(server.dsn, enabled=True, shutdown_timeout=3.0)
        sentry_sdk.capture_message("first", level="error")
        sentry_sdk.flush(3.0)
        assert server.envelopes == []  # the 503 was not accepted
        server.status = 200
        sentry_sdk.capture_message("second", level="error")
        server.wait_for(2)
        shutdown_telemetry(5.0)
        messages = sorted(e.get("message") for e in server.events())
    assert messages == ["first", "second"]


@pytest.mark.needs_sentry
def test_rejected_envelopes_are_not_kept(data_dir: Path) -> None:
    """A 400 answer is final: the envelope is dropped from the outbox and counted."""
    import sentry_sdk

    _level("error")
    with sentry_server(status=400) as server:
        initialize_telemetry(server.dsn, enabled=True)
        sentry_sdk.capture_message("bad request", level="error")
        shutdown_telemetry(5.0)
        assert len(server.requests) == 1
    assert len(Outbox(data_dir / "outbox.db")) == 0
    assert health.counts()["sentry.rejected"] == 1


@pytest.mark.needs_sentry
def test_replayed_envelopes_are_scrubbed_again(data_dir: Path) -> None:
    """An envelope written by an older run is filtered again before it is sent."""
    from sentry_sdk.envelope import Envelope

    _level("error")
    old = Envelope(headers={"event_id": "0" * 32})
    old.add_event(_error_event(user={"email": "alice@example.com"}, server_name=HOST))
    box = Outbox(data_dir / "outbox.db")
    box.put(old.serialize())
    box.close()
    with sentry_server() as server:
        initialize_telemetry(server.dsn, enabled=True)
        server.wait_for(1)
        shutdown_telemetry(5.0)
        raw = _raw(server)
    assert len(server.envelopes) == 1
    for planted in PLANTED:
        assert planted.encode() not in raw, planted


@pytest.mark.needs_sentry
def test_hanging_endpoint_does_not_hold_shutdown(data_dir: Path) -> None:
    """A server that accepts and never answers cannot hold shutdown past its budget; the
    event stays in the outbox for a later run."""
    import sentry_sdk

    _level("error")
    budget = 1.0
    with hanging_server() as server:
        initialize_telemetry(server.dsn, enabled=True, shutdown_timeout=budget)
        sentry_sdk.capture_message("into the void", level="error")
        started = time.monotonic()
        shutdown_telemetry()
        elapsed = time.monotonic() - started
    assert elapsed < budget + 3.0  # a behaviour bound, not a benchmark
    assert len(Outbox(data_dir / "outbox.db")) == 1


_APP = textwrap.dedent(
    """
    import sys, sounding
    from sounding.integrations.sentry import initialize_telemetry
    from sounding.collection.errors import SentryContext
    sounding.configure(telemetry_level="error", data_dir=sys.argv[2])
    assert initialize_telemetry(sys.argv[1], enabled=True, shutdown_timeout=1.0)
    if sys.argv[3] == "fail":
        try:
            with SentryContext(operation="app.run"):
                raise RuntimeError("reported from " + sys.argv[3])
        except RuntimeError:
            pass
    print("done", flush=True)
    """
)


def _run_app(dsn: str, data: Path, mode: str) -> subprocess.CompletedProcess[str]:
    """Run a small application in its own interpreter (its exit runs the atexit path)."""
    import sounding as pkg

    env = {**os.environ, "PYTHONPATH": str(Path(pkg.__file__).parents[1])}
    for name in ("DO_NOT_TRACK", "SOUNDING_TELEMETRY", "SENTRY_DSN"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-c", _APP, dsn, str(data), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    return proc


@pytest.mark.needs_sentry
@pytest.mark.slow
def test_offline_process_report_arrives_with_the_next_run(tmp_path: Path) -> None:
    """One process fails while the server is down and exits; the next run sends its report."""
    port = free_port()
    dsn = f"http://public@127.0.0.1:{port}/1"
    _run_app(dsn, tmp_path / "data", "fail")
    assert len(Outbox(tmp_path / "data" / "outbox.db")) == 1
    with sentry_server(port=port) as server:
        _run_app(dsn, tmp_path / "data", "quiet")
        server.wait_for(1)
        [event] = server.events()
    assert event["exception"]["values"][0]["value"] == "reported from fail"
    assert len(Outbox(tmp_path / "data" / "outbox.db")) == 0


@pytest.mark.needs_sentry
@pytest.mark.slow
def test_process_exit_with_hanging_endpoint_is_bounded(tmp_path: Path) -> None:
    """A real process that reported to a hung server exits within its budget (atexit path)."""
    with hanging_server() as server:
        started = time.monotonic()
        _run_app(server.dsn, tmp_path / "data", "fail")
        elapsed = time.monotonic() - started
    # Interpreter start and imports plus a 1 s budget; generous bound, not a benchmark.
    assert elapsed < 1.0 + 3.0 + 3.0
    assert len(Outbox(tmp_path / "data" / "outbox.db")) == 1


@pytest.mark.needs_sentry
def test_invalid_dsn_raises_configuration_error() -> None:
    """A malformed DSN is a configuration mistake, reported at once."""
    _level("error")
    with pytest.raises(ConfigurationError, match="dsn"):
        initialize_telemetry("not a dsn", enabled=True)


@pytest.mark.needs_sentry
def test_no_dsn_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Enabled without any DSN (argument or SENTRY_DSN) starts nothing."""
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    _level("error")
    assert initialize_telemetry(None, enabled=True) is False


@pytest.mark.needs_sentry
def test_safe_integrations_only() -> None:
    """Only the vetted integrations run: no argv, modules, logging or stdlib (http) capture."""
    import sentry_sdk

    _level("error")
    with sentry_server() as server:
        initialize_telemetry(server.dsn, enabled=True)
        options = sentry_sdk.get_client().options
        names = set(sentry_sdk.get_client().integrations)
    assert names == {"excepthook", "atexit"}
    assert options["send_default_pii"] is False
    assert options["include_local_variables"] is False


@pytest.mark.needs_sentry
def test_reinitialise_and_disable() -> None:
    """Calling again reconfigures; enabled=False shuts a running integration down."""
    _level("error")
    with sentry_server() as server:
        assert initialize_telemetry(server.dsn, enabled=True)
        assert initialize_telemetry(server.dsn, enabled=True, environment="staging")
        assert integration.is_enabled()
        assert initialize_telemetry(server.dsn, enabled=False) is False
        assert not integration.is_enabled()
        assert shutdown_telemetry() is False
