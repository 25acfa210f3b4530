"""sounding: privacy-first, local-first telemetry for Python applications.

>>> import sounding
>>> sounding.counter("recorder.exports").inc(tags={"format": "wav"})

Everything recorded is scrubbed of personal data and aggregated into a local SQLite store;
nothing leaves the machine unless the application and its user opt in.
"""

from __future__ import annotations

from sounding import exceptions
from sounding._runtime import flush, shutdown
from sounding.collection.metrics import counter, gauge, histogram, record, summary
from sounding.core.config import MetricsConfig, Settings, configure, get_settings
from sounding.core.config import reset as _reset_config
from sounding.core.types import (
    ErrorSeverity,
    EventCategory,
    MetricSnapshot,
    MetricType,
    TelemetryLevel,
)

__version__ = "0.1.0.dev0"

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
    "histogram",
    "record",
    "reset",
    "shutdown",
    "summary",
]


def reset() -> None:
    """Return sounding to its initial state (tests): settings, instruments, buffers, clock."""
    from sounding.testing import reset as _reset

    _reset()


del _reset_config
