"""Sessions: one run of the application, under a random id that every event carries.

A default session starts lazily with the first event and ends when the interpreter exits
(best effort, through :mod:`atexit`). Starting a session records a ``session.start`` event and
ending it a ``session.end`` event (category ``session``); the store keeps a sessions table
from these two events. A forked child gets a new session (its ``parent_session_id`` is the
parent's), so two processes never share an id.

>>> from sounding.collection.session import SessionManager
>>> manager = SessionManager(record_events=False)
>>> s = manager.start_session(mode="batch")
>>> len(s.session_id), s.attrs
(32, {'mode': 'batch'})
>>> manager.current_session() is s
True
>>> manager.end_session() is s, s.active
(True, False)

Code that serves several users or jobs in one process can give each its own session for the
duration of a block, in the current context only (threads and tasks started inside inherit
it, see :mod:`sounding.collection.context`):

>>> with manager.session_scope(job="nightly") as job_session:
...     manager.current_session() is job_session
True
"""

from __future__ import annotations

import atexit
import contextvars
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from sounding.core import health
from sounding.core.clock import get_clock
from sounding.core.config import Settings, get_settings, on_configure

__all__ = [
    "SESSION_END",
    "SESSION_START",
    "Session",
    "SessionManager",
    "current_session",
    "end_session",
    "get_session_manager",
    "session_scope",
    "start_session",
]

#: Event names of the two session records.
SESSION_START: Final = "session.start"
SESSION_END: Final = "session.end"

# What platform.python_version() returns, without importing platform.
_PYTHON_VERSION: Final = sys.version.split()[0]

# Incremented in a forked child: per-context session overrides made before the fork belong to
# the parent's sessions and are ignored afterwards.
_fork_generation = 0


@dataclass(eq=False)
class Session:
    """One session. ``duration`` (seconds) is live while it runs and final once it ended."""

    session_id: str
    app_version: str
    platform: str
    python_version: str
    #: wall-clock start, epoch seconds
    started: float
    #: attributes given to :meth:`SessionManager.start_session` (scrubbed when recorded)
    attrs: dict[str, Any] = field(default_factory=dict)
    #: wall-clock end, epoch seconds; ``None`` while the session runs
    ended: float | None = None
    #: in a forked child, the id of the parent process's session (else ``None``)
    parent_session_id: str | None = None
    _start_monotonic: float = field(default=0.0, repr=False)
    _duration: float | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Whether the session has not ended yet."""
        return self.ended is None

    @property
    def duration(self) -> float:
        """Seconds since the start (running) or from start to end (ended); never negative."""
        if self._duration is not None:
            return self._duration
        # Time can go backwards on a badly injected clock; a duration never does.
        return max(get_clock().monotonic() - self._start_monotonic, 0.0)

    def fields(self) -> dict[str, Any]:
        """The fields of this session's ``session.start``/``session.end`` records."""
        out: dict[str, Any] = dict(self.attrs)
        out.update(
            session_id=self.session_id,
            app_version=self.app_version,
            platform=self.platform,
            python_version=self.python_version,
            started=self.started,
        )
        if self.parent_session_id is not None:
            out["parent_session_id"] = self.parent_session_id
        if self.ended is not None:
            out["ended"] = self.ended
            out["duration"] = self.duration
        return out


def _new_session(attrs: dict[str, Any], at: float | None = None) -> Session:
    """A new session; ``at`` backdates its start to the first event's timestamp."""
    clock = get_clock()
    now, mono = clock.time(), clock.monotonic()
    started = now
    if at is not None and at <= now:
        # The session starts with its first event, not after it.
        started = at
        mono -= now - at
    return Session(
        session_id=os.urandom(16).hex(),  # what secrets.token_hex(16) does
        app_version=get_settings().app_version,
        platform=sys.platform,
        python_version=_PYTHON_VERSION,
        started=started,
        attrs=attrs,
        _start_monotonic=mono,
    )


def _finish(session: Session) -> bool:
    """Mark ``session`` ended; False when it already was (ending is idempotent)."""
    if session.ended is not None:
        return False
    clock = get_clock()
    session._duration = max(clock.monotonic() - session._start_monotonic, 0.0)
    session.ended = clock.time()
    return True


