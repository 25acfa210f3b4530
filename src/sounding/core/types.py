"""Core value types: the seed's enums plus the records passed between layers.

:class:`MetricSnapshot` (a dataclass, as in the seed) lives in :mod:`sounding.core.snapshot`:
``dataclasses`` pulls in ``inspect``, ``ast`` and ``dis``, several milliseconds of a short
process that only counts. The records of the hot path (:class:`IntervalAggregate`) are plain
``__slots__`` classes for the same reason.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

# Not `from typing import ...` for these: only the type checker needs them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from sounding.core.sketch import QuantileSketch
    from sounding.core.snapshot import MetricSnapshot as MetricSnapshot

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
Event = dict[str, "Any"]


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


class IntervalAggregate:
    """What the aggregator hands a sink: one series over one time interval.

    ``start``/``end`` are epoch seconds. Counters fill ``sum`` (and ``count`` with the number
    of increments); gauges ``last``/``min``/``max``; histograms and summaries ``count``, ``sum``,
    ``min``, ``max`` and ``sketch``. Compared by value, like a dataclass.
    """

    __slots__ = (  # noqa: RUF023 - the constructor's order, which repr and == follow
        "name",
        "metric_type",
        "tags",
        "start",
        "end",
        "count",
        "sum",
        "min",
        "max",
        "last",
        "sketch",
        "unit",
        "description",
    )

    def __init__(
        self,
        name: str,
        metric_type: MetricType,
        tags: TagKey,
        start: float,
        end: float,
        count: int = 0,
        sum: float = 0.0,
        min: float | None = None,
        max: float | None = None,
        last: float | None = None,
        sketch: QuantileSketch | None = None,
        unit: str = "",
        description: str = "",
    ) -> None:
        self.name = name
        self.metric_type = metric_type
        self.tags = tags
        self.start = start
        self.end = end
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
        self.last = last
        self.sketch = sketch
        self.unit = unit
        self.description = description

    def _values(self) -> tuple[object, ...]:
        # The fields of this class (a subclass's __slots__ name only its own additions).
        return tuple(getattr(self, k) for k in IntervalAggregate.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalAggregate):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, as a non-frozen dataclass

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in IntervalAggregate.__slots__)
        return f"{type(self).__name__}({fields})"

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


def __getattr__(name: str) -> Any:
    # PEP 562: `from sounding.core.types import MetricSnapshot` keeps working (it was listed
    # here before it moved), and costs the `dataclasses` import only when asked for.
    if name == "MetricSnapshot":
        from sounding.core.snapshot import MetricSnapshot

        return MetricSnapshot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
