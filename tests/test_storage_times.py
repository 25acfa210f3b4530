"""Times and durations accepted by store queries and the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sounding.core.exceptions import InvalidValueError
from sounding.storage.times import iso, parse_duration, parse_time

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 1, tzinfo=timezone.utc), NOW),
        (datetime(2026, 1, 1), NOW),  # naive means UTC
        (datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), NOW),
        (NOW, NOW),
        (int(NOW), NOW),
        ("1767225600", NOW),
        ("2026-01-01", NOW),
        ("2026-01-01T00:00:00Z", NOW),
        ("2026-01-01T01:00:00+01:00", NOW),
        ("now", NOW),
        ("7d", NOW - 7 * 86400),
        ("24h", NOW - 86400),
        ("30m", NOW - 1800),
        ("90s", NOW - 90),
        ("2w", NOW - 14 * 86400),
        ("-7d", NOW - 7 * 86400),
        (" 1.5h ", NOW - 5400),
    ],
)
def test_parse_time_forms(value: object, expected: float) -> None:
    """Every documented time form gives the same epoch seconds."""
    assert parse_time(value, now=NOW) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["yesterday", "7x", "", "2026-13-01", float("nan"), None, [1]])
def test_parse_time_rejects_naming_the_argument(value: object) -> None:
    """Bad input raises InvalidValueError naming the argument and the allowed forms."""
    with pytest.raises(InvalidValueError) as info:
        parse_time(value, "since", now=NOW)  # type: ignore[arg-type]
    assert info.value.field == "since"
    assert "7d" in str(info.value)
    assert "ISO 8601" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(90, 90.0), (1.5, 1.5), ("90", 90.0), ("5m", 300.0), ("1h", 3600.0), ("1d", 86400.0),
     (timedelta(minutes=2), 120.0)],
)  # fmt: skip
def test_parse_duration_forms(value: object, expected: float) -> None:
    """Durations: seconds, timedeltas and unit forms."""
    assert parse_duration(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -5, "-5m", "soon", float("inf"), True, None])
def test_parse_duration_rejects(value: object) -> None:
    """A duration must be positive and finite; the error names the argument."""
    with pytest.raises(InvalidValueError, match="interval="):
        parse_duration(value)  # type: ignore[arg-type]


@given(st.text(max_size=40))
def test_parse_time_never_raises_anything_else(text: str) -> None:
    """Any string either parses to a finite number or raises InvalidValueError."""
    try:
        value = parse_time(text, now=NOW)
    except InvalidValueError:
        return
    assert value == value
    assert abs(value) != float("inf")


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_iso_round_trips(epoch: float) -> None:
    """iso() output parses back to the same time (to the millisecond)."""
    assert parse_time(iso(epoch)) == pytest.approx(epoch, abs=1e-3)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("minute", 60.0), ("hour", 3600.0), ("day", 86400.0), ("week", 604800.0),
     ("Hourly", 3600.0), ("daily", 86400.0), ("weekly", 604800.0)],
)  # fmt: skip
def test_interval_names(text: str, seconds: float) -> None:
    """minute, hour, day, week (and hourly, daily, weekly) are accepted as durations."""
    assert parse_duration(text) == seconds


def test_duration_text_uses_the_largest_whole_unit() -> None:
    """Resolutions in messages read as 1 min, 1 h, 1 d, 90 s."""
    from sounding.storage.times import duration_text

    assert [duration_text(s) for s in (60, 3600, 86400, 90, 604800)] == [
        "1 min", "1 h", "1 d", "90 s", "1 w",
    ]  # fmt: skip
