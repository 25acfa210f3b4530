"""sounding: privacy-first, local-first telemetry for Python applications.

>>> import sounding
>>> sounding.counter("recorder.exports").inc(tags={"format": "wav"})

Everything recorded is scrubbed of personal data and aggregated into a local SQLite store;
nothing leaves the machine unless the application and its user opt in.

``import sounding`` is deliberately light: the public names below are loaded on first
access (PEP 562), so an application pays for what it uses, when it uses it.
"""

from __future__ import annotations

import atexit as _atexit
import importlib
import sys as _sys

# Not `from typing import TYPE_CHECKING`: importing typing would double the import time.
TYPE_CHECKING = False

__version__ = "0.1.0.dev0"

# Public name -> module that defines it. Every module here is imported after the runtime, so
# the background writer is wired whichever name an application touches first.
_LAZY: dict[str, str] = {
    "ContextThread": "sounding.collection.context",
    "ContextThreadPoolExecutor": "sounding.collection.context",
    "ErrorSeverity": "sounding.core.types",
    "EventCategory": "sounding.core.types",
    "MetricSnapshot": "sounding.core.snapshot",
    "MetricType": "sounding.core.types",
    "MetricsConfig": "sounding.core.config",
    "PerformanceTimer": "sounding.collection.timing",
    "SentryContext": "sounding.collection.errors",
    "Session": "sounding.collection.session",
    "SessionManager": "sounding.collection.session",
    "Settings": "sounding.core.config",
    "SoundingHandler": "sounding.collection.stdlib",
    "StructuredLogger": "sounding.collection.log",
    "TelemetryLevel": "sounding.core.types",
    "bind_context": "sounding.collection.context",
    "bound_context": "sounding.collection.context",
    "classify_exception": "sounding.collection.boundary",
    "clear_context": "sounding.collection.context",
    "configure": "sounding.core.config",
    "counter": "sounding.collection.metrics",
    "current_session": "sounding.collection.session",
    "end_session": "sounding.collection.session",
    "filter_event": "sounding.integrations.sentry",
    "flush": "sounding._runtime",
    "gauge": "sounding.collection.metrics",
    "get_context": "sounding.collection.context",
    "get_logger": "sounding.collection.log",
    "get_settings": "sounding.core.config",
    "hash_identifier": "sounding.collection.identifiers",
    "histogram": "sounding.collection.metrics",
    "initialize_telemetry": "sounding.integrations.sentry",
    "install_crash_handler": "sounding.collection.crash",
    "install_logging_handler": "sounding.collection.stdlib",
    "is_configured": "sounding.core.config",
    "open_store": "sounding.storage",
    "operation_boundary": "sounding.collection.boundary",
    "record": "sounding.collection.metrics",
    "record_many": "sounding.collection.metrics",
    "scrub": "sounding.collection.scrub",
    "session_scope": "sounding.collection.session",
    "set_severity": "sounding.collection.boundary",
    "set_severity_classifier": "sounding.collection.boundary",
    "shutdown": "sounding._runtime",
    "shutdown_telemetry": "sounding.integrations.sentry",
    "start_session": "sounding.collection.session",
    "summary": "sounding.collection.metrics",
    "track_execution_time": "sounding.collection.timing",
    "unbind_context": "sounding.collection.context",
    "wrap_context": "sounding.collection.context",
}
_SUBMODULES = {"consent", "exceptions", "testing"}

