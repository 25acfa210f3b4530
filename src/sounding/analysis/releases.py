"""Release against release: did the distribution of a metric shift between two versions?

Three numbers decide, as performance engineers do it:

* significance: the two-sided Mann-Whitney U test (normal approximation with tie
  correction and continuity correction, the same as ``scipy.stats.mannwhitneyu(...,
  method="asymptotic")``), which needs no normality and ignores outliers' magnitude;
* effect size: Cliff's delta, ``P(b > a) - P(b < a)`` in ``[-1, 1]`` (|delta| < 0.147 is
  negligible, < 0.33 small, < 0.474 medium, larger is large; Romano et al. 2006);
* practical size: the relative shift of the median, ``(median(b) - median(a)) /
  |median(a)|``, must reach ``min_relative_shift`` (a significant 0.3 % shift on a million
  samples is real and irrelevant).

>>> a = [100.0 + (i % 7) for i in range(60)]
>>> b = [130.0 + (i % 7) for i in range(60)]
>>> r = compare_releases(a, b)
>>> r.changed, r.direction, round(r.cliffs_delta, 2)
(True, 'up', 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sounding.analysis._robust import finite, median
from sounding.core.exceptions import InvalidValueError

__all__ = [
    "MannWhitneyResult",
    "ReleaseComparison",
    "cliffs_delta",
    "compare_releases",
    "mann_whitney_u",
]


@dataclass(frozen=True)
class MannWhitneyResult:
    """``u`` is the statistic of the first sample (pairs ``a > b``, ties counted half)."""

    u: float
    p_value: float
    z: float


def _ranks(values: Sequence[float]) -> tuple[list[float], float]:
    """Average ranks (1-based) and the tie term ``sum(t**3 - t)``."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = 0.0
    i = 0
    n = len(values)
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        avg = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        t = j - i + 1
        ties += t * t * t - t
        i = j + 1
    return ranks, ties


def _normal_sf(z: float) -> float:
    """Upper tail of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> MannWhitneyResult:
    """Two-sided Mann-Whitney U test, normal approximation with tie and continuity
    correction. Both samples need at least one finite value.

    >>> round(mann_whitney_u([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]).p_value, 4)
    0.0304
    """
    xa, xb = finite(a), finite(b)
    if not xa or not xb:
        raise InvalidValueError(
            "a/b", f"<{len(xa)} and {len(xb)} finite values>", "at least one value in each"
        )
    n1, n2 = len(xa), len(xb)
    ranks, ties = _ranks(xa + xb)
    r1 = sum(ranks[:n1])
    u1 = r1 - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    n = n1 + n2
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        # Every value tied: no evidence of any difference.
        return MannWhitneyResult(u=u1, p_value=1.0, z=0.0)
    # Two-sided with continuity correction, as scipy: use the larger of U1, U2.
    u_big = max(u1, n1 * n2 - u1)
    z = (u_big - mu - 0.5) / math.sqrt(var)
    p = min(1.0, 2.0 * _normal_sf(z))
    signed_z = z if u1 >= mu else -z
    return MannWhitneyResult(u=u1, p_value=p, z=signed_z)


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
    """Cliff's delta ``P(b > a) - P(b < a)``, from ranks in O(n log n).

    >>> cliffs_delta([1.0, 2.0], [3.0, 4.0])
    1.0
    """
    xa, xb = finite(a), finite(b)
    if not xa or not xb:
        raise InvalidValueError(
            "a/b", f"<{len(xa)} and {len(xb)} finite values>", "at least one value in each"
        )
    n1, n2 = len(xa), len(xb)
    ranks, _ = _ranks(xa + xb)
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0  # pairs a > b, ties half
    return 1.0 - 2.0 * u1 / (n1 * n2)


@dataclass(frozen=True)
class ReleaseComparison:
    """The verdict on ``b`` (new release) against ``a`` (old release).

    ``changed`` is true when the shift is significant (``p_value < alpha``), not negligible
    (``|cliffs_delta| >= min_effect``) and large enough (``|relative_shift| >=
    min_relative_shift``); ``direction`` is then ``"up"`` or ``"down"``, else ``"none"``.
    """

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    relative_shift: float
    u: float
    p_value: float
    cliffs_delta: float
    changed: bool
    direction: Literal["up", "down", "none"]

    @property
    def effect_size(self) -> str:
        """Romano's label for ``|cliffs_delta|``: negligible, small, medium or large."""
        d = abs(self.cliffs_delta)
        if d < 0.147:
            return "negligible"
        if d < 0.33:
            return "small"
        if d < 0.474:
            return "medium"
        return "large"


def _relative(old: float, new: float) -> float:
    if old == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return (new - old) / abs(old)


def compare_releases(
    a_values: Sequence[float],
    b_values: Sequence[float],
    *,
    alpha: float = 0.01,
    min_effect: float = 0.147,
    min_relative_shift: float = 0.05,
) -> ReleaseComparison:
    """Compare the values of release ``b`` with those of release ``a`` (see the module)."""
    if not 0 < alpha < 1:
        raise InvalidValueError("alpha", alpha, "a number between 0 and 1")
    if not 0 <= min_effect <= 1:
        raise InvalidValueError("min_effect", min_effect, "a number from 0 to 1")
    if not (math.isfinite(min_relative_shift) and min_relative_shift >= 0):
        raise InvalidValueError("min_relative_shift", min_relative_shift, "a number >= 0")
    xa, xb = finite(a_values), finite(b_values)
    test = mann_whitney_u(xa, xb)
    delta = cliffs_delta(xa, xb)
    ma, mb = median(xa), median(xb)
    shift = _relative(ma, mb)
    changed = test.p_value < alpha and abs(delta) >= min_effect and abs(shift) >= min_relative_shift
    direction: Literal["up", "down", "none"] = "none"
    if changed:
        direction = "up" if delta > 0 else "down"
    return ReleaseComparison(
        n_a=len(xa),
        n_b=len(xb),
        median_a=ma,
        median_b=mb,
        relative_shift=shift,
        u=test.u,
        p_value=test.p_value,
        cliffs_delta=delta,
        changed=changed,
        direction=direction,
    )
