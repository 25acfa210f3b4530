"""Sessions: ids, attributes, start/end records, lazy default, per-context scopes, fork, exit."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import sounding
from sounding.collection.log import get_logger
from sounding.collection.session import (
    SESSION_END,
    SESSION_START,
    SessionManager,
    current_session,
    end_session,
    session_scope,
    start_session,
)
from sounding.core.types import Event
from sounding.testing import ManualClock, MemorySink, capture

# Run-time failures raise in these tests (conftest resets state around each test).
pytestmark = pytest.mark.usefixtures("strict_mode")


@pytest.fixture
def sink(clock: ManualClock) -> Iterator[MemorySink]:
    sounding.configure(app_version="2.3.4")
    with capture(clock) as s:
        yield s


def flushed(sink: MemorySink) -> list[Event]:
    assert sounding.flush()
    return sink.events


def test_start_session_fields(sink: MemorySink, clock: ManualClock) -> None:
    """A session has a random 32-hex id, the app version, platform, Python and start time."""
    s = start_session(mode="batch")
    assert len(s.session_id) == 32
    int(s.session_id, 16)
    assert s.app_version == "2.3.4"
    assert s.platform == sys.platform
    assert s.python_version == platform.python_version()
    assert s.started == clock.time()
    assert s.attrs == {"mode": "batch"}
    assert s.active
    assert start_session().session_id != s.session_id


def test_start_and_end_records(sink: MemorySink, clock: ManualClock) -> None:
    """Starting records session.start, ending session.end with the duration in seconds."""
    s = start_session(mode="batch")
    clock.advance(5.0)
    assert s.duration == pytest.approx(5.0)
    assert end_session() is s
    clock.advance(3.0)
    assert s.duration == pytest.approx(5.0)  # final once ended
    events = flushed(sink)
    assert [e["event"] for e in events] == [SESSION_START, SESSION_END]
    start, end = events
    for e in events:
        assert e["category"] == "session"
        assert e["session_id"] == s.session_id
        assert e["app_version"] == "2.3.4"
        assert e["platform"] == sys.platform
        assert e["python_version"] == platform.python_version()
    assert start["mode"] == "batch"
    assert "duration" not in start
    assert end["duration"] == pytest.approx(5.0)
    assert end["ended"] == pytest.approx(end["started"] + 5.0)


def test_end_session_is_idempotent(sink: MemorySink) -> None:
    """Ending twice records one session.end; ending with no session returns None."""
    start_session()
    assert end_session() is not None
    assert end_session() is None
    assert [e["event"] for e in flushed(sink)].count(SESSION_END) == 1


def test_starting_a_session_ends_the_previous(sink: MemorySink) -> None:
    """A new process-wide session ends the running one first."""
    first = start_session()
    second = start_session()
    assert not first.active
    assert second.active
    names = [(e["event"], e["session_id"]) for e in flushed(sink)]
    assert names == [
        (SESSION_START, first.session_id),
        (SESSION_END, first.session_id),
        (SESSION_START, second.session_id),
    ]


def test_default_session_starts_lazily_on_first_event(sink: MemorySink) -> None:
    """The first event starts a default session; every event carries its id."""
    log = get_logger("app")
    log.info("one")
    log.info("two")
    events = flushed(sink)
    assert [e["event"] for e in events] == [SESSION_START, "one", "two"]
    assert len({e["session_id"] for e in events}) == 1
    assert events[1]["session_id"] == current_session().session_id


def test_session_attrs_are_scrubbed(sink: MemorySink) -> None:
    """Attributes recorded with session.start pass the scrubber."""
    start_session(owner="alice@example.com", api_token="abc123")
    (event,) = flushed(sink)
    assert event["owner"] == "<email>"
    assert event["api_token"] == "<redacted>"


def test_session_records_ignore_the_level_filter(clock: ManualClock) -> None:
    """Session records are kept even when the log level filters out info events."""
    sounding.configure(log_level="error")
    with capture(clock) as sink:
        start_session()
        get_logger("app").info("dropped")
        events = flushed(sink)
    assert [e["event"] for e in events] == [SESSION_START]


def test_session_scope_overrides_in_context_only(sink: MemorySink) -> None:
    """session_scope gives the block its own session and ends it on exit."""
    process = start_session()
    log = get_logger("app")
    with session_scope(job="nightly") as job:
        assert current_session() is job
        log.info("inside")
    assert current_session() is process
    assert not job.active
    log.info("outside")
    by_name = {e["event"]: e for e in flushed(sink) if e["category"] != "session"}
    assert by_name["inside"]["session_id"] == job.session_id
    assert by_name["outside"]["session_id"] == process.session_id
    ends = [e for e in sink.events if e["event"] == SESSION_END]
    assert [e["session_id"] for e in ends] == [job.session_id]
    assert ends[0]["job"] == "nightly"


def test_session_scopes_in_concurrent_tasks_do_not_bleed(sink: MemorySink) -> None:
    """Concurrent asyncio tasks each in their own session_scope see only their own."""

    async def worker(i: int) -> tuple[str, str]:
        with session_scope(worker=i) as s:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return s.session_id, current_session().session_id

    async def main() -> list[tuple[str, str]]:
        return list(await asyncio.gather(*(worker(i) for i in range(5))))

    results = asyncio.run(main())
    assert all(own == seen for own, seen in results)
    assert len({own for own, _ in results}) == 5


def test_manager_without_records_records_nothing(sink: MemorySink) -> None:
    """A SessionManager with record_events=False keeps sessions but records no event."""
    manager = SessionManager(record_events=False)
    s = manager.start_session()
    assert manager.current_session() is s
    assert manager.current_session_id() == s.session_id
    assert manager.end_session() is s
    assert flushed(sink) == []


def test_duration_never_negative() -> None:
    """A clock that goes backwards gives a zero duration, not a negative one."""

    class Backwards:
        def __init__(self) -> None:
            self.mono = 100.0

        def time(self) -> float:
            return 1_767_225_600.0

        def monotonic(self) -> float:
            self.mono -= 1.0
            return self.mono

    from sounding.core.clock import set_clock

    set_clock(Backwards())
    manager = SessionManager(record_events=False)
    s = manager.start_session()
    assert s.duration == 0.0
    manager.end_session()
    assert s.duration == 0.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_forked_child_gets_a_new_session(sink: MemorySink) -> None:
    """After fork() the child's events carry a new session id naming the parent's."""
    parent = start_session(mode="server")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running pytest's cleanup
        try:
            os.close(read_fd)
            child = current_session()
            payload = {
                "id": child.session_id,
                "parent": child.attrs.get("parent_session_id"),
                "mode": child.attrs.get("mode"),
            }
            os.write(write_fd, json.dumps(payload).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        data = json.loads(fh.read().decode())
    os.waitpid(pid, 0)
    assert data["id"] != parent.session_id
    assert data["parent"] == parent.session_id
    assert data["mode"] == "server"
    assert current_session() is parent  # the parent is unaffected


def test_session_ends_at_interpreter_exit(tmp_path: Path) -> None:
    """At exit the default session ends and its session.end reaches the final flush."""
    src = Path(sounding.__file__).parents[1]
    script = textwrap.dedent(
        """
        import sys
        from sounding.core.config import configure
        from sounding._runtime import get_runtime
        from sounding.collection.jsonl import JsonlWriter
        from sounding.collection.log import get_logger
        from sounding.collection.metrics import get_registry

        configure(data_dir=sys.argv[1])
        # Create the registry before the first event: on main at the time of writing, a
        # first emit that starts the runtime before any instrument exists deadlocks in
        # Runtime._start (reported to the lead).
        get_registry()
        get_runtime().add_output(JsonlWriter(sys.argv[1] + "/out.jsonl"))
        get_logger("child").info("hello")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, check=True, timeout=60)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    names = [json.loads(line)["event"] for line in lines]
    assert names == [SESSION_START, "hello", SESSION_END]


