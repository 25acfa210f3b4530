"""Core value types: the seed's enums and dataclasses plus the records passed between layers."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from sounding.core.sketch import QuantileSketch

__all__ = [
    "ErrorSeverity",
    "Event",
    "EventCategory",
    "IntervalAggregate",
    "MetricSnapshot",
    "MetricType",
    "TagKey",
    "TelemetryLevel",
]

#: Canonical form of a series' tags: sorted ``(key, value)`` pairs.
TagKey = tuple[tuple[str, str], ...]

#: A structured event as it flows through the logging pipeline: a flat mapping with at least
#: ``timestamp`` (epoch seconds), ``level``, ``category``, ``event``, ``logger`` and
#: ``session_id``, plus bound context and the call's key-value fields.
Event = dict[str, Any]


class MetricType(str, enum.Enum):
    """The four kinds of metric (seed Day 4)."""

    COUNTER = "counter"  #: a sum that only goes up: recordings started, exports
    GAUGE = "gauge"  #: a value that goes up and down: memory in use, active sessions
    HISTOGRAM = "histogram"  #: a distribution: durations, sizes
    SUMMARY = "summary"  #: a distribution reported as percentiles (p50, p95, p99)

    def __str__(self) -> str:
        return self.value


class EventCategory(str, enum.Enum):
    """What an event is about (seed Day 1). Any string is accepted where a category is."""

    SYSTEM = "system"
    LIFECYCLE = "lifecycle"
    SESSION = "session"
    USER_ACTION = "user_action"
    PERFORMANCE = "performance"
    ERROR = "error"
    NETWORK = "network"
    STORAGE = "storage"
    CONFIGURATION = "configuration"
    SECURITY = "security"
    METRIC = "metric"

    def __str__(self) -> str:
        return self.value


# (stdlib logging level, Sentry level); numbers as in `logging` without importing it.
_SEVERITY_LEVELS: dict[str, tuple[int, str]] = {
    "low": (20, "info"),
    "medium": (30, "warning"),
    "high": (40, "error"),
    "critical": (50, "fatal"),
}


class ErrorSeverity(str, enum.Enum):
    """How bad a failure is (seed Day 3); maps to stdlib logging and Sentry levels."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def logging_level(self) -> int:
        """The stdlib :mod:`logging` level, e.g. ``logging.ERROR`` for ``HIGH``."""
        return _SEVERITY_LEVELS[self.value][0]

    @property
    def sentry_level(self) -> str:
        """The Sentry level name, e.g. ``"fatal"`` for ``CRITICAL``."""
        return _SEVERITY_LEVELS[self.value][1]

    def __str__(self) -> str:
        return self.value


class TelemetryLevel(str, enum.Enum):
    """How much may leave the machine (VS Code's convention). Local recording is separate."""

    OFF = "off"  #: nothing is sent; no socket is opened, no remote SDK initialised
    CRASH = "crash"  #: only unhandled exceptions
    ERROR = "error"  #: errors and crashes
    ALL = "all"  #: errors, crashes and usage data

    @property
    def rank(self) -> int:
        """Order of permissiveness: off < crash < error < all."""
        return ("off", "crash", "error", "all").index(self.value)

    def __str__(self) -> str:
        return self.value


def _utc(ts: datetime | float | int) -> datetime:
    # Imported here: only a MetricSnapshot needs it, not a process that only counts.
    from datetime import datetime, timezone

    if isinstance(ts, datetime):
        return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)
    try:
        return datetime.fromtimestamp(float(ts), tz=timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        from sounding.core.exceptions import InvalidValueError

        raise InvalidValueError(
            "timestamp", ts, "a datetime or epoch seconds within years 1-9999"
        ) from None


@dataclass
class MetricSnapshot:
    """One metric value at one time, with tags (seed Day 4).

    It is what :func:`sounding.record` ingests (a value observed at its own ``timestamp``) and
    what store queries return (``value`` is then the requested statistic).

    >>> from datetime import datetime, timezone
    >>> s = MetricSnapshot(MetricType.COUNTER, "exports", 1.0,
    ...                    datetime(2026, 1, 1, tzinfo=timezone.utc), {"format": "wav"})
    >>> s.name, s.value
    ('exports', 1.0)
    """

    metric_type: MetricType
    name: str
    value: float
    timestamp: datetime
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept "counter" as well as MetricType.COUNTER from callers without type checking.
        self.metric_type = MetricType(self.metric_type)
        self.timestamp = _utc(self.timestamp)

    @property
    def epoch(self) -> float:
        """The timestamp as seconds since the epoch."""
        return self.timestamp.timestamp()


@dataclass
class IntervalAggregate:
    """What the aggregator hands a sink: one series over one time interval.

    ``start``/``end`` are epoch seconds. Counters fill ``sum`` (and ``count`` with the number
    of increments); gauges ``last``/``min``/``max``; histograms and summaries ``count``, ``sum``,
    ``min``, ``max`` and ``sketch``.
    """

    name: str
    metric_type: MetricType
    tags: TagKey
    start: float
    end: float
    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    last: float | None = None
    sketch: QuantileSketch | None = None
    unit: str = ""
    description: str = ""

    @property
    def tag_dict(self) -> dict[str, str]:
        """Tags as a plain dict."""
        return dict(self.tags)

    def to_dict(self) -> Mapping[str, Any]:
        """A JSON-friendly view (the sketch as its quantiles)."""
        d: dict[str, Any] = {
            "name": self.name,
            "type": self.metric_type.value,
            "tags": self.tag_dict,
            "start": self.start,
            "end": self.end,
            "count": self.count,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "last": self.last,
        }
        if self.sketch is not None:
            for q in (0.5, 0.95, 0.99):
                d[f"p{round(q * 100)}"] = self.sketch.quantile(q)
        return d