#: ``emit(name, fields)``: how session events are recorded; the logging pipeline registers
#: itself (:func:`set_event_recorder`) when it is imported, so this module never imports it.
SessionEmit = Callable[[str, Mapping[str, Any]], None]
_recorder: SessionEmit | None = None
# Session events from before the pipeline registered (bounded; an overflow is counted).
_pending: deque[tuple[str, dict[str, Any]]] = deque(maxlen=64)


def set_event_recorder(emit: SessionEmit | None) -> None:
    """Record the default manager's session events with ``emit(name, fields)``; events that
    waited for a recorder are handed to it now, in order."""
    global _recorder
    _recorder = emit
    while emit is not None and _pending:
        name, fields = _pending.popleft()
        emit(name, fields)


def _record(name: str, session: Session) -> None:
    emit = _recorder
    if emit is not None:
        emit(name, session.fields())
        return
    if len(_pending) == _pending.maxlen:
        health.count("session.dropped")
    _pending.append((name, session.fields()))


_managers: weakref.WeakSet[SessionManager] = weakref.WeakSet()


class SessionManager:
    """Starts, ends and tracks sessions (seed Day 1).

    The module-level functions (:func:`start_session`, :func:`current_session`, ...) use the
    process-wide manager that the logging pipeline reads; create your own only to manage
    sessions apart from it (tests). With ``record_events=False`` no events are recorded;
    ``emit(name, fields)`` records them some other way (by default they go to the logging
    pipeline, which registers itself with :func:`set_event_recorder`).
    """

    def __init__(self, *, record_events: bool = True, emit: SessionEmit | None = None) -> None:
        self._record_events = record_events
        self._emit_fn = emit
        self._lock = threading.RLock()
        self._process: Session | None = None
        self._parent: Session | None = None
        self._override: contextvars.ContextVar[tuple[int, Session] | None] = contextvars.ContextVar(
            f"sounding.session.{id(self):x}", default=None
        )
        # The exception that was propagating when a session ended, and that session: an
        # uncaught exception reaches sys.excepthook after the CLI framework (click) ended the
        # session, and its crash record belongs to that session, not to a new one.
        self._ended_by: tuple[BaseException, Session] | None = None
        _managers.add(self)

    # -- the process-wide session ---------------------------------------------------------

    def start_session(self, **attrs: Any) -> Session:
        """Start a new process-wide session (ending the current one) and return it.

        ``attrs`` are recorded with the ``session.start`` event, scrubbed like every field.
        """
        session = _new_session(attrs)
        with self._lock:
            previous, self._process = self._process, session
            self._parent = None
            self._ended_by = None  # a new run: the last one's exception is not kept alive
        if previous is not None and _finish(previous):
            self._emit(SESSION_END, previous)
        self._emit(SESSION_START, session)
        _register_atexit()
        return session

    def end_session(self) -> Session | None:
        """End the process-wide session; returns it, or ``None`` when none was running.

        Idempotent. The next event starts a new default session.
        """
        with self._lock:
            session, self._process = self._process, None
        if session is not None and _finish(session):
            self._note_ending(session)
            self._emit(SESSION_END, session)
            return session
        return None

    def _note_ending(self, session: Session) -> None:
        # Called from a `finally` or `__exit__` while an exception propagates, exc_info is it.
        exc = sys.exc_info()[1]
        if exc is None:
            return
        current = self._ended_by
        if current is None or current[0] is not exc:
            self._ended_by = (exc, session)

    def session_for_exception(self, exc: BaseException) -> Session | None:
        """The session ``exc`` ended while propagating out of, if any (the crash handler
        records an uncaught exception there instead of starting a new session)."""
        ended = self._ended_by
        if ended is not None and ended[0] is exc:
            return ended[1]
        return None

    @contextmanager
    def attached(self, session: Session) -> Iterator[Session]:
        """Stamp events of the block (current context only) with ``session``, without
        starting or ending it."""
        token = self._override.set((_fork_generation, session))
        try:
            yield session
        finally:
            self._override.reset(token)

    def current_session(self) -> Session:
        """The session of the current context: the innermost :meth:`session_scope`, else the
        process-wide session (started now if there is none)."""
        override = self._override.get()
        if override is not None and override[0] == _fork_generation:
            return override[1]
        session = self._process
        if session is not None:
            return session
        return self._start_default()

    def current_session_id(self, at: float | None = None) -> str:
        """The id of :meth:`current_session` (the logging pipeline's fast path). A default
        session started here starts at ``at``, the timestamp of the event asking."""
        override = self._override.get()
        if override is not None and override[0] == _fork_generation:
            return override[1].session_id
        session = self._process
        if session is None:
            session = self._start_default(at)
        return session.session_id

    def _start_default(self, at: float | None = None) -> Session:
        with self._lock:
            session = self._process
            if session is not None:  # another thread started it meanwhile
                return session
            parent = self._parent
            attrs = dict(parent.attrs) if parent is not None else {}
            if parent is not None:
                attrs["parent_session_id"] = parent.session_id
            session = _new_session(attrs, at)
            if parent is not None:
                session.parent_session_id = parent.session_id
            self._process = session
            self._parent = None
        self._emit(SESSION_START, session)
        _register_atexit()
        return session

    # -- sessions scoped to a context -------------------------------------------------------

    @contextmanager
    def session_scope(self, **attrs: Any) -> Iterator[Session]:
        """Run a block (and the tasks and :class:`~sounding.collection.context.ContextThread`
        threads it starts) in a session of its own; the session ends when the block exits.
        """
        session = _new_session(attrs)
        self._emit(SESSION_START, session)
        token = self._override.set((_fork_generation, session))
        try:
            yield session
        finally:
            self._override.reset(token)
            if _finish(session):
                self._note_ending(session)
                self._emit(SESSION_END, session)

    # -- housekeeping -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the process-wide session without recording anything (tests)."""
        with self._lock:
            self._process = None
            self._parent = None
            self._ended_by = None

    def _after_fork_in_child(self) -> None:
        # The parent's lock may have been held by another thread at fork time.
        self._lock = threading.RLock()
        self._parent = self._process
        self._process = None
        self._ended_by = None

    def _adopt_settings(self, app_version: str) -> None:
        # Library mode: a session started before the application configured takes its
        # version; its start record is still in memory (nothing was written), so it is fixed
        # there too.
        sessions = [self._process]
        override = self._override.get()
        if override is not None:
            sessions.append(override[1])
        for session in sessions:
            if session is None or session.app_version == app_version:
                continue
            session.app_version = app_version
            from sounding.collection import events as _events

            for event in list(_events.buffer._events):
                if (
                    event.get("session_id") == session.session_id
                    and event.get("event") == SESSION_START
                ):
                    event["app_version"] = app_version

    def _emit(self, name: str, session: Session) -> None:
        if not self._record_events:
            return
        try:
            if self._emit_fn is not None:
                self._emit_fn(name, session.fields())
            else:
                _record(name, session)
        except Exception as exc:  # session bookkeeping never breaks the host
            health.failure("session.record", exc)


