"""Numbers and times for people, shared by the dashboard, the report and the analysis
commands (so that the same value reads the same everywhere).

>>> format_value(1520.0, "ms"), format_value(0.25, "ms"), format_value(95.0, "s")
('1.52 s', '250 µs', '1.6 min')
>>> format_stat(8.25, "rate", ""), format_stat(None, "p95", "ms")
('8.25/h', '-')
>>> format_change(0.523), when(0.0)
('+52 %', '1970-01-01 00:00')
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Final

__all__ = ["format_change", "format_stat", "format_value", "stored_text", "when"]

_TIME_UNITS: Final = {"ms": 1e-3, "s": 1.0, "us": 1e-6, "ns": 1e-9, "min": 60.0}


def format_value(value: float | None, unit: str = "") -> str:
    """A number for people: durations in ms/s/min, large counts with k/M, else 3 digits.

    >>> format_value(12345.0), format_value(None), format_value(3.0, "MB")
    ('12.3k', '-', '3 MB')
    """
    if value is None or not math.isfinite(value):
        return "-"
    if unit in _TIME_UNITS:
        seconds = value * _TIME_UNITS[unit]
        a = abs(seconds)
        if a >= 3600:
            return f"{seconds / 3600:.1f} h"
        if a >= 60:
            return f"{seconds / 60:.1f} min"
        if a >= 1:
            return f"{seconds:.3g} s"
        if a >= 1e-3 or a == 0:
            return f"{seconds * 1e3:.3g} ms"
        return f"{seconds * 1e6:.3g} µs"
    a = abs(value)
    # Per-time units ("/h", "/s") follow the number directly: 8.25/h.
    suffix = f" {unit}" if unit and not unit.startswith("/") else unit
    if a >= 1e6:
        return f"{value / 1e6:.3g}M{suffix}"
    if a >= 1e4:
        return f"{value / 1e3:.3g}k{suffix}"
    if a >= 100 or value == int(value):
        return f"{value:.0f}{suffix}"
    return f"{value:.3g}{suffix}"


def format_stat(value: float | None, stat: str, unit: str) -> str:
    """A statistic's value: rates per hour (``/h``), counts bare, the rest in ``unit``."""
    if stat == "rate":
        return format_value(value, "/h")
    if stat == "count":
        return format_value(value)
    return format_value(value, unit)


def format_change(change: float | None) -> str:
    """A relative change (0.52 is +52 %) as a signed percentage."""
    if change is None or not math.isfinite(change):
        return "-"
    return f"{change * 100:+.0f} %"


def when(ts: float | None) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM`` (UTC), ``-`` for none."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def stored_text(text: object, style: str = "") -> Any:
    """Stored text as a rich ``Text``: never markup, control characters shown escaped
    (an ESC sequence in a metric name or a message must not drive the terminal)."""
    from rich.text import Text

    plain = _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], str(text))
    return Text(plain, style=style)
