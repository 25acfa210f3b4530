"""Local crash recording: uncaught exceptions become scrubbed ``error.crash`` events.

Remote crash reporting (Sentry's excepthook) is opt-in and off by default, but a local-first
tool should still know that the application crashed. :func:`install_crash_handler` chains
``sys.excepthook`` and ``threading.excepthook``: an uncaught exception is recorded through
:func:`~sounding.collection.errors.record_error` (type, scrubbed message and stack, severity
``critical``, ``handled=False``) and counted in ``errors.crashes{exc_type=...}``; then the
previous hook runs as before (the traceback is still printed, the exit status unchanged).
The exit flush of the runtime writes the record before the process ends.

>>> from sounding.collection.crash import install_crash_handler, uninstall_crash_handler
>>> install_crash_handler()
>>> uninstall_crash_handler()
"""

from __future__ import annotations

import sys
import threading
from contextlib import nullcontext
from types import TracebackType
from typing import Any

from sounding.collection import metrics as _metrics
from sounding.collection.errors import exception_type_name, record_error
from sounding.collection.session import get_session_manager
from sounding.core import health
from sounding.core.types import ErrorSeverity

__all__ = ["install_crash_handler", "uninstall_crash_handler"]

_lock = threading.Lock()
_previous_sys: Any = None
_previous_threading: Any = None


def _record(exc: BaseException | None, where: str) -> None:
    # Ctrl-C and sys.exit() are how programs end, not crashes.
    if exc is None or isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return
    try:
        # A CLI framework (click) ends the command's session before sys.excepthook runs:
        # the crash belongs to that session, not to a new one.
        manager = get_session_manager()
        session = manager.session_for_exception(exc)
        with manager.attached(session) if session is not None else nullcontext():
            record_error(
                exc,
                severity=ErrorSeverity.CRITICAL,
                handled=False,
                event="error.crash",
                fields={"thread": where},
            )
        _metrics.counter(
            "errors.crashes", description="uncaught exceptions, by exception type"
        ).inc(tags={"exc_type": exception_type_name(exc)})
    except Exception as failure:
        health.failure("errors.crash", failure)


def _sys_hook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    _record(exc, "main")
    previous = _previous_sys or sys.__excepthook__
    previous(exc_type, exc, tb)


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    _record(args.exc_value, getattr(args.thread, "name", None) or "thread")
    previous = _previous_threading or threading.__excepthook__
    previous(args)


def install_crash_handler() -> None:
    """Record uncaught exceptions (any thread) locally, then call the previous hooks.

    Idempotent. Nothing leaves the machine: remote crash reports need
    :func:`sounding.initialize_telemetry` and a telemetry level that allows them.
    """
    global _previous_sys, _previous_threading
    with _lock:
        if sys.excepthook is not _sys_hook:
            _previous_sys = sys.excepthook
            sys.excepthook = _sys_hook
        if threading.excepthook is not _thread_hook:
            _previous_threading = threading.excepthook
            threading.excepthook = _thread_hook


def uninstall_crash_handler() -> None:
    """Restore the hooks that were in place before :func:`install_crash_handler`."""
    global _previous_sys, _previous_threading
    with _lock:
        if sys.excepthook is _sys_hook:
            sys.excepthook = _previous_sys or sys.__excepthook__
        if threading.excepthook is _thread_hook:
            threading.excepthook = _previous_threading or threading.__excepthook__
        _previous_sys = _previous_threading = None
