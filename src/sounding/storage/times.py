"""Parsing of the times and durations that store queries and the CLI accept.

A *time* may be a :class:`~datetime.datetime` (naive means UTC), epoch seconds (a number or
a numeric string), an ISO 8601 string (``"2026-01-31"``, ``"2026-01-31T12:00:00Z"``,
``"2026-01-31T12:00:00+01:00"``), ``"now"``, or a relative form meaning *that long ago*:
``"7d"``, ``"24h"``, ``"30m"``, ``"90s"``, ``"2w"`` (a leading ``-`` is allowed). A *duration*
is a number of seconds, a :class:`~datetime.timedelta`, the same unit forms (``"5m"``) or
one of the names ``minute``, ``hour``, ``day``, ``week``.

>>> parse_duration("1h")
3600.0
>>> parse_time("2026-01-01T00:00:00Z")
1767225600.0
>>> parse_time("7d", now=1_000_000.0)
395200.0
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from sounding.core.clock import get_clock
from sounding.core.exceptions import InvalidValueError

__all__ = [
    "TIME_FORMS",
    "TimeLike",
    "duration_text",
    "iso",
    "parse_duration",
    "parse_time",
    "to_datetime",
]

#: What a time argument may be; used in error messages.
TIME_FORMS = (
    "a datetime, epoch seconds, an ISO 8601 string (2026-01-31T12:00:00Z), 'now', "
    "or a relative form such as 7d, 24h, 30m, 90s, 2w (that long ago)"
)
_DURATION_FORMS = (
    "a positive number of seconds, a timedelta, a form such as 90s, 5m, 1h, 1d, 2w, "
    "or minute, hour, day, week"
)
_NAMED = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0}

#: Anything :func:`parse_time` accepts.
TimeLike = datetime | float | int | str

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_REL_RE = re.compile(r"^\s*-?\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_duration(value: float | int | str | timedelta, field: str = "interval") -> float:
    """Seconds in ``value``; raises :class:`InvalidValueError` naming ``field`` otherwise.

    >>> parse_duration(90), parse_duration("5m"), parse_duration("1d")
    (90.0, 300.0, 86400.0)
    """
    seconds: float | None = None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif _is_number(value):
        seconds = float(value)
    elif isinstance(value, str):
        m = _REL_RE.match(value)
        named = value.strip().lower()
        if named.endswith("ly"):  # hourly, daily, weekly
            named = {"dai": "day"}.get(named[:-2], named[:-2])
        if named in _NAMED:
            seconds = _NAMED[named]
        elif m and not value.strip().startswith("-"):
            seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
        else:
            try:
                seconds = float(value)
            except ValueError:
                seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise InvalidValueError(field, value, _DURATION_FORMS)
    return seconds


def parse_time(value: TimeLike, field: str = "start", *, now: float | None = None) -> float:
    """Epoch seconds for ``value`` (see the module docstring for the accepted forms).

    ``now`` is the reference for relative forms (default: the sounding clock). Raises
    :class:`InvalidValueError` naming ``field`` and the allowed forms.
    """
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    if _is_number(value):
        try:
            f = float(value)
        except OverflowError:  # an int beyond float range
            raise InvalidValueError(field, value, TIME_FORMS) from None
        if math.isfinite(f):
            return f
        raise InvalidValueError(field, value, TIME_FORMS)
    if isinstance(value, str):
        text = value.strip()
        ref = get_clock().time() if now is None else now
        if text.lower() == "now":
            return ref
        m = _REL_RE.match(text)
        if m:
            return ref - float(m.group(1)) * _UNITS[m.group(2).lower()]
        try:
            f = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(f):
                return f
            raise InvalidValueError(field, value, TIME_FORMS)
        iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            dt = datetime.fromisoformat(iso)
        except ValueError:
            raise InvalidValueError(field, value, TIME_FORMS) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    raise InvalidValueError(field, value, TIME_FORMS)


def to_datetime(epoch: float) -> datetime:
    """An aware UTC datetime for epoch seconds."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def iso(epoch: float) -> str:
    """ISO 8601 UTC with a ``Z`` suffix (seconds precision unless there is a fraction)."""
    dt = to_datetime(epoch)
    text = dt.isoformat(timespec="milliseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def duration_text(seconds: float) -> str:
    """A duration in the largest unit that divides it: ``60 s`` -> ``1 min``.

    >>> duration_text(60), duration_text(3600), duration_text(86400), duration_text(90)
    ('1 min', '1 h', '1 d', '90 s')
    """
    for unit, size in (("w", 604800.0), ("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"