__all__ = [
    "ContextThread",
    "ContextThreadPoolExecutor",
    "ErrorSeverity",
    "EventCategory",
    "MetricSnapshot",
    "MetricType",
    "MetricsConfig",
    "PerformanceTimer",
    "SentryContext",
    "Session",
    "SessionManager",
    "Settings",
    "SoundingHandler",
    "StructuredLogger",
    "TelemetryLevel",
    "__version__",
    "bind_context",
    "bound_context",
    "classify_exception",
    "clear_context",
    "configure",
    "consent",
    "counter",
    "current_session",
    "end_session",
    "exceptions",
    "filter_event",
    "flush",
    "gauge",
    "get_context",
    "get_logger",
    "get_settings",
    "hash_identifier",
    "histogram",
    "initialize_telemetry",
    "install_crash_handler",
    "install_logging_handler",
    "is_configured",
    "open_store",
    "operation_boundary",
    "record",
    "record_many",
    "reset",
    "scrub",
    "session_scope",
    "set_severity",
    "set_severity_classifier",
    "shutdown",
    "shutdown_telemetry",
    "start_session",
    "summary",
    "track_execution_time",
    "unbind_context",
    "wrap_context",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        importlib.import_module("sounding._runtime")
        value = getattr(importlib.import_module(module), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"sounding.{name}")
    else:
        raise AttributeError(f"module 'sounding' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _late_exit_flush() -> None:
    # Registered at `import sounding`, before the application's own atexit hooks, so it runs
    # after them: values they record land (the runtime's first-use hook did the main flush).
    runtime = _sys.modules.get("sounding._runtime")
    if runtime is not None:
        runtime._runtime._at_exit()


_atexit.register(_late_exit_flush)


def reset() -> None:
    """Return sounding to its initial state (tests): settings, instruments, buffers, clock."""
    from sounding.testing import reset as _reset

    _reset()


if TYPE_CHECKING:
    from typing import Any

    from sounding import consent as consent
    from sounding import exceptions as exceptions
    from sounding._runtime import flush as flush
    from sounding._runtime import shutdown as shutdown
    from sounding.collection.boundary import classify_exception as classify_exception
    from sounding.collection.boundary import operation_boundary as operation_boundary
    from sounding.collection.boundary import set_severity as set_severity
    from sounding.collection.boundary import set_severity_classifier as set_severity_classifier
    from sounding.collection.context import ContextThread as ContextThread
    from sounding.collection.context import ContextThreadPoolExecutor as ContextThreadPoolExecutor
    from sounding.collection.context import bind_context as bind_context
    from sounding.collection.context import bound_context as bound_context
    from sounding.collection.context import clear_context as clear_context
    from sounding.collection.context import get_context as get_context
    from sounding.collection.context import unbind_context as unbind_context
    from sounding.collection.context import wrap_context as wrap_context
    from sounding.collection.crash import install_crash_handler as install_crash_handler
    from sounding.collection.errors import SentryContext as SentryContext
    from sounding.collection.identifiers import hash_identifier as hash_identifier
    from sounding.collection.log import StructuredLogger as StructuredLogger
    from sounding.collection.log import get_logger as get_logger
    from sounding.collection.metrics import counter as counter
    from sounding.collection.metrics import gauge as gauge
    from sounding.collection.metrics import histogram as histogram
    from sounding.collection.metrics import record as record
    from sounding.collection.metrics import record_many as record_many
    from sounding.collection.metrics import summary as summary
    from sounding.collection.scrub import scrub as scrub
    from sounding.collection.session import Session as Session
    from sounding.collection.session import SessionManager as SessionManager
    from sounding.collection.session import current_session as current_session
    from sounding.collection.session import end_session as end_session
    from sounding.collection.session import session_scope as session_scope
    from sounding.collection.session import start_session as start_session
    from sounding.collection.stdlib import SoundingHandler as SoundingHandler
    from sounding.collection.stdlib import install_logging_handler as install_logging_handler
    from sounding.collection.timing import PerformanceTimer as PerformanceTimer
    from sounding.collection.timing import track_execution_time as track_execution_time
    from sounding.core.config import MetricsConfig as MetricsConfig
    from sounding.core.config import Settings as Settings
    from sounding.core.config import configure as configure
    from sounding.core.config import get_settings as get_settings
    from sounding.core.config import is_configured as is_configured
    from sounding.core.snapshot import MetricSnapshot as MetricSnapshot
    from sounding.core.types import ErrorSeverity as ErrorSeverity
    from sounding.core.types import EventCategory as EventCategory
    from sounding.core.types import MetricType as MetricType
    from sounding.core.types import TelemetryLevel as TelemetryLevel
    from sounding.integrations.sentry import filter_event as filter_event
    from sounding.integrations.sentry import initialize_telemetry as initialize_telemetry
    from sounding.integrations.sentry import shutdown_telemetry as shutdown_telemetry
    from sounding.storage import open_store as open_store
