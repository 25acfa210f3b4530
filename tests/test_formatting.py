"""The formatters every view uses: units, rounding, rates, percentages, one time style."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sounding.presentation.formatting import (
    format_bytes,
    format_count,
    format_percent,
    format_rate,
    format_time,
    format_value,
)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1530.0, "ms", "1.53 s"), (739.4, "ms", "739 ms"), (14.294, "ms", "14.3 ms"),
        (0.25, "ms", "250 µs"), (95.0, "s", "1.58 min"), (7200.0, "s", "2 h"),
        (0.0, "ms", "0 ms"), (512.0, "MB", "512 MB"), (52.0, "%", "52 %"),
        (12345.0, "", "12.3k"), (2_500_000.0, "", "2.5M"), (3.0, "", "3"),
        (None, "ms", "-"), (math.nan, "", "-"), (-1530.0, "ms", "-1.53 s"),
    ],
)  # fmt: skip
def test_format_value(value: float | None, unit: str, expected: str) -> None:
    """Values read with their unit, scaled, to three significant digits."""
    assert format_value(value, unit) == expected


@pytest.mark.parametrize(
    ("per_second", "expected"),
    [(2.5, "2.5/s"), (0.5, "30/min"), (8.25 / 3600, "8.25/h"), (1 / 86400, "1/d"),
     (0.0, "0/s"), (None, "-")],
)  # fmt: skip
def test_format_rate_prints_its_unit(per_second: float | None, expected: str) -> None:
    """A rate is shown in the unit that reads best, and the unit is always printed."""
    assert format_rate(per_second) == expected


def test_format_percent_and_bytes() -> None:
    """Ratios read as whole percents from 10 % on; sizes in B/KB/MB."""
    assert format_percent(0.521) == "52 %"
    assert format_percent(0.48, signed=True) == "+48 %"
    assert format_percent(-0.048, signed=True) == "-4.8 %"
    assert format_bytes(1536) == "1.5 KB"
    assert format_count(0.256) == "0.256"


def test_format_time_is_iso_to_the_second() -> None:
    """Times are ISO 8601 to the second with Z; local time carries its offset."""
    assert format_time(1767225600.999) == "2026-01-01T00:00:00Z"
    local = format_time(1767225600.0, local=True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", local)


@given(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
       st.sampled_from(["", "ms", "s", "us", "MB", "%", "min"]))  # fmt: skip
def test_formatters_never_raise(value: float | None, unit: str) -> None:
    """Any float (NaN, infinities, huge, tiny) formats to a short string."""
    for text in (format_value(value, unit), format_rate(value), format_percent(value)):
        assert isinstance(text, str)
        assert 0 < len(text) <= 16


def test_a_rate_column_reads_in_one_unit() -> None:
    """Rates in one table column share the unit of the largest value."""
    import io

    from sounding.presentation.output import emit

    buf = io.StringIO()
    rows = [{"rate": 0.5}, {"rate": 1 / 3600}, {"rate": 0.02}]
    emit(rows, ["rate"], "table", out=buf, units={"rate": "rate"})
    cells = [ln.strip("│ ") for ln in buf.getvalue().splitlines() if "/" in ln]
    assert cells == ["30/min", "0.0167/min", "1.2/min"]
