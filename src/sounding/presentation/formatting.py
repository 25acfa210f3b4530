"""How numbers, rates, percentages and times read in every view sounding prints.

One set of formatters so the dashboard, the report and the commands show the same value the
same way: three significant digits, the unit attached (``1.53 s``, ``8.25/h``, ``52 %``),
times as ISO 8601 to the second with ``Z`` (or the local offset when asked).

>>> format_value(1530.0, "ms"), format_rate(8.25 / 3600), format_percent(0.52)
('1.53 s', '8.25/h', '52 %')
>>> format_time(1767225600.5)
'2026-01-01T00:00:00Z'
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

__all__ = [
    "DURATION_UNITS",
    "RATE_UNITS",
    "format_bytes",
    "format_count",
    "format_percent",
    "format_rate",
    "format_time",
    "format_value",
    "is_duration_unit",
    "rate_unit",
]

#: Units read as durations, with their length in seconds.
DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0,
}  # fmt: skip

_MISSING = "-"


def is_duration_unit(unit: str) -> bool:
    """Whether ``unit`` names a duration (``ms``, ``s``, ...)."""
    return unit in DURATION_UNITS


def _sig(value: float) -> str:
    """Three significant digits, no exponent for ordinary magnitudes, no trailing zeros."""
    a = abs(value)
    if a == 0:
        return "0"
    if a < 1e-3 or a >= 1e6:
        return f"{value:.3g}"  # out of the ordinary: an exponent keeps it short
    if a >= 100:
        return f"{value:.0f}"
    digits = max(0, 2 - math.floor(math.log10(a)))
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_count(value: float | None) -> str:
    """A count or plain number: ``950``, ``12.3k``, ``4.5M``; fractions to 3 digits.

    >>> format_count(950), format_count(12345), format_count(0.256), format_count(3.0)
    ('950', '12.3k', '0.256', '3')
    """
    if value is None or not math.isfinite(value):
        return _MISSING
    a = abs(value)
    if a >= 1e12:
        return f"{value:.3g}"
    if a >= 1e9:
        return _sig(value / 1e9) + "G"
    if a >= 1e6:
        return _sig(value / 1e6) + "M"
    if a >= 1e4:
        return _sig(value / 1e3) + "k"
    if value == int(value):
        return str(int(value))
    return _sig(value)


def format_value(value: float | None, unit: str = "") -> str:
    """A value with its unit: durations scaled to µs/ms/s/min/h, other units appended.

    >>> format_value(0.25, "ms"), format_value(95.0, "s"), format_value(739.4, "ms")
    ('250 µs', '1.58 min', '739 ms')
    >>> format_value(512.0, "MB"), format_value(52.0, "%"), format_value(None, "ms")
    ('512 MB', '52 %', '-')
    """
    if value is None or not math.isfinite(value):
        return _MISSING
    if unit in DURATION_UNITS:
        seconds = value * DURATION_UNITS[unit]
        a = abs(seconds)
        if a >= 3600:
            return f"{_sig(seconds / 3600)} h"
        if a >= 60:
            return f"{_sig(seconds / 60)} min"
        if a >= 1:
            return f"{_sig(seconds)} s"
        if a >= 1e-3 or a == 0:
            return f"{_sig(seconds * 1e3)} ms"
        return f"{_sig(seconds * 1e6)} µs"
    text = format_count(value)
    return f"{text} {unit}" if unit else text


#: Rate units and their length in seconds, finest first.
RATE_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def rate_unit(per_second: float) -> str:
    """The rate unit that shows ``per_second`` as a number of at least 1 (``s`` ... ``d``).

    A column of rates uses the unit of its largest value, so every row reads in one unit.
    """
    a = abs(per_second)
    for unit, size in RATE_UNITS.items():
        if a * size >= 1 or a == 0 or not math.isfinite(a):
            return unit
    return "d"


def format_rate(per_second: float | None, unit: str | None = None) -> str:
    """A rate with its unit printed: ``/s``, ``/min``, ``/h`` or ``/d`` (``unit``, else the
    one that reads best).

    >>> format_rate(2.5), format_rate(0.5), format_rate(1 / 3600), format_rate(0.0)
    ('2.5/s', '30/min', '1/h', '0/s')
    >>> format_rate(0.5, "h")
    '1800/h'
    """
    if per_second is None or not math.isfinite(per_second):
        return _MISSING
    chosen = unit if unit in RATE_UNITS else rate_unit(per_second)
    return f"{format_count(per_second * RATE_UNITS[chosen])}/{chosen}"


def format_percent(ratio: float | None, *, signed: bool = False) -> str:
    """A ratio as a percentage: ``0.52`` -> ``52 %`` (``+52 %`` when ``signed``).

    >>> format_percent(0.521), format_percent(-0.048, signed=True), format_percent(0.0012)
    ('52 %', '-4.8 %', '0.12 %')
    """
    if ratio is None or not math.isfinite(ratio):
        return _MISSING
    pct = ratio * 100
    # Whole percents from 10 % on: "+48 %" reads better than "+48.3 %".
    text = f"{pct:.0f}" if 10 <= abs(pct) < 1e6 else _sig(pct)
    if signed and ratio > 0:
        text = "+" + text
    return f"{text} %"


def format_bytes(n: float) -> str:
    """A size: ``512 B``, ``1.5 KB``, ``12 MB``.

    >>> format_bytes(512), format_bytes(1536), format_bytes(12 * 1024 * 1024)
    ('512 B', '1.5 KB', '12 MB')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{_sig(n)} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_time(epoch: float | datetime | None, *, local: bool = False) -> str:
    """ISO 8601 to the second: UTC with ``Z``, or local time with its offset.

    >>> format_time(1767225600.0), format_time(None)
    ('2026-01-01T00:00:00Z', '-')
    """
    if epoch is None:
        return _MISSING
    ts = epoch.timestamp() if isinstance(epoch, datetime) else float(epoch)
    if not math.isfinite(ts):
        return _MISSING
    dt = datetime.fromtimestamp(math.floor(ts), tz=timezone.utc)
    if local:
        return dt.astimezone().isoformat(timespec="seconds")
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")
