"""The overview's values for people, on top of :mod:`sounding.presentation.formatting` (the
one set of formatters every view uses), so the dashboard, the report and the analysis
commands write the same value the same way.

The overview's rates are per hour; a rule's ``rate`` (what the store reads) is per second:
both are written with their unit (``8.25/h``, ``0.5/s``).

>>> format_value(1520.0, "ms"), format_value(0.25, "ms"), format_value(95.0, "s")
('1.52 s', '250 µs', '1.58 min')
>>> format_stat(8.25, "rate", ""), format_stat(None, "p95", "ms"), format_value(0.5, "/s")
('8.25/h', '-', '0.5/s')
>>> format_change(0.523), when(0.0)
('+52 %', '1970-01-01T00:00:00Z')
"""

from __future__ import annotations

import re
from typing import Any, Final

from sounding.presentation import formatting

__all__ = ["format_change", "format_stat", "format_value", "stored_text", "when"]


def format_value(value: float | None, unit: str = "") -> str:
    """A value with its unit (durations scaled; ``/h``, ``/s`` attached to the number).

    >>> format_value(12345.0), format_value(None), format_value(3.0, "MB")
    ('12.3k', '-', '3 MB')
    """
    if unit in _PER:
        # Per-time units follow the number directly: 8.25/h (any other unit, "/" included,
        # is written as a plain unit).
        return formatting.format_rate(None if value is None else value / _PER[unit], unit[1:])
    return formatting.format_value(value, unit)


#: Seconds per rate unit (``/h`` is per hour).
_PER: Final = {f"/{k}": v for k, v in formatting.RATE_UNITS.items()}


def format_stat(value: float | None, stat: str, unit: str) -> str:
    """A statistic's value: the overview's rates per hour (``/h``), counts bare, the rest
    in ``unit``."""
    if stat == "rate":
        return format_value(value, "/h")
    if stat == "count":
        return formatting.format_count(value)
    return format_value(value, unit)


def format_change(change: float | None) -> str:
    """A relative change (0.52 is +52 %) as a signed percentage."""
    return formatting.format_percent(change, signed=True)


def when(ts: float | None) -> str:
    """Epoch seconds as ISO 8601 to the second (UTC, ``Z``; local time under ``--local``)."""
    from sounding.presentation.output import local_times

    return formatting.format_time(ts, local=local_times())


_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def stored_text(text: object, style: str = "") -> Any:
    """Stored text as a rich ``Text``: never markup, control characters shown escaped
    (an ESC sequence in a metric name or a message must not drive the terminal)."""
    from rich.text import Text

    plain = _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], str(text))
    return Text(plain, style=style)
