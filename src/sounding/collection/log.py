"""Structured logging: events with a category, key-value fields, bound context and a session.

>>> from sounding.collection.log import get_logger
>>> from sounding.core.types import EventCategory
>>> log = get_logger("recorder")
>>> log.info("recording.saved", category=EventCategory.STORAGE, format="wav", duration_ms=12.5)

Every event is a flat dict with ``timestamp`` (epoch seconds from the injectable clock),
``level``, ``category``, ``event`` (its name), ``logger``, ``session_id``, then the bound context
(:mod:`sounding.collection.context`), then the call's fields (a field wins over a context
value of the same name). Field names that would overwrite one of the six core keys get a
trailing underscore (``level`` becomes ``level_``) and are counted (``log.field_renamed``).

Processing is a pipeline of plain callables ``(event) -> event | None`` (``None`` drops it),
each testable on its own, applied on the caller's thread:

1. the level filter (``settings.log_level``) runs first, before the event is even built, so a
   filtered call costs one comparison;
2. :func:`add_context` - the bound context;
3. :func:`add_session` - the current session id (a default session starts on the first event);
4. :func:`scrub_event` - values JSON cannot hold become JSON (``repr()`` as the last resort,
   structlog's fallback), then every key and value is scrubbed
   (:mod:`sounding.collection.scrub`);

then the event goes to the event buffer (:func:`sounding.collection.events.emit`) that the
background writer drains into the store and the JSON-lines file, and, when
``settings.forward_to_logging`` is on, to the stdlib logger ``sounding.events.<logger name>``
(already scrubbed, see :mod:`sounding.collection.stdlib`).

Scrubbing happens on the caller's thread, before the event reaches anything that could keep or
pass it on (the buffer, stdlib handlers). It stays cheap because the scrubbed form of short
strings (event names, logger names, categorical field values such as ``"wav"``) is memoised in
a bounded cache; numbers and booleans carry no text and are kept as they are.

Categories: an :class:`~sounding.core.types.EventCategory` or a string. A string that looks
like a category name (lower-case letters, digits, ``_``, ``.``, ``-``; at most 64; starting
with a letter) is recorded as it is, so applications can add their own; anything else (a
wrong type, spaces, upper case) is a misuse that is reported through
:func:`sounding.core.health.failure` (``log.category``; an exception in strict test mode) and
replaced by ``"system"``.

Telemetry never raises into the host: a failure anywhere in the pipeline is counted
(``log.record``) and the event is dropped. With ``settings.local_recording`` off nothing is
recorded (forwarding to stdlib logging, which the application controls, still happens).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

from sounding.collection import events as _events
from sounding.collection import session as _session_module
from sounding.collection.context import bound_items
from sounding.collection.session import get_session_manager
from sounding.core import config as _config
from sounding.core import health
from sounding.core._json import safe_repr
from sounding.core.clock import get_clock, on_clock_change
from sounding.core.config import LOG_LEVELS, Resolved
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.core.types import Event, EventCategory

if TYPE_CHECKING:
    import logging

__all__ = [
    "CORE_KEYS",
    "PROCESSORS",
    "Processor",
    "StructuredLogger",
    "add_context",
    "add_session",
    "get_logger",
    "level_name",
    "normalise_category",
    "record_event",
    "record_session_event",
    "scrub_event",
]

#: A pipeline step: takes an event, returns it (changed or not) or ``None`` to drop it.
Processor: TypeAlias = Callable[[Event], "Event | None"]

#: Keys every event carries; a call's fields cannot overwrite them.
CORE_KEYS: Final = frozenset({"timestamp", "level", "category", "event", "logger", "session_id"})

# Values sounding generates itself: never personal, never scrubbed (a scrubber that redacts
# values under keys containing "session" must not destroy the session id).
_TRUSTED_KEYS: Final = frozenset({"timestamp", "level", "session_id"})

_LEVEL_NAMES: Final[dict[int, str]] = {n: name for name, n in LOG_LEVELS.items()}
_SORTED_LEVELS: Final = sorted(_LEVEL_NAMES)

_CATEGORY_RE: Final = re.compile(r"[a-z][a-z0-9_.\-]{0,63}")
_DEFAULT_CATEGORY: Final = EventCategory.SYSTEM.value


def level_name(levelno: int) -> str:
    """The sounding level name for a stdlib level number; custom levels round down.

    >>> level_name(20), level_name(25), level_name(5)
    ('info', 'info', 'debug')
    """
    name = _LEVEL_NAMES.get(levelno)
    if name is not None:
        return name
    for n in reversed(_SORTED_LEVELS):
        if levelno >= n:
            return _LEVEL_NAMES[n]
    return "debug"


# -- categories -----------------------------------------------------------------------------

# Validated categories, by the value given (EventCategory members hash and compare like their
# string values, so both forms hit the same entry). Bounded: applications use a handful.
_categories: dict[Any, str] = {c: c.value for c in EventCategory}
_CATEGORY_CACHE_MAX: Final = 1024


def normalise_category(category: Any) -> str:
    """The category to record for ``category`` (see the module docs for the rules).

    >>> normalise_category(EventCategory.PERFORMANCE), normalise_category("audio.export")
    ('performance', 'audio.export')
    """
    try:
        cached = _categories.get(category)
    except TypeError:  # unhashable: certainly not a category
        cached = None
    if cached is not None:
        return cached
    if isinstance(category, EventCategory):
        return category.value
    if isinstance(category, str) and _CATEGORY_RE.fullmatch(category):
        value = str(category)
        if len(_categories) < _CATEGORY_CACHE_MAX:
            _categories[value] = value
        return value
    health.failure(
        "log.category",
        InvalidValueError(
            "category",
            category,
            "an EventCategory or a lower-case name of letters, digits, '_', '.', '-' "
            "(at most 64, starting with a letter); recorded as 'system'",
        ),
    )
    return _DEFAULT_CATEGORY


# -- processors -----------------------------------------------------------------------------


def add_context(event: Event) -> Event:
    """Add the context bound in the current context; keys already in the event win."""
    # Only the keys bound now (context.bound_items), not every key ever bound.
    for key, value in bound_items():
        if key not in event:
            event[key] = value
    return event


_sessions = get_session_manager()

#: The wall clock's ``time`` in use, followed through set_clock (one global load in _log).
_now: Callable[[], float] = get_clock().time


def _follow_clock() -> None:
    global _now
    _now = get_clock().time


on_clock_change(_follow_clock)


def add_session(event: Event) -> Event:
    """Stamp the current session id (unless the event already carries one)."""
    if "session_id" not in event:
        event["session_id"] = _sessions.current_session_id(event.get("timestamp"))
    return event


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_MAX_DEPTH: Final = 8


def _jsonable(value: Any, depth: int = 0) -> Any:
    t = type(value)
    if t in _SCALARS:
        return value
    if isinstance(value, str):  # str subclasses, str-valued enums
        return str.__str__(value)
    if isinstance(value, bool):  # pragma: no cover - bool cannot be subclassed
        return bool(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if isinstance(value, int) else float(value)
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [_jsonable(v, depth + 1) for v in value]
    return safe_repr(value)  # (a broken __repr__ must not lose the event)


# The scrubber module, imported on first use so that importing this module stays cheap.
_scrub_mod: Any = None
# Memoised scrub results, bounded and dropped whenever the settings or the scrubber's idea of
# the current user and host change: the scrubbed form of short strings under non-sensitive
# keys, and per key its scrubbed form and whether its values are redacted.
_text_cache: dict[str, str] = {}
_key_cache: dict[str, tuple[str, bool]] = {}
# The keys whose values are scrubbed as they are: not sensitive, not changed by scrubbing, not
# generated by sounding (one set test on the hot path; kept and cleared with _key_cache).
_plain_keys: set[str] = set()
_TEXT_CACHE_MAX: Final = 4096
_TEXT_CACHE_MAX_LEN: Final = 256
_KEY_CACHE_MAX: Final = 2048
_seen_identity: Any = None


def _scrubber() -> Any:
    global _scrub_mod
    mod = _scrub_mod
    if mod is None:
        from sounding.collection import scrub as mod

        _scrub_mod = mod
    return mod


#: The key information of the values sounding generates itself (_TRUSTED_KEYS): not scrubbed.
_SKIP: Final = ("", False)


def _key_info(key: str) -> tuple[str, bool]:
    info = _key_cache.get(key)
    if info is None and key in _TRUSTED_KEYS:
        info = _key_cache[key] = _SKIP
    if info is None:
        mod = _scrubber()
        new_key = key if key in CORE_KEYS else mod.scrub_text(key)
        # Identity, not equality, marks an unchanged key on the hot path.
        info = (key if new_key == key else new_key, mod.is_sensitive_key(key))
        if len(_key_cache) >= _KEY_CACHE_MAX:
            _key_cache.clear()
            _plain_keys.clear()
        _key_cache[key] = info
        if info[0] is key and not info[1] and type(key) is str:
            _plain_keys.add(key)
    return info


def _scrub_text(text: str) -> str:
    result: str = _scrubber().scrub_text(text)
    if result == text:
        result = text  # the same object: scrub_event then leaves the value in place
    if len(text) <= _TEXT_CACHE_MAX_LEN:
        if len(_text_cache) >= _TEXT_CACHE_MAX:
            _text_cache.clear()
        _text_cache[text] = result
    return result


def _check_identity() -> None:
    """Drop the memoised results when the scrubber's user/host names changed (``set_identity``
    in tests): a cached string could otherwise keep a name the scrubber now removes."""
    global _seen_identity
    identity = getattr(_scrubber(), "_identity", None)
    if identity is not _seen_identity:
        _text_cache.clear()
        _key_cache.clear()
        _plain_keys.clear()
        _seen_identity = identity


def scrub_event(event: Event) -> Event:
    """Make the event JSON-ready and scrub it with the rules of
    :mod:`sounding.collection.scrub`.

    * Values JSON cannot hold become JSON first: containers are converted recursively (keys
      become strings, tuples and sets lists), anything else becomes its ``repr()``
      (structlog's fallback), so the scrubber sees the text that will be stored.
    * Keys and text values pass :func:`~sounding.collection.scrub.scrub_text`, containers
      :func:`~sounding.collection.scrub.scrub`; values under sensitive keys become
      ``"<redacted>"`` whatever their type; numbers, booleans and ``None`` carry no text.
    * The values sounding generates itself (timestamp, level, session id) are left alone.

    Changes the event in place (and returns it), unless a key itself must change.
    """
    mod = _scrub_mod if _scrub_mod is not None else _scrubber()
    if mod._identity is not _seen_identity:  # (set_identity, in tests)
        _check_identity()
    key_cache = _key_cache
    text_cache = _text_cache
    plain = _plain_keys
    renamed: list[tuple[str, str]] | None = None
    # Assigning to existing keys while iterating is allowed; only renames wait for the end.
    for key, value in event.items():
        if key in plain:  # the common case, checked first: a key kept as it is
            t = type(value)
            if t is str:
                cached = text_cache.get(value)
                if cached is None:
                    event[key] = _scrub_text(value)
                elif cached is not value:  # unchanged text is cached as itself
                    event[key] = cached
                continue
            if t is float or t is int or t is bool or value is None:
                continue  # no text, nothing to scrub
        elif key in _TRUSTED_KEYS:  # timestamp, level, session id
            continue
        info = key_cache.get(key)
        if info is None:
            info = _key_info(key)
        if info is _SKIP:  # timestamp, level, session id
            continue
        t = type(value)
        if info[1]:
            event[key] = mod.REDACTED
        elif t is str:
            cached = text_cache.get(value)
            if cached is None:
                event[key] = _scrub_text(value)
            elif cached is not value:  # unchanged text is cached as itself
                event[key] = cached
        elif t is float or t is int or t is bool or value is None:
            pass  # no text, nothing to scrub
        else:
            value = _jsonable(value)
            if type(value) is str:
                event[key] = _scrubber().scrub_text(value)
            elif isinstance(value, (dict, list)):
                event[key] = mod.scrub(value)
            else:
                event[key] = value
        if info[0] is not key:
            (renamed := renamed or []).append((key, info[0]))
    return event if renamed is None else _rename(event, renamed)


def _rename(event: Event, renamed: list[tuple[str, str]]) -> Event:
    """Apply key renames from scrubbing; keys that collide get a ``#2`` suffix."""
    mapping = dict(renamed)
    out: Event = {}
    for key, value in event.items():
        new_key = mapping.get(key, key)
        if new_key in out:
            n = 2
            while f"{new_key}#{n}" in out:
                n += 1
            new_key = f"{new_key}#{n}"
        out[new_key] = value
    return out


#: The default pipeline, in order (the level filter runs before it; see the module docs).
PROCESSORS: Final[tuple[Processor, ...]] = (add_context, add_session, scrub_event)
# Session records carry their own session id and no bound context.
_SESSION_PROCESSORS: Final[tuple[Processor, ...]] = (scrub_event,)


def _reset_caches() -> None:
    """Forget memoised scrub results and categories (tests; after a configuration change)."""
    global _scrub_mod
    _scrub_mod = None
    _text_cache.clear()
    _key_cache.clear()
    _plain_keys.clear()
    _categories.clear()
    _categories.update({c: c.value for c in EventCategory})
    _set_gate(None)


# -- settings snapshot ------------------------------------------------------------------------


class _State:
    """What the hot path needs from the settings, recomputed when the settings object
    changes (``configure`` and ``reset`` both replace it)."""

    __slots__ = ("forward", "min_level", "record", "settings")

    def __init__(self, settings: Resolved | None) -> None:
        self.settings = settings
        # Without settings yet, let every call through to _log, which reads them.
        self.min_level = settings.log_level_no if settings is not None else 0
        self.record = settings.local_recording if settings is not None else True
        self.forward = settings.forward_to_logging if settings is not None else False


_state = _State(None)
_state_lock = threading.Lock()


def _current_state() -> _State:
    global _state
    settings = _config.current()
    state = _state
    if state.settings is settings:
        return state
    with _state_lock:
        if _state.settings is not settings:
            # Whatever the scrubber reads from the settings may have changed with them.
            _text_cache.clear()
            _key_cache.clear()
            _plain_keys.clear()
            _state = _State(settings)
            _set_gate(settings)
        return _state


# -- output ---------------------------------------------------------------------------------

# stdlib logging is imported only when forwarding is used: it is not cheap to import.
_forward_loggers: dict[str, logging.Logger] = {}
_record_attrs: frozenset[str] | None = None


def _attrs_of_records() -> frozenset[str]:
    global _record_attrs
    if _record_attrs is None:
        import logging

        plain = logging.LogRecord("", 0, "", 0, "", None, None)
        _record_attrs = frozenset(plain.__dict__) | {"message", "asctime", "taskName"}
    return _record_attrs


_forwarding = threading.local()


def _forward(event: Event, levelno: int) -> None:
    """Hand a (scrubbed) event to the stdlib logger ``sounding.events.<logger>``.

    Events recorded by a stdlib handler while it handles a forwarded record (a handler that
    itself logs through sounding) are recorded but not forwarded again: no recursion.
    """
    if getattr(_forwarding, "active", False):
        return
    _forwarding.active = True
    try:
        _forward_record(event, levelno)
    finally:
        _forwarding.active = False


def _forward_record(event: Event, levelno: int) -> None:
    import logging

    record_attrs = _attrs_of_records()
    name = event.get("logger", "")
    std = _forward_loggers.get(name)
    if std is None:
        std = logging.getLogger(f"sounding.events.{name}" if name else "sounding.events")
        _forward_loggers[name] = std
    if not std.isEnabledFor(levelno):
        return
    record = logging.LogRecord(std.name, levelno, "", 0, str(event.get("event", "")), None, None)
    ts = event.get("timestamp")
    if isinstance(ts, float):
        record.created = ts
        record.msecs = (ts - int(ts)) * 1000
    for key, value in event.items():
        # A LogRecord attribute of the same name keeps its meaning; the field gets a prefix.
        setattr(record, f"sounding_{key}" if key in record_attrs else key, value)
    text = event.get("exc_info")
    if isinstance(text, str):
        record.exc_text = text  # the scrubbed traceback; formatters append exc_text
    record.sounding_event = dict(event)
    std.handle(record)


def _process(
    event: Event, levelno: int, processors: tuple[Processor, ...], state: _State, forward: bool
) -> None:
    result = event
    for processor in processors:
        processed = processor(result)
        if processed is None:
            return
        result = processed
    if state.record:
        _events.buffer.emit(result)
    if forward and state.forward:
        _forward(result, levelno)


def _format_exc_info(exc_info: Any) -> tuple[str, str] | None:
    """``(exc_type, formatted traceback)`` for an ``exc_info`` argument, or ``None``."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return None
    import traceback

    from sounding.collection.frames import clean_traceback

    etype, value, tb = exc_info
    # Source lines are read now; then the frames lose sounding's wrappers and absolute paths.
    exception = clean_traceback(traceback.TracebackException(etype, value, tb))
    text = "".join(exception.format()).rstrip("\n")
    return type(value).__name__, text


def _add_fields(event: Event, fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if key in CORE_KEYS:
            health.count("log.field_renamed")
            key = f"{key}_"
        event[key] = value


def _log(
    logger: StructuredLogger,
    levelno: int,
    event_name: Any,
    category: Any,
    fields: dict[str, Any],
) -> None:
    """The hot path of every :class:`StructuredLogger` call."""
    try:
        state = _state
        if state.settings is not _config._settings or state.settings is None:
            state = _current_state()
        if levelno < state.min_level or not (state.record or state.forward):
            return
        if category is None:
            category = logger._category
        else:
            try:
                category = _categories[category]
            except (KeyError, TypeError):  # a new or unhashable category: validate it
                category = normalise_category(category)
        now = _now()
        event: Event = {
            "timestamp": now,
            "level": _LEVEL_NAMES.get(levelno) or level_name(levelno),
            "category": category,
            "event": event_name if type(event_name) is str else _jsonable(str(event_name)),
            "logger": logger.name,
        }
        if logger._bound:
            _add_fields(event, logger._bound)
        if fields:
            exc_info = fields.pop("exc_info", None)
            if CORE_KEYS.isdisjoint(fields):
                event.update(fields)
            else:
                _add_fields(event, fields)
            if exc_info:
                formatted = _format_exc_info(exc_info)
                if formatted is not None:
                    event["exc_type"], event["exc_info"] = formatted
        # PROCESSORS, written out (two calls fewer): add_context, add_session, scrub_event.
        bound = bound_items()
        if bound:
            for key, value in bound:
                if key not in event:
                    event[key] = value
        if "session_id" not in event:
            event["session_id"] = _sessions.current_session_id(now)
        event = scrub_event(event)
        if state.record:
            _events.buffer.emit(event)
        if state.forward:
            _forward(event, levelno)
    except Exception as exc:  # telemetry never raises into the host (strict mode aside)
        health.failure("log.record", exc)


def record_event(
    levelno: int,
    event_name: str,
    *,
    logger: str,
    category: Any = None,
    fields: Mapping[str, Any] | None = None,
    exc_info: Any = None,
    timestamp: float | None = None,
    forward: bool = True,
) -> None:
    """Run one event through the pipeline: the entry point for adapters such as the stdlib
    bridge. Never raises (failures are counted as ``log.record``)."""
    try:
        state = _current_state()
        if levelno < state.min_level or not (state.record or (forward and state.forward)):
            return
        event: Event = {
            "timestamp": get_clock().time() if timestamp is None else timestamp,
            "level": level_name(levelno),
            "category": _DEFAULT_CATEGORY if category is None else normalise_category(category),
            "event": event_name,
            "logger": logger,
        }
        if fields:
            _add_fields(event, fields)
        if exc_info:
            formatted = _format_exc_info(exc_info)
            if formatted is not None:
                event["exc_type"], event["exc_info"] = formatted
        _process(event, levelno, PROCESSORS, state, forward)
    except Exception as exc:
        health.failure("log.record", exc)


def record_session_event(name: str, fields: Mapping[str, Any]) -> None:
    """Record a ``session.start``/``session.end`` event (used by
    :mod:`sounding.collection.session`). Session records bypass the level filter: the store's
    sessions table is built from them."""
    state = _current_state()
    if not (state.record or state.forward):
        return
    # The record is stamped with the moment it describes (a session backdated to its first
    # event starts then).
    stamp = fields.get("ended" if name == "session.end" else "started")
    event: Event = {
        "timestamp": stamp if isinstance(stamp, float) else get_clock().time(),
        "level": "info",
        "category": EventCategory.SESSION.value,
        "event": name,
        "logger": "sounding.session",
    }
    _add_fields(event, {k: v for k, v in fields.items() if k != "session_id"})
    event["session_id"] = fields["session_id"]
    _process(event, 20, _SESSION_PROCESSORS, state, True)


# Session events go through this pipeline; the session module never imports this one.
_session_module.set_event_recorder(record_session_event)


# -- the logger -----------------------------------------------------------------------------


class _LevelMethod(Protocol):
    """The signature of ``debug``/``info``/``warning``/``error``/``critical``."""

    def __call__(
        self, event: str, /, *, category: EventCategory | str | None = None, **fields: Any
    ) -> None: ...


#: The lowest level any logger records, or 0 while the settings may have changed unseen (the
#: call then goes to _log, which reads them). Kept by configure() (a listener), _log's state
#: refresh and reset; the level methods compare against it before doing anything else.
_gate = 0


def _set_gate(settings: Resolved | None) -> None:
    global _gate
    _gate = settings.log_level_no if settings is not None else 0


_config.on_resolve(_set_gate)


def _level_method(logger: StructuredLogger, levelno: int, name: str) -> _LevelMethod:
    # ``event`` is positional-only and ``category`` travels in ``fields``: CPython then puts
    # each keyword straight into the dict it builds for ``**fields`` without comparing it
    # with parameter names, the only work a call below the level does besides one test.
    def method(event: str, /, **fields: Any) -> None:
        if _gate <= levelno:
            _log(logger, levelno, event, fields.pop("category", None), fields)

    method.__name__ = name
    method.__qualname__ = f"StructuredLogger.{name}"
    method.__doc__ = f"Record a {name} event (``category`` and key-value ``fields``)."
    return method


def _check_category(category: Any, argument: str) -> str:
    if isinstance(category, EventCategory):
        return category.value
    if not isinstance(category, str):
        raise InvalidTypeError(argument, category, "an EventCategory or a str")
    if not _CATEGORY_RE.fullmatch(category):
        raise InvalidValueError(
            argument,
            category,
            "a lower-case name of letters, digits, '_', '.', '-' (at most 64, starting "
            "with a letter)",
        )
    return category


class StructuredLogger:
    """A named source of structured events (seed Day 1). Get one with :func:`get_logger`.

    Each method takes the event name (a short, stable, dotted name such as
    ``"recording.saved"``), an optional category and key-value fields:

    >>> log = get_logger("recorder.export")
    >>> log.info("export.finished", category="storage", format="flac", files=3)
    >>> try:
    ...     1 / 0
    ... except ZeroDivisionError:
    ...     log.exception("export.failed", format="flac")  # adds exc_type and exc_info

    ``exc_info=True`` (or an exception) on any method adds the scrubbed traceback the same way.
    """

    __slots__ = ("_bound", "_category", "critical", "debug", "error", "info", "name", "warning")

    #: ``log.debug(event, category=None, **fields)``: record a debug event.
    debug: _LevelMethod
    #: ``log.info(event, category=None, **fields)``: record an info event.
    info: _LevelMethod
    #: ``log.warning(event, category=None, **fields)``: record a warning event.
    warning: _LevelMethod
    #: ``log.error(event, category=None, **fields)``: record an error event.
    error: _LevelMethod
    #: ``log.critical(event, category=None, **fields)``: record a critical event.
    critical: _LevelMethod

    def __init__(
        self,
        name: str,
        *,
        category: EventCategory | str = EventCategory.SYSTEM,
        bound: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise InvalidTypeError("name", name, "a str, e.g. __name__")
        if not name or len(name) > 200:
            raise InvalidValueError("name", name, "a non-empty str of at most 200 characters")
        self.name = name
        self._category = _check_category(category, "category")
        self._bound: dict[str, Any] = dict(bound) if bound else {}
        # The level methods are built once per logger (structlog's make_filtering_bound_logger
        # idea): plain functions, no bound method to create per call, and a call below the
        # level costs one comparison with a module global. They check the level at call time,
        # so a method kept in a variable follows later configure() calls.
        self.debug = _level_method(self, 10, "debug")
        self.info = _level_method(self, 20, "info")
        self.warning = _level_method(self, 30, "warning")
        self.error = _level_method(self, 40, "error")
        self.critical = _level_method(self, 50, "critical")

    def __repr__(self) -> str:
        return f"<StructuredLogger {self.name!r} category={self._category!r}>"

    @property
    def category(self) -> str:
        """The category of events logged without one."""
        return self._category

    def bind(self, **fields: Any) -> StructuredLogger:
        """A logger with the same name whose events all carry ``fields`` as well.

        >>> export_log = get_logger("recorder").bind(component="export")
        >>> export_log.info("export.started")  # carries component="export"
        """
        return StructuredLogger(self.name, category=self._category, bound={**self._bound, **fields})

    def is_enabled_for(self, level: int | str) -> bool:
        """Whether an event at ``level`` (a number or ``"info"``-style name) is recorded."""
        levelno = LOG_LEVELS.get(level, 0) if isinstance(level, str) else level
        return levelno >= _current_state().min_level

    def exception(
        self, event: str, *, category: EventCategory | str | None = None, **fields: Any
    ) -> None:
        """Record an error event with the exception being handled: ``exc_type`` (its type
        name) and ``exc_info`` (the scrubbed traceback). Category defaults to ``"error"``."""
        fields.setdefault("exc_info", True)
        _log(self, 40, event, EventCategory.ERROR if category is None else category, fields)

    def log(
        self,
        level: int | str,
        event: str,
        *,
        category: EventCategory | str | None = None,
        **fields: Any,
    ) -> None:
        """Record an event at ``level``: a stdlib level number or a name such as ``"info"``."""
        levelno = LOG_LEVELS.get(level.lower(), 0) if isinstance(level, str) else level
        if not isinstance(levelno, int) or levelno <= 0:
            health.failure(
                "log.level",
                InvalidValueError("level", level, "a logging level number or debug..critical"),
            )
            levelno = 20
        _log(self, levelno, event, category, fields)


_loggers: dict[tuple[str, str], StructuredLogger] = {}
_loggers_lock = threading.Lock()


def get_logger(
    name: str, *, category: EventCategory | str = EventCategory.SYSTEM
) -> StructuredLogger:
    """The :class:`StructuredLogger` called ``name`` (the same object for the same name and
    default ``category``). Raises :class:`~sounding.exceptions.InvalidTypeError` or
    :class:`~sounding.exceptions.InvalidValueError` for a bad name or category.

    >>> get_logger("recorder") is get_logger("recorder")
    True
    """
    if not isinstance(name, str):
        raise InvalidTypeError("name", name, "a str, e.g. __name__")
    key = (name, _check_category(category, "category"))
    logger = _loggers.get(key)
    if logger is None:
        with _loggers_lock:
            logger = _loggers.get(key)
            if logger is None:
                logger = StructuredLogger(name, category=category)
                _loggers[key] = logger
    return logger
