"""Error events: what sounding records about an exception, locally and (opted in) remotely.

:func:`record_error` turns an exception into an :class:`ErrorReport` (type, scrubbed message,
stack with scrubbed paths, chained exception types, breadcrumbs, metrics, tags, severity),
records it as a local event and hands it to the remote reporters that are installed (the
Sentry integration installs one when :func:`sounding.integrations.sentry.initialize_telemetry`
enables it). L1 never imports an integration: reporters register themselves here.

:class:`SentryContext` (seed Day 3) gathers breadcrumbs, metrics and tags around a block and
reports an exception that escapes it, with or without ``sentry-sdk`` installed:

>>> from sounding.collection.errors import SentryContext
>>> with SentryContext(operation="recording", device="usb") as ctx:
...     ctx.add_breadcrumb("opening stream", category="audio")
...     ctx.set_metric("sample_rate", 48000)
"""

from __future__ import annotations

import functools
import math
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal

from sounding.collection import events as _events
from sounding.collection import metrics as _metrics
from sounding.collection.frames import is_own_file, relative_path, reset_path_roots
from sounding.collection.naming import check_operation_name
from sounding.collection.severity import classify_exception, coerce_severity
from sounding.core import clock as _clock_module
from sounding.core import health
from sounding.core.clock import get_clock
from sounding.core.exceptions import InvalidTypeError, describe
from sounding.core.types import ErrorSeverity, Event, EventCategory

__all__ = [
    "MAX_BREADCRUMBS",
    "MAX_STACK_FRAMES",
    "ErrorReport",
    "Reporter",
    "SentryContext",
    "add_reporter",
    "emit_event",
    "exception_type_name",
    "record_error",
    "relative_path",
    "remove_reporter",
    "reset_path_roots",
]

#: Frames kept per stack (the innermost ones: that is where the error is).
MAX_STACK_FRAMES: Final = 50
#: Breadcrumbs kept per :class:`SentryContext` (the most recent ones).
MAX_BREADCRUMBS: Final = 100
#: Longest message kept (after scrubbing).
MAX_MESSAGE_LENGTH: Final = 2000
_MAX_CHAIN: Final = 5
#: Attribute set on an exception once it has been recorded, so an exception that crosses
#: several nested boundaries is reported once (each boundary still counts it in metrics).
_RECORDED: Final = "__sounding_recorded__"
_LEVEL_NAMES: Final = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}
_BREADCRUMB_LEVELS: Final = frozenset({"debug", "info", "warning", "error", "fatal", "critical"})

Reporter = Callable[[BaseException, "ErrorReport"], None]
_reporters: list[Reporter] = []
_reporters_lock = threading.Lock()


# ---------------------------------------------------------------------------------------
# Scrubbing and event emission (through the structured logger when it is available)
# ---------------------------------------------------------------------------------------


def _scrub_text(text: str) -> str:
    try:
        from sounding.collection.scrub import scrub_text
    except ImportError as exc:
        # Without the scrubber nothing free-form may be recorded: fail closed.
        health.failure("errors.scrubber_missing", exc)
        return "<redacted>"
    return scrub_text(text)


def _scrub(value: Any) -> Any:
    try:
        from sounding.collection.scrub import scrub
    except ImportError as exc:
        health.failure("errors.scrubber_missing", exc)
        return "<redacted>"
    return scrub(value)


@functools.lru_cache(maxsize=1)
def _structured_logger() -> Any:
    """The structured logger for error events, or ``None`` when it is not available."""
    # Imported on first use: importing this module stays cheap, and the logging pipeline
    # (below this module: it never imports errors or boundaries) is loaded only for errors.
    try:
        import sounding.collection.log as log
    except ImportError:  # a trimmed install: error events go straight to the buffer
        return None
    return log.get_logger("sounding.errors", category=EventCategory.ERROR)


