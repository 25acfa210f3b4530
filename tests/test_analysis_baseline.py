"""Baselines from merged sketches, and comparison against them."""

from __future__ import annotations

import math
import random

import pytest

from sounding.analysis import Baseline, baseline_from_sketches, compare
from sounding.core import config
from sounding.core.config import MetricsConfig
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.core.sketch import QuantileSketch


def _interval(values: list[float]) -> QuantileSketch:
    s = QuantileSketch()
    s.add_many(values)
    return s


def test_percentiles_come_from_merged_sketches_not_averages() -> None:
    """p95 of a busy slow interval and a quiet fast one is the p95 of all observations."""
    fast = [1.0] * 990 + [2.0] * 10  # p95 = 1
    slow = [100.0] * 10  # p95 = 100, but only 10 observations
    b = baseline_from_sketches([_interval(fast), _interval(slow)])
    everything = sorted(fast + slow)
    true_p95 = everything[int(0.95 * len(everything)) - 1]
    assert b.p95 == pytest.approx(true_p95, rel=0.01)
    averaged = (1.0 + 100.0) / 2
    assert abs(b.p95 - averaged) > 10  # type: ignore[operator]
    assert b.count == 1010
    assert b.intervals == 2


def test_percentiles_within_sketch_error_of_exact() -> None:
    """p50/p95/p99 are within 1 % of the exact order statistics over all intervals."""
    rng = random.Random(1)
    chunks = [[rng.lognormvariate(0, 1) for _ in range(500)] for _ in range(20)]
    b = baseline_from_sketches([_interval(c) for c in chunks])
    allv = sorted(v for c in chunks for v in c)
    for stat, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        exact = allv[math.ceil(q * len(allv)) - 1]
        assert b.stat(stat) == pytest.approx(exact, rel=0.011)


def test_spread_is_scaled_mad_of_interval_medians() -> None:
    """spread = 1.4826 x MAD of the per-interval medians, robust to one wild interval."""
    medians = [10.0, 11.0, 12.0, 13.0, 14.0, 1000.0]
    b = baseline_from_sketches([_interval([m] * 5) for m in medians])
    # median 12.5; abs deviations 2.5 1.5 .5 .5 1.5 987.5 -> MAD 1.5
    assert b.spread == pytest.approx(1.4826 * 1.5, rel=0.02)


def test_empty_window_gives_empty_baseline() -> None:
    """No observations: percentiles None, count 0, and None/empty intervals are skipped."""
    b = baseline_from_sketches([None, QuantileSketch()], window=(0.0, 60.0), label="1.0")
    assert (b.p50, b.p95, b.p99, b.count, b.spread) == (None, None, None, 0, 0.0)
    assert b.window == (0.0, 60.0)
    assert b.as_dict()["label"] == "1.0"


def test_non_sketch_is_rejected() -> None:
    """Only sketches can be merged."""
    with pytest.raises(InvalidTypeError):
        baseline_from_sketches([[1.0, 2.0]])  # type: ignore[list-item]


def _base(p: float = 100.0) -> Baseline:
    return Baseline(p50=p, p95=2 * p, p99=3 * p, count=10, spread=1.0)


@pytest.mark.parametrize(
    ("current", "exceeded"),
    [
        ({"p50": 119.0}, []),
        ({"p50": 121.0}, ["p50"]),
        ({"p50": 79.0, "p95": 200.0}, ["p50"]),
        ({"p95": 260.0, "p99": 300.0}, ["p95"]),
    ],
)
def test_compare_threshold_per_statistic(current: dict[str, float], exceeded: list[str]) -> None:
    """A statistic exceeds when it moved by more than 20 % either way."""
    c = compare(current, _base(), threshold_percent=20.0)
    assert c.exceeded_stats == exceeded
    assert c.exceeded == bool(exceeded)


def test_compare_percent_and_direction() -> None:
    """Relative change is in percent of the baseline, with a direction."""
    c = compare({"p50": 150.0, "p95": 100.0}, _base())
    assert c.changes["p50"].percent == pytest.approx(50.0)
    assert c.changes["p50"].direction == "up"
    assert c.changes["p95"].direction == "down"


def test_compare_default_threshold_from_settings() -> None:
    """Without a threshold, MetricsConfig.deviation_threshold_percent applies."""
    config.configure(
        metrics=MetricsConfig(deviation_threshold_percent=60.0),
        environ={},
        data_dir="/tmp/sounding-test-analysis",
    )
    try:
        assert compare({"p50": 150.0}, _base()).threshold_percent == 60.0
        assert not compare({"p50": 150.0}, _base()).exceeded
    finally:
        config.reset()
    assert compare({"p50": 150.0}, _base()).threshold_percent == 20.0


def test_compare_accepts_sketch_and_baseline() -> None:
    """The current window may be a sketch or another Baseline."""
    s = _interval([100.0] * 50)
    assert not compare(s, _base()).changes["p50"].exceeded
    assert compare(_base(200.0), _base()).exceeded_stats == ["p50", "p95", "p99"]


def test_compare_zero_and_missing() -> None:
    """A zero baseline gives an infinite change; a missing value gives None, not exceeded."""
    zero = Baseline(p50=0.0, p95=None, p99=0.0, count=1, spread=0.0)
    c = compare({"p50": 1.0, "p95": 1.0, "p99": 0.0}, zero, threshold_percent=20)
    assert math.isinf(c.changes["p50"].percent)  # type: ignore[arg-type]
    assert c.changes["p95"].percent is None
    assert not c.changes["p95"].exceeded
    assert c.changes["p99"].percent == 0.0


@pytest.mark.parametrize("threshold", [0, -5, math.inf, "20"])
def test_compare_bad_threshold(threshold: object) -> None:
    """The threshold must be a finite positive number."""
    with pytest.raises(InvalidValueError):
        compare({"p50": 1.0}, _base(), threshold_percent=threshold)  # type: ignore[arg-type]


def test_compare_unknown_stat() -> None:
    """Only p50, p95 and p99 can be compared."""
    with pytest.raises(InvalidValueError):
        compare({"p42": 1.0}, _base(), threshold_percent=20)
