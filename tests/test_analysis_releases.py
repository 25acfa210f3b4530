"""Release-against-release comparison: Mann-Whitney U, Cliff's delta, minimum shift."""

from __future__ import annotations

import random

import pytest

from sounding.analysis import cliffs_delta, compare_releases, mann_whitney_u
from sounding.core.exceptions import InvalidValueError


def _sample(n: int, seed: int, level: float) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.lognormvariate(0, 0.3) * level, 1) for _ in range(n)]


@pytest.mark.needs_extras
@pytest.mark.parametrize(
    ("na", "nb", "shift", "seed"),
    [(30, 40, 1.0, 1), (50, 50, 1.1, 2), (200, 150, 1.02, 3), (8, 9, 1.5, 4), (100, 3, 1.0, 5)],
)
def test_mann_whitney_matches_scipy(na: int, nb: int, shift: float, seed: int) -> None:
    """U and the asymptotic p-value (tie and continuity corrected) equal scipy's."""
    from scipy.stats import mannwhitneyu

    a = _sample(na, seed, 100.0)
    b = _sample(nb, seed + 100, 100.0 * shift)
    ref = mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    ours = mann_whitney_u(a, b)
    assert ours.u == pytest.approx(float(ref.statistic))
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-15)


def test_cliffs_delta_by_pair_counting() -> None:
    """Cliff's delta equals P(b > a) - P(b < a) counted over all pairs, ties included."""
    a = [1.0, 2.0, 2.0, 5.0]
    b = [2.0, 3.0, 4.0]
    gt = sum(1 for x in a for y in b if y > x)
    lt = sum(1 for x in a for y in b if y < x)
    assert cliffs_delta(a, b) == pytest.approx((gt - lt) / (len(a) * len(b)))


def test_clear_regression_is_changed_and_up() -> None:
    """A 30 % slower release is significant, large, and reported as going up."""
    r = compare_releases(_sample(200, 10, 100.0), _sample(200, 11, 130.0))
    assert r.changed
    assert r.direction == "up"
    assert r.effect_size in ("medium", "large")
    assert r.relative_shift > 0.2


def test_same_distribution_is_not_changed() -> None:
    """Two samples of the same distribution are not a change."""
    r = compare_releases(_sample(300, 12, 100.0), _sample(300, 13, 100.0))
    assert not r.changed
    assert r.direction == "none"


def test_tiny_significant_shift_is_below_minimum() -> None:
    """A significant but 1 % shift on many samples is below the minimum relative shift."""
    a = [100.0 + (i % 50) * 0.1 for i in range(5000)]
    b = [v * 1.01 for v in a]
    r = compare_releases(a, b)
    assert r.p_value < 0.01
    assert not r.changed


def test_all_tied_values_give_p_one() -> None:
    """When every value is equal there is no evidence of a difference."""
    assert mann_whitney_u([3.0, 3.0], [3.0, 3.0, 3.0]).p_value == 1.0


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.0}, {"min_effect": 2.0}, {"min_relative_shift": -1.0}]
)
def test_compare_releases_arguments_checked(kwargs: dict[str, float]) -> None:
    """Bad thresholds raise naming the argument."""
    with pytest.raises(InvalidValueError):
        compare_releases([1.0, 2.0], [3.0, 4.0], **kwargs)


def test_empty_sample_raises() -> None:
    """A sample without finite values cannot be compared."""
    with pytest.raises(InvalidValueError):
        mann_whitney_u([], [1.0])
