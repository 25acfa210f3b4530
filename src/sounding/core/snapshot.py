"""The seed's :class:`MetricSnapshot`: one metric value at one time (a dataclass).

Kept apart from :mod:`sounding.core.types` (which re-exports it on first access) so a process
that only counts never imports :mod:`dataclasses`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from sounding.core.types import MetricType

__all__ = ["MetricSnapshot"]


def _utc(ts: datetime | float | int) -> datetime:
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