def test_a_default_session_starts_with_its_first_event(clock: ManualClock) -> None:
    """The lazily started session's start is the first event's timestamp, not later."""
    sounding.configure(app_version="2.3.4")
    with capture(clock) as sink:
        log = get_logger("app")
        first_ts = clock.time()
        real_time = clock.time

        def later() -> float:
            # Time moves on while the first event is processed.
            now = real_time()
            clock.advance(0.25)
            return now

        clock.time = later  # type: ignore[method-assign]
        log.info("app.first")
        clock.time = real_time  # type: ignore[method-assign]
        events = flushed(sink)
    [start] = [e for e in events if e["event"] == SESSION_START]
    [first] = [e for e in events if e["event"] == "app.first"]
    assert first["timestamp"] == first_ts
    assert start["started"] == first["timestamp"] == start["timestamp"]
    assert current_session().started == first_ts


def test_a_forked_childs_session_has_the_parent_session_id_attribute(sink: MemorySink) -> None:
    """In a forked child, Session.parent_session_id names the parent's session."""
    parent = start_session()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            child = current_session()
            os.write(write_fd, json.dumps([child.parent_session_id, child.fields()]).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        attr, fields = json.loads(fh.read().decode())
    os.waitpid(pid, 0)
    assert attr == parent.session_id
    assert fields["parent_session_id"] == parent.session_id
    assert parent.parent_session_id is None
