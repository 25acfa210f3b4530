"""The JSON-lines encoding: lines built from their parts, the fields' text shared with the
store's row, and what the careful path writes."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sounding.collection import jsonl
from sounding.collection.jsonl import JsonlWriter, dumps_event, encode_fields
from sounding.core import health
from sounding.core.clock import set_clock
from sounding.core.types import Event
from sounding.storage import SQLiteSink
from sounding.testing import ManualClock

T0 = 1_764_597_000.123456
CORE: dict[str, Any] = {
    "timestamp": T0,
    "level": "info",
    "category": "storage",
    "event": "recording.saved",
    "logger": "recorder",
}


def event(**fields: Any) -> Event:
    """A pipeline-shaped event: the core keys, the fields, then the session id."""
    return {**CORE, **fields, "session_id": "3f2a9c1e5b7d4e8f"}


def stored_fields(path: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return [str(r[0]) for r in conn.execute("SELECT fields FROM events ORDER BY id")]
    finally:
        conn.close()


def written(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(autouse=True)
def _clock() -> None:
    """Pin "now" just after the events, so retention keeps them."""
    set_clock(ManualClock(T0 + 60))


@pytest.fixture
def outputs(tmp_path: Path) -> tuple[SQLiteSink, JsonlWriter]:
    writer = JsonlWriter(tmp_path / "events.jsonl")
    writer.write([event()])  # the first write turns the sharing on
    return SQLiteSink(tmp_path / "telemetry.db"), writer


def test_line_starts_with_the_core_keys_then_the_fields() -> None:
    """A logger event's line: the six core keys first, then the fields, as dumps_event's."""
    ev = event(format="wav", duration_ms=12.5, take=3)
    line = jsonl._line(ev, {})
    assert list(json.loads(line)) == [
        "timestamp", "level", "category", "event", "logger", "session_id",
        "format", "duration_ms", "take",
    ]  # fmt: skip
    assert json.loads(line) == json.loads(dumps_event(ev))
    assert line.endswith(',"format":"wav","duration_ms":12.5,"take":3}')


def test_store_and_line_share_one_text_and_the_memo_empties(
    outputs: tuple[SQLiteSink, JsonlWriter], tmp_path: Path
) -> None:
    """The store's fields column is the text the JSON line ends with (non-ASCII kept as
    UTF-8), and each remembered encoding is dropped once its line is written."""
    sink, writer = outputs
    evs = [event(format="wav", title="Café ☕", n=i) for i in range(3)]
    sink.write([], evs)
    assert all(id(e) in jsonl._shared for e in evs)
    writer.write(evs)
    assert not any(id(e) in jsonl._shared for e in evs)
    sink.close()
    writer.close()
    lines = written(tmp_path / "events.jsonl")[1:]
    rows = stored_fields(tmp_path / "telemetry.db")
    assert rows == [f'{{"format":"wav","title":"Café ☕","n":{i}}}' for i in range(3)]
    assert all(line.endswith("," + row[1:]) for line, row in zip(lines, rows, strict=True))


def test_a_store_without_a_jsonl_file_remembers_nothing(tmp_path: Path) -> None:
    """Before any JsonlWriter has written, the store keeps no encodings (nothing to reuse)."""
    jsonl._shared.clear()
    sharing = jsonl._sharing
    jsonl._sharing = False
    try:
        sink = SQLiteSink(tmp_path / "telemetry.db")
        sink.write([], [event(format="wav")])
        sink.close()
        assert jsonl._shared == {}
    finally:
        jsonl._sharing = sharing


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Encodings no line asks for (a failing file) are dropped past the limit, not kept."""
    monkeypatch.setattr(jsonl, "_sharing", True)
    monkeypatch.setattr(jsonl, "_SHARED_MAX", 10)
    jsonl._shared.clear()
    evs = [event(n=i) for i in range(25)]
    for ev in evs:
        encode_fields(ev)
    assert 0 < len(jsonl._shared) <= 10
    assert id(evs[-1]) in jsonl._shared


def test_surrogate_field_is_escaped_in_the_store_and_kept_in_the_line(
    outputs: tuple[SQLiteSink, JsonlWriter], tmp_path: Path
) -> None:
    """A lone surrogate in a field: the store row takes ASCII JSON, the line its escape;
    neither loses the event."""
    sink, writer = outputs
    ev = event(title="bad\udc80 text")
    sink.write([], [ev])
    assert writer.write([ev])
    sink.close()
    writer.close()
    [row] = stored_fields(tmp_path / "telemetry.db")
    assert json.loads(row) == {"title": "bad\udc80 text"}
    assert row.isascii()
    line = written(tmp_path / "events.jsonl")[-1]
    assert json.loads(line)["title"] == "bad\udc80 text"
    assert health.counts().get("log.text_replaced") == 1