_default = SessionManager()


def get_session_manager() -> SessionManager:
    """The process-wide manager whose sessions the logging pipeline stamps on events."""
    return _default


def start_session(**attrs: Any) -> Session:
    """Start a new process-wide session; see :meth:`SessionManager.start_session`.

    >>> import sounding.collection.session as sessions
    >>> s = sessions.start_session(mode="import")
    >>> sessions.current_session().session_id == s.session_id
    True
    """
    return _default.start_session(**attrs)


def end_session() -> Session | None:
    """End the process-wide session; see :meth:`SessionManager.end_session`."""
    return _default.end_session()


def current_session() -> Session:
    """The current session; see :meth:`SessionManager.current_session`."""
    return _default.current_session()


def session_scope(**attrs: Any) -> AbstractContextManager[Session]:
    """A session for one block in the current context; see
    :meth:`SessionManager.session_scope`."""
    return _default.session_scope(**attrs)


# -- process lifecycle -------------------------------------------------------------------


def _end_at_exit() -> None:
    try:
        _default.end_session()
    except Exception:  # nothing may fail loudly during interpreter exit
        pass


def _register_atexit() -> None:
    """(Re-)register the exit hook so it runs before hooks registered earlier (atexit is
    last-in, first-out): the session must end before a runtime flush registered earlier."""
    atexit.unregister(_end_at_exit)
    atexit.register(_end_at_exit)


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1
    for manager in list(_managers):
        manager._after_fork_in_child()


def _on_configure(settings: Settings) -> None:
    if not _was_configured[0] and settings.configured:
        for manager in list(_managers):
            manager._adopt_settings(settings.app_version)
    _was_configured[0] = settings.configured


# Whether the last settings seen were an application's (else library mode).
_was_configured = [False]
on_configure(_on_configure)

if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
