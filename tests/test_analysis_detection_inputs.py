"""The detectors accept the inputs users have, reject misuse clearly, and keep their promises
on size, short series, timestamps and seasonality."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from sounding.analysis import (
    QUADRATIC_LIMIT,
    ChangePoint,
    detect_change_points,
    detect_deviations,
)
from sounding.core.exceptions import InvalidTypeError, InvalidValueError

T0 = 1_793_577_600.0  # Monday 2026-11-02 00:00 UTC


def _noise(n: int, seed: int, level: float = 100.0, sd: float = 3.0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0, sd) for _ in range(n)]


def _spiky(n: int = 200) -> list[float | None]:
    values: list[float | None] = list(_noise(n, 1))
    values[150] = 260.0
    values[40] = None
    return values


def test_datetime_timestamps_naive_are_utc_and_aware_are_converted() -> None:
    """Naive datetimes count as UTC; aware ones are converted; both give epoch seconds."""
    values = _spiky()
    naive = [datetime(2026, 11, 2) + timedelta(minutes=5 * i) for i in range(len(values))]
    plus2 = timezone(timedelta(hours=2))
    aware = [(d.replace(tzinfo=timezone.utc)).astimezone(plus2) for d in naive]
    (a,) = detect_deviations(values, naive, warmup_period=0)
    (b,) = detect_deviations(values, aware, warmup_period=0)
    assert a.index == b.index == 150
    assert a.timestamp == b.timestamp == T0 + 150 * 300


def test_epoch_timestamps_and_change_point_timestamps() -> None:
    """``detect_change_points`` takes timestamps too and returns them on each change."""
    values = _noise(300, 2) + _noise(300, 3, level=130.0)
    ts = [T0 + 60.0 * i for i in range(600)]
    (cp,) = detect_change_points(values, ts)
    assert isinstance(cp, ChangePoint)
    assert abs(cp.index - 300) <= 3
    assert cp.timestamp == ts[cp.index]
    assert cp.relative_change == pytest.approx(0.3, abs=0.05)
    assert cp.percent == pytest.approx(30, abs=5)
    assert cp.score > 1
    assert detect_change_points(values)[0].timestamp is None


@pytest.mark.parametrize("method", ["BinSeg", "PELT", "EDivisive"])
def test_method_names_are_case_insensitive(method: str) -> None:
    """``method`` is matched without regard to case."""
    values = _noise(150, 4) + _noise(150, 5, level=140.0)
    assert [abs(c.index - 150) <= 5 for c in detect_change_points(values, method=method)] == [True]


def test_change_from_a_constant_history_has_a_finite_score() -> None:
    """A change after a constant stretch is found with a finite, JSON-safe score."""
    values = [5.0] * 60 + [9.0] * 60
    (cp,) = detect_change_points(values)
    assert cp.index == 60
    assert math.isfinite(cp.score)
    text = json.dumps(cp.as_dict(), allow_nan=False)
    assert '"before": 5.0' in text


@pytest.mark.parametrize("n", [15, 30, 60])
def test_short_series_still_get_their_obvious_change(n: int) -> None:
    """15 to 60 points with a clear step in the middle: the step is found."""
    half = n // 2
    values = _noise(half, 6, level=10.0, sd=0.3) + _noise(n - half, 7, level=20.0, sd=0.3)
    assert [c.index for c in detect_change_points(values)] == [half]


@pytest.mark.parametrize("method", ["pelt", "edivisive"])
def test_quadratic_methods_fall_back_to_binseg_above_the_limit(method: str) -> None:
    """Above ``QUADRATIC_LIMIT`` points PELT and E-divisive give binseg's answer."""
    n = QUADRATIC_LIMIT + 10
    values = _noise(n // 2, 8) + _noise(n - n // 2, 9, level=110.0)
    got = detect_change_points(values, method=method)
    assert got == detect_change_points(values, method="binseg")
    assert [abs(c.index - n // 2) <= 5 for c in got] == [True]


def test_daily_cycle_is_not_a_change_with_timestamps() -> None:
    """A strong daily load curve is removed when timestamps span days: no change points,
    and a release that multiplies the level on top of it is still found."""
    rng = random.Random(10)
    n = 288 * 6
    ts = [T0 + 300.0 * i for i in range(n)]
    load = [1.0 + 0.4 * math.sin(2 * math.pi * i / 288) for i in range(n)]
    cycle = [100.0 * f * math.exp(rng.gauss(0, 0.03)) for f in load]
    assert detect_change_points(cycle, ts) == []
    stepped = [v * (1.6 if i >= 1000 else 1.0) for i, v in enumerate(cycle)]
    assert [abs(c.index - 1000) <= 12 for c in detect_change_points(stepped, ts)] == [True]
    assert detect_change_points(cycle) != []  # without timestamps the cycle reads as changes


def test_nightly_job_is_learned_and_a_daytime_step_still_alerts() -> None:
    """A job that doubles the level every night is normal after the first night; a step at
    noon on day 4 is one episode."""
    rng = random.Random(11)
    n = 288 * 5
    ts = [T0 + 300.0 * i for i in range(n)]
    values = []
    for i in range(n):
        slot = i % 288
        level = 100.0 * (3.0 if 24 <= slot < 36 else 1.0) * (1.8 if i >= 288 * 3 + 144 else 1)
        values.append(level + rng.gauss(0, 3))
    found = [e.index for e in detect_deviations(values, ts) if e.index >= 288 * 2]
    assert len(found) == 1
    assert 0 <= found[0] - (288 * 3 + 144) <= 12  # within the hour


@pytest.mark.parametrize(
    ("values", "exc", "name"),
    [
        ("12345", InvalidTypeError, "values"),
        ([1.0, "2", 3.0], InvalidTypeError, "values"),
        ([[1.0, 2.0], [3.0, 4.0]], InvalidTypeError, "values"),
        (None, InvalidTypeError, "values"),
        (42, InvalidTypeError, "values"),
    ],
)
def test_bad_values_raise_naming_the_argument(
    values: object, exc: type[Exception], name: str
) -> None:
    """Strings, nested lists and non-sequences are refused with the argument's name."""
    for detector in (detect_deviations, detect_change_points):
        with pytest.raises(exc) as info:
            detector(values)
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("timestamps", "exc"),
    [
        ([3.0, 2.0, 1.0, 4.0], InvalidValueError),  # unsorted
        ([1.0, 2.0, 3.0], InvalidValueError),  # one short
        (["a", "b", "c", "d"], InvalidTypeError),
        ([1.0, math.nan, 3.0, 4.0], InvalidValueError),
        ("2026-11-02", InvalidTypeError),
    ],
)
def test_bad_timestamps_raise_naming_the_argument(timestamps: object, exc: type[Exception]) -> None:
    """Unsorted, mismatched, non-time or NaN timestamps are refused clearly."""
    for detector in (detect_deviations, detect_change_points):
        with pytest.raises(exc) as info:
            detector([1.0, 2.0, 3.0, 4.0], timestamps)
        assert "timestamps" in str(info.value)


@pytest.mark.needs_extras
def test_numpy_arrays_and_datetime64_timestamps() -> None:
    """numpy arrays with NaN gaps and datetime64 timestamps work like lists and floats."""
    np = pytest.importorskip("numpy")
    values = _spiky()
    arr = np.array([math.nan if v is None else v for v in values])
    ts = np.datetime64("2026-11-02T00:00") + np.arange(len(values)) * np.timedelta64(5, "m")
    (e,) = detect_deviations(arr, ts, warmup_period=0)
    assert (e.index, e.timestamp) == (150, T0 + 150 * 300)
    steps = np.concatenate([np.array(_noise(100, 12)), np.array(_noise(100, 13, level=150.0))])
    (cp,) = detect_change_points(steps, ts)
    assert abs(cp.index - 100) <= 3
    assert cp.timestamp == T0 + cp.index * 300
    with pytest.raises(InvalidValueError) as info:
        detect_deviations(np.zeros((10, 2)))
    assert "values" in str(info.value)
    with pytest.raises(InvalidTypeError):
        detect_change_points(np.array(["a", "b"]))
    with pytest.raises(InvalidValueError):
        detect_deviations(arr, ts[::-1])


@pytest.mark.needs_extras
def test_pandas_series_with_na_and_a_datetime_index() -> None:
    """A pandas Series with ``pd.NA`` gaps and a DatetimeIndex needs no timestamps argument."""
    pd = pytest.importorskip("pandas")
    values = _spiky()
    index = pd.date_range("2026-11-02", periods=len(values), freq="5min")
    series = pd.Series(values, index=index, dtype="Float64")
    assert series.isna().sum() == 1  # None became pd.NA
    (e,) = detect_deviations(series, warmup_period=0)
    assert (e.index, e.timestamp) == (150, T0 + 150 * 300)
    stamps = [pd.Timestamp(t) for t in index]
    (e2,) = detect_deviations(list(values), stamps, warmup_period=0)
    assert e2.timestamp == e.timestamp
    steps = pd.Series(_noise(100, 14) + _noise(100, 15, level=150.0), index=index)
    (cp,) = detect_change_points(steps)
    assert cp.timestamp == T0 + cp.index * 300
    with pytest.raises(InvalidValueError):
        detect_deviations(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
