"""SessionManager hands its events to an emit callable; the session module never imports
the logging pipeline (which registers itself as the default recorder)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from sounding.collection import session as session_module
from sounding.collection.session import SessionManager, set_event_recorder


def test_manager_hands_events_to_its_emit_callable() -> None:
    """start and end events of a manager built with emit= go to that callable."""
    seen: list[tuple[str, str]] = []

    def emit(name: str, fields: Mapping[str, Any]) -> None:
        seen.append((name, fields["session_id"]))

    manager = SessionManager(emit=emit)
    s = manager.start_session(mode="batch")
    manager.end_session()
    assert seen == [("session.start", s.session_id), ("session.end", s.session_id)]


def test_events_before_a_recorder_are_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Session events from before the pipeline registered are handed to it in order."""
    previous = session_module._recorder
    monkeypatch.setattr(session_module, "_recorder", None)
    monkeypatch.setattr(session_module, "_pending", type(session_module._pending)(maxlen=64))
    manager = SessionManager()
    manager.start_session()
    manager.end_session()
    got: list[str] = []
    set_event_recorder(lambda name, fields: got.append(name))
    try:
        assert got == ["session.start", "session.end"]
    finally:
        set_event_recorder(previous)


def test_session_module_does_not_import_the_logging_pipeline() -> None:
    """No import of sounding.collection.log appears in the session module's source."""
    import inspect

    source = inspect.getsource(session_module)
    assert "collection.log" not in source
    assert "import log" not in source