def test_careful_paths_for_what_the_fast_path_cannot_write(
    outputs: tuple[SQLiteSink, JsonlWriter], tmp_path: Path
) -> None:
    """NaN, a key that is not text, a non-float timestamp and a missing session id still
    reach both outputs, as strict JSON in the file."""
    sink, writer = outputs
    evs: list[Event] = [
        event(ratio=math.nan),
        {**event(), 5: "int key", (1, 2): "tuple key"},
        {**event(), "timestamp": int(T0)},
        {k: v for k, v in event(format="wav").items() if k != "session_id"},
    ]
    sink.write([], evs)
    assert writer.write(evs)
    sink.close()
    writer.close()
    rows = [json.loads(r) for r in stored_fields(tmp_path / "telemetry.db")]
    assert math.isnan(rows[0]["ratio"])
    assert rows[1] == {"5": "int key", "(1, 2)": "tuple key"}
    assert rows[3] == {"format": "wav"}
    lines = [json.loads(x) for x in written(tmp_path / "events.jsonl")[1:]]
    assert lines[0]["ratio"] == "NaN"
    assert lines[1]["5"] == "int key"
    assert lines[2]["timestamp"] == int(T0)
    assert lines[3] == {k: v for k, v in event(format="wav").items() if k != "session_id"}


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(st.text(min_size=1), VALUES, max_size=5),
    name=st.text(),
    ts=st.floats(),
)
def test_line_parses_as_dumps_event(fields: dict[str, Any], name: str, ts: float) -> None:
    """Built from its parts or not, remembered or not, a line parses as dumps_event's."""
    ev = {**event(**fields), "event": name, "timestamp": ts}
    expected = json.loads(dumps_event(ev))
    assert json.loads(jsonl._line(ev, {})) == expected
    encode_fields(ev)
    assert json.loads(jsonl._line(ev, {})) == expected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_forked_child_holds_none_of_the_parents_encodings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After fork() the child's memo is empty (the parent's events are not kept alive there)."""
    monkeypatch.setattr(jsonl, "_sharing", True)
    ev = event(format="wav")
    encode_fields(ev)
    assert id(ev) in jsonl._shared
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the memo's size and leave at once
        os.write(write, str(len(jsonl._shared)).encode())
        os._exit(0)
    os.close(write)
    size = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert size == b"0"
    assert id(ev) in jsonl._shared


def test_an_int_too_long_for_text_does_not_stall_either_output(data_dir: Path) -> None:
    """A field holding an int with more digits than int-to-str allows (and a NaN beside it)
    is stored and written as a placeholder; the flush succeeds, later events too."""
    import sounding

    sounding.configure(data_dir=str(data_dir))
    log = sounding.get_logger("app")
    log.info("huge", n=10**5000, ratio=math.nan, deep=[1, 10**5000])
    log.info("after", ok=1)
    assert sounding.flush()
    with sounding.open_store(data_dir) as store:
        stored = {e["event"]: e for e in store.events(limit=None)}
    assert {"huge", "after"} <= set(stored)
    assert stored["huge"]["n"] == "<int of 16610 bits>"
    lines = {e["event"]: e for e in map(json.loads, written(data_dir / "events.jsonl"))}
    assert lines["huge"]["n"] == "<int of 16610 bits>"
    assert lines["huge"]["ratio"] == "NaN"
    assert lines["huge"]["deep"] == [1, "<int of 16610 bits>"]
    assert lines["after"]["ok"] == 1
    assert health.counts().get("storage.write", 0) == 0
    assert health.counts().get("log.file", 0) == 0


def test_a_raising_repr_does_not_fail_the_store_batch(tmp_path: Path) -> None:
    """A value whose repr() raises, written to the store directly, becomes a placeholder
    naming its type; the other events of the batch are kept."""

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    sink = SQLiteSink(tmp_path / "telemetry.db")
    sink.write([], [event(obj=Broken(), n=1), event(n=2)])
    sink.close()
    rows = [json.loads(r) for r in stored_fields(tmp_path / "telemetry.db")]
    assert rows == [{"obj": "<unrepresentable Broken>", "n": 1}, {"n": 2}]