def emit_event(levelno: int, event: str, fields: Mapping[str, Any]) -> None:
    """Record one event about errors (category ``error``) at stdlib level ``levelno``.

    Goes through the structured logger (which adds context, the session id and scrubs) when
    it is installed, else straight to the event buffer. Never raises.
    """
    try:
        logger = _structured_logger()
        if logger is not None:
            name = _LEVEL_NAMES.get(levelno, "error")
            method = getattr(logger, name, None) or logger.error
            method(event, category=EventCategory.ERROR.value, **fields)
            return
        record: Event = {
            "timestamp": get_clock().time(),
            "level": _LEVEL_NAMES.get(levelno, "error"),
            "category": EventCategory.ERROR.value,
            "event": event,
            "logger": "sounding.errors",
            "session_id": None,
        }
        for key, value in _scrub(dict(fields)).items():
            record.setdefault(key, value)
        _events.emit(record)
    except Exception as exc:
        health.failure("errors.emit", exc)


# ---------------------------------------------------------------------------------------
# Error reports
# ---------------------------------------------------------------------------------------


def exception_type_name(exc: BaseException | type[BaseException]) -> str:
    """The exception's type as recorded in metrics and events: ``ValueError`` for builtins,
    ``package.module.Name`` otherwise.

    >>> exception_type_name(KeyError("k")), exception_type_name(TimeoutError)
    ('KeyError', 'TimeoutError')
    """
    klass = exc if isinstance(exc, type) else type(exc)
    module = getattr(klass, "__module__", "") or ""
    name = getattr(klass, "__qualname__", None) or klass.__name__
    if module in ("builtins", "exceptions", "__main__", ""):
        return str(name)
    return f"{module}.{name}"


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        # A broken __str__ must not break error reporting.
        text = f"<unprintable {type(exc).__name__}>"
    if len(text) > MAX_MESSAGE_LENGTH:
        text = text[:MAX_MESSAGE_LENGTH] + "..."
    return _scrub_text(text)


def _is_own_frame(filename: str) -> bool:
    return is_own_file(filename)


def _stack(tb: TracebackType | None) -> list[dict[str, Any]]:
    """The innermost frames of ``tb``, without sounding's own wrapper frames (a boundary's or
    timer's ``bounded``/``timed``), with paths made relative (:func:`relative_path`)."""
    # walk_tb reads no source files (extract_tb would): cheap on the error path.
    frames: deque[tuple[str, int, str]] = deque(maxlen=MAX_STACK_FRAMES)
    walked = list(traceback.walk_tb(tb))
    for i, (frame, lineno) in enumerate(walked):
        code = frame.f_code
        # The innermost frame stays even when it is sounding's: that is where the error is.
        if i < len(walked) - 1 and _is_own_frame(code.co_filename):
            continue
        frames.append((code.co_filename, lineno, code.co_name))
    return [
        {"file": relative_path(file), "line": line, "function": function}
        for file, line, function in frames
    ]


def _chain(exc: BaseException) -> list[str]:
    chain: list[str] = []
    seen = {id(exc)}
    current = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    while current is not None and id(current) not in seen and len(chain) < _MAX_CHAIN:
        seen.add(id(current))
        chain.append(exception_type_name(current))
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain


