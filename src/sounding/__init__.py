"""sounding: privacy-first, local-first telemetry for Python applications.

>>> import sounding
>>> sounding.counter("recorder.exports").inc(tags={"format": "wav"})

Everything recorded is scrubbed of personal data and aggregated into a local SQLite store;
nothing leaves the machine unless the application and its user opt in.

``import sounding`` is deliberately light: the public names below are loaded on first
access (PEP 562), so an application pays for what it uses, when it uses it.
"""

from __future__ import annotations

import importlib

# Not `from typing import TYPE_CHECKING`: importing typing would double the import time.
TYPE_CHECKING = False

__version__ = "0.1.0.dev0"

# Public name -> module that defines it. Every module here is imported after the runtime, so
# the background writer is wired whichever name an application touches first.
_LAZY: dict[str, str] = {
    "ErrorSeverity": "sounding.core.types",
    "EventCategory": "sounding.core.types",
    "MetricSnapshot": "sounding.core.types",
    "MetricType": "sounding.core.types",
    "MetricsConfig": "sounding.core.config",
    "Settings": "sounding.core.config",
    "TelemetryLevel": "sounding.core.types",
    "configure": "sounding.core.config",
    "counter": "sounding.collection.metrics",
    "flush": "sounding._runtime",
    "gauge": "sounding.collection.metrics",
    "get_settings": "sounding.core.config",
    "hash_identifier": "sounding.collection.identifiers",
    "histogram": "sounding.collection.metrics",
    "open_store": "sounding.storage",
    "record": "sounding.collection.metrics",
    "scrub": "sounding.collection.scrub",
    "shutdown": "sounding._runtime",
    "summary": "sounding.collection.metrics",
}
_SUBMODULES = {"exceptions", "testing"}

__all__ = [
    "ErrorSeverity",
    "EventCategory",
    "MetricSnapshot",
    "MetricType",
    "MetricsConfig",
    "Settings",
    "TelemetryLevel",
    "__version__",
    "configure",
    "counter",
    "exceptions",
    "flush",
    "gauge",
    "get_settings",
    "hash_identifier",
    "histogram",
    "open_store",
    "record",
    "reset",
    "scrub",
    "shutdown",
    "summary",
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


def reset() -> None:
    """Return sounding to its initial state (tests): settings, instruments, buffers, clock."""
    from sounding.testing import reset as _reset

    _reset()


if TYPE_CHECKING:
    from typing import Any

    from sounding import exceptions as exceptions
    from sounding._runtime import flush as flush
    from sounding._runtime import shutdown as shutdown
    from sounding.collection.identifiers import hash_identifier as hash_identifier
    from sounding.collection.metrics import counter as counter
    from sounding.collection.metrics import gauge as gauge
    from sounding.collection.metrics import histogram as histogram
    from sounding.collection.metrics import record as record
    from sounding.collection.metrics import summary as summary
    from sounding.collection.scrub import scrub as scrub
    from sounding.core.config import MetricsConfig as MetricsConfig
    from sounding.core.config import Settings as Settings
    from sounding.core.config import configure as configure
    from sounding.core.config import get_settings as get_settings
    from sounding.core.types import ErrorSeverity as ErrorSeverity
    from sounding.core.types import EventCategory as EventCategory
    from sounding.core.types import MetricSnapshot as MetricSnapshot
    from sounding.core.types import MetricType as MetricType
    from sounding.core.types import TelemetryLevel as TelemetryLevel
    from sounding.storage import open_store as open_store
