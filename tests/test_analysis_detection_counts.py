"""Change points on sparse counters (the Poisson likelihood-ratio path)."""

from __future__ import annotations

import math
import random

import pytest

from sounding.analysis import detect_change_points
from sounding.analysis._counts import is_sparse_counts


def _poisson(rng: random.Random, lam: float) -> float:
    """Knuth's Poisson sampler (small rates)."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return float(k)
        k += 1


def _counts(rates: list[tuple[float, int]], seed: int) -> list[float]:
    rng = random.Random(seed)
    return [_poisson(rng, lam) for lam, n in rates for _ in range(n)]


def test_sparse_counter_is_recognised_and_dense_data_is_not() -> None:
    """Mostly-zero integers take the count path; fractional or busy data does not."""
    assert is_sparse_counts(_counts([(0.1, 500)], 1))
    assert not is_sparse_counts([0.5, 0.0, 1.0] * 20)
    assert not is_sparse_counts(_counts([(30.0, 200)], 1))
    assert not is_sparse_counts([0.0] * 100)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_rate_step_on_sparse_counter_is_one_change_with_mean_rates(seed: int) -> None:
    """A rate step 0.1 -> 0.6 per interval is found near its start, before/after are rates."""
    x = _counts([(0.1, 1500), (0.6, 1500)], seed)
    cps = detect_change_points(x)
    assert len(cps) == 1
    assert abs(cps[0].index - 1500) <= 60
    assert 0.05 < cps[0].before < 0.16
    assert 0.45 < cps[0].after < 0.75
    assert cps[0].score > 1


@pytest.mark.parametrize("seed", range(10))
def test_stationary_sparse_counter_has_no_change(seed: int) -> None:
    """Plain Poisson noise at a low rate gives no change point."""
    assert detect_change_points(_counts([(0.15, 3000)], seed)) == []


def test_isolated_burst_on_sparse_counter_is_not_a_regime() -> None:
    """A one-point burst of 12 errors is capped as an outlier, not two change points."""
    x = _counts([(0.1, 2000)], 7)
    x[1000] = 12.0
    assert detect_change_points(x) == []


def test_daily_profile_of_sparse_counter_is_not_read_as_changes() -> None:
    """Errors that follow a daily traffic curve over 4 days give no change point."""
    rng = random.Random(3)
    ts = [1.7e9 + 300.0 * i for i in range(4 * 288)]
    x = [_poisson(rng, 0.3 * (1 + 0.9 * math.sin(2 * math.pi * (t % 86400) / 86400))) for t in ts]
    assert detect_change_points(x, ts) == []


def _weekly_series(step_at: int | None, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    level = [1.3, 1.0, 0.9, 1.1, 0.8, 0.5, 0.35]  # Monday .. Sunday
    start = 1793577600.0  # a Monday 00:00 UTC
    ts = [start + 3600.0 * i for i in range(14 * 24)]
    x = [
        100.0 * level[i // 24 % 7] * (2.0 if step_at is not None and i >= step_at else 1.0)
        + rng.gauss(0, 3)
        for i in range(len(ts))
    ]
    return x, ts


def test_consistent_day_of_week_levels_are_not_read_as_changes() -> None:
    """Two weeks with a level per weekday (Mondays busy, Sundays quiet) give no change."""
    x, ts = _weekly_series(None, 1)
    assert detect_change_points(x, ts) == []


def test_step_on_top_of_day_of_week_levels_is_still_found() -> None:
    """A doubling on day 9 is found although the weekday levels are modelled."""
    x, ts = _weekly_series(9 * 24 + 12, 2)
    cps = detect_change_points(x, ts)
    assert any(abs(c.index - (9 * 24 + 12)) <= 3 for c in cps)