@dataclass
class ErrorReport:
    """Everything recorded about one exception; every free-form string is already scrubbed."""

    exc_type: str
    message: str
    severity: ErrorSeverity
    timestamp: float
    handled: bool = True
    operation: str | None = None
    stack: list[dict[str, Any]] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    breadcrumbs: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The report as event fields (what the local error event carries)."""
        out: dict[str, Any] = {
            "exc_type": self.exc_type,
            "message": self.message,
            "severity": self.severity.value,
            "handled": self.handled,
            "stack": self.stack,
        }
        if self.operation is not None:
            out["operation"] = self.operation
        if self.chain:
            out["chain"] = self.chain
        if self.breadcrumbs:
            out["breadcrumbs"] = self.breadcrumbs
        if self.metrics:
            out["metrics"] = self.metrics
        if self.tags:
            out["tags"] = self.tags
        return out


def add_reporter(reporter: Reporter) -> None:
    """Call ``reporter(exc, report)`` for every recorded error (remote integrations)."""
    if not callable(reporter):
        raise InvalidTypeError("reporter", reporter, "a callable(exc, report)")
    with _reporters_lock:
        if reporter not in _reporters:
            _reporters.append(reporter)


def remove_reporter(reporter: Reporter) -> None:
    """Stop calling ``reporter`` (no error if it was not installed)."""
    with _reporters_lock:
        if reporter in _reporters:
            _reporters.remove(reporter)


def record_error(
    exc: BaseException,
    *,
    operation: str | None = None,
    severity: ErrorSeverity | None = None,
    handled: bool = True,
    event: str = "error.captured",
    breadcrumbs: Iterable[Mapping[str, Any]] = (),
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, object] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> ErrorReport | None:
    """Record ``exc`` once: a local event named ``event`` and every installed reporter.

    Returns the :class:`ErrorReport`, or ``None`` when this exception object was already
    recorded (by an inner boundary or context) or recording failed. Never raises.

    >>> try:
    ...     open("/home/alice/notes.txt")
    ... except OSError as exc:
    ...     report = record_error(exc, operation="notes.open")
    >>> report.exc_type, report.message
    ('FileNotFoundError', "[Errno 2] No such file or directory: '~/notes.txt'")
    """
    try:
        if getattr(exc, _RECORDED, False):
            return None
        try:
            setattr(exc, _RECORDED, True)
        except Exception:
            pass  # an exception type with __slots__: it may be reported twice
        report = ErrorReport(
            exc_type=exception_type_name(exc),
            message=_message(exc),
            severity=severity if severity is not None else classify_exception(exc),
            timestamp=get_clock().time(),
            handled=handled,
            operation=operation,
            stack=_stack(exc.__traceback__),
            chain=_chain(exc),
            breadcrumbs=[_scrub(dict(b)) for b in breadcrumbs],
            metrics=dict(metrics or {}),
            tags={str(k): _scrub_text(str(v)) for k, v in (tags or {}).items()},
        )
        payload = report.fields()
        if fields:
            for key, value in fields.items():
                payload.setdefault(key, value)
        emit_event(report.severity.logging_level, event, payload)
    except Exception as failure:
        health.failure("errors.record", failure)
        return None
    with _reporters_lock:
        reporters = list(_reporters)
    for reporter in reporters:
        try:
            reporter(exc, report)
        except Exception as failure:
            health.failure("errors.reporter", failure)
    return report


# ---------------------------------------------------------------------------------------
# SentryContext
# ---------------------------------------------------------------------------------------


_OPERATIONS: dict[str, str] = {}


def _operation(name: str) -> str:
    # A context is created per call: check each name once, remember at most 1024 of them.
    checked = check_operation_name(name, ".user_errors")
    if len(_OPERATIONS) < 1024:
        _OPERATIONS[checked] = checked
    return checked


class SentryContext:
    """Breadcrumbs, metrics and tags around a block; reports an exception that escapes it.

    On an exception the block's error is recorded locally (see :func:`record_error`) and,
    when remote reporting is enabled, captured to Sentry in a scope of its own with the same
    tags, breadcrumbs and metrics; ``<operation>.failures`` is counted by exception type. The
    exception is never swallowed. Works as ``with`` and ``async with``, with or without
    ``sentry-sdk`` installed.

    >>> with SentryContext(operation="export", format="wav") as ctx:
    ...     ctx.add_breadcrumb("encoding", data={"frames": 1024})
    ...     ctx.set_tag("codec", "pcm")
    ...     ctx.set_metric("duration", 5.0)
    >>> ctx.report is None
    True
    """

    # No __slots__: class-level defaults make creating a context (once per call) cheaper
    # than assigning every slot.
    severity: ErrorSeverity | None = None
    #: the :class:`ErrorReport` of the exception that escaped the block, if any
    report: ErrorReport | None = None
    _breadcrumbs: list[tuple[float, Any, Any, Any, Any]] | None = None
    _metrics: dict[str, float] | None = None
    _start = 0.0

    def __init__(
        self, operation: str, *, severity: ErrorSeverity | str | None = None, **tags: object
    ) -> None:
        self.operation = _OPERATIONS.get(operation) or _operation(operation)
        if severity is not None:
            self.severity = _severity(severity)
        self._tags: dict[str, object] = tags

    def add_breadcrumb(
        self,
        message: str,
        category: str | None = None,
        level: str = "info",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Remember a step; the most recent :data:`MAX_BREADCRUMBS` go with an error report.

        They are converted and scrubbed only when an error is reported, so recording them
        costs little.
        """
        crumbs = self._breadcrumbs
        if crumbs is None:
            crumbs = self._breadcrumbs = []
        elif len(crumbs) >= MAX_BREADCRUMBS:
            del crumbs[0]
        crumbs.append((_clock_module._clock.time(), message, category, level, data))

    def _crumbs(self) -> list[dict[str, Any]]:
        out = []
        for ts, message, category, level, data in self._breadcrumbs or ():
            crumb: dict[str, Any] = {
                "timestamp": ts,
                "message": str(message),
                "level": level if level in _BREADCRUMB_LEVELS else "info",
            }
            if category is not None:
                crumb["category"] = str(category)
            if data:
                try:
                    crumb["data"] = dict(data)
                except Exception:
                    crumb["data"] = {"value": repr(data)}
            out.append(crumb)
        return out

    def set_metric(self, name: str, value: float) -> None:
        """Attach a measurement (a finite number) to the error report of this block."""
        number: float | None = None
        if isinstance(name, str) and isinstance(value, (int, float)) and not isinstance(
            value, bool
        ):
            try:
                number = float(value)  # an int beyond float range overflows: refused
            except OverflowError:
                number = None
        if number is None or not math.isfinite(number):
            health.failure(
                "errors.invalid_metric",
                InvalidTypeError(f"set_metric({describe(name)})", value, "a finite number"),
            )
            return
        if self._metrics is None:
            self._metrics = {}
        self._metrics[name] = number

    def set_tag(self, key: str, value: object) -> None:
        """Attach a tag (``str(value)``, scrubbed) to the error report of this block."""
        if not isinstance(key, str) or not key:
            health.failure(
                "errors.invalid_tag", InvalidTypeError("set_tag key", key, "a non-empty str")
            )
            return
        self._tags[key] = value

    @property
    def metrics(self) -> dict[str, float]:
        """The measurements set so far."""
        return dict(self._metrics or {})

    @property
    def tags(self) -> dict[str, object]:
        """The tags set so far (before scrubbing)."""
        return dict(self._tags)

    def __enter__(self) -> SentryContext:
        self._start = _clock_module._clock.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is not None and isinstance(exc, Exception):
            self._failed(exc)
        return False

    async def __aenter__(self) -> SentryContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)

    def _failed(self, exc: Exception) -> None:
        try:
            _metrics.counter(
                f"{self.operation}.failures",
                description=f"calls of {self.operation} that failed, by exception type",
            ).inc(tags={"exc_type": exception_type_name(exc)})
            elapsed = max(get_clock().monotonic() - self._start, 0.0) * 1e3
            self.report = record_error(
                exc,
                operation=self.operation,
                severity=self.severity,
                handled=True,
                event="operation.failed",
                breadcrumbs=self._crumbs(),
                metrics=self._metrics,
                tags=self._tags,
                fields={"duration_ms": round(elapsed, 3)},
            )
        except Exception as failure:
            health.failure("errors.context", failure)

    def __repr__(self) -> str:
        return f"SentryContext(operation={self.operation!r})"


def _severity(value: object) -> ErrorSeverity:
    return coerce_severity(value, "severity")
