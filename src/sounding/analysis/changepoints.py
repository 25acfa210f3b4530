"""Offline change-point detection: where does a metric's history enter a new regime?

Three methods, all deterministic and without per-series tuning:

``"binseg"`` (default)
    Binary segmentation with a penalised Gaussian cost: split a segment where the drop in
    cost is largest, keep the split if the drop exceeds the penalty, recurse on both halves.
    O(n log n) on cumulative sums.
``"pelt"``
    Pruned Exact Linear Time (Killick, Fearnhead & Eckley 2012): the exact minimum of
    total cost + penalty x number of changes. Linear when changes are frequent, quadratic on
    long stretches without change (pruning then removes little).
``"edivisive"``
    E-divisive (Matteson & James 2014), as used by MongoDB's and Hunter's performance
    regression detection: split where the energy distance between the two sides is largest
    and keep the split if a permutation test finds it significant. Distribution-free (it also
    sees changes in shape), slower. The permutation RNG is seeded: same input, same output.

The series is modelled rather than the penalty inflated (details in ``docs/analysis.md``):
a variance-stabilising transform chosen on the whole series (counts, durations); with
timestamps spanning two days the time-of-day profile is removed (and, with a week, a clear
weekend level); isolated outliers are clipped with a Hampel filter (centred window of 11
points, 5 robust standard deviations); the series is standardised with a robust noise estimate
from first differences, so the same penalty suits every scale. A sparse counter (mostly 0
and 1, such as errors) has no such scale: ``binseg`` and ``pelt`` then segment it with the
Poisson deviance, the penalty scaled by the counts' measured dispersion (``_counts``).

The penalty is ``penalty_factor x log(n)`` (10 log n by default, 12 for ``"linear"``), times
the long-run variance factor of the noise (``(1 + rho) / (1 - rho)`` for AR(1) noise: the null
distribution of a split's gain), estimated robustly as the smaller of a block-means estimate
and a lag-1 estimate, so wandering noise is not cut into regimes while a smooth seasonal shape
does not read as a unit root. Below 30 points it is 1: short series keep their obvious change.

After ``binseg`` or ``pelt`` with a constant-level cost, staircases are merged into ramps
(``ramps=True``): a change point is removed when one segment with a linear trend explains its
two neighbours better (cost + penalties, a slope costing ``4 log n``), and the remaining change
points are re-placed given which segments are lines. Two changes closer than two minimum
segments keep only the stronger. Above :data:`QUADRATIC_LIMIT` points ``pelt`` and
``edivisive`` fall back to ``binseg``.

The cost ``"meanvar"`` (default) is twice the Gaussian negative log-likelihood with a
change in mean and variance, ``n * log(variance)``; ``"mean"`` assumes a constant (robustly
estimated) variance, ``sum((x - mean)**2) / sigma**2``; ``"linear"`` fits a line (level and
slope) per segment, for ramps.

>>> series = [10.0, 10.2, 9.9, 10.1] * 10 + [14.0, 14.2, 13.9, 14.1] * 10
>>> [c.index for c in detect_change_points(series)]
[40]
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sounding.analysis._counts import count_segmentation, is_sparse_counts
from sounding.analysis._inputs import prepare
from sounding.analysis._robust import MAD_SCALE, choose_transform, diff_sigma, median, robust_sigma
from sounding.core.exceptions import InvalidTypeError, InvalidValueError

__all__ = [
    "CHANGE_POINT_METHODS",
    "DEFAULT_CHANGE_POINT_METHOD",
    "QUADRATIC_LIMIT",
    "ChangePoint",
    "detect_change_points",
]

Method = Literal["binseg", "pelt", "edivisive"]
CHANGE_POINT_METHODS: tuple[str, ...] = ("binseg", "pelt", "edivisive")
#: The default method, chosen by F1 and run time on ``bench/bench_detection.py``.
DEFAULT_CHANGE_POINT_METHOD: Method = "binseg"

#: Above this many points ``"pelt"`` and ``"edivisive"`` (quadratic in the worst case) fall
#: back to ``"binseg"`` (O(n log n)), so no call hangs for minutes.
QUADRATIC_LIMIT = 10_000


@dataclass(frozen=True)
class ChangePoint:
    """Where a new regime starts.

    ``index`` is the first index of the new segment in the caller's ``values``;
    ``timestamp`` its float epoch seconds (UTC) when timestamps were given, else ``None``.
    ``before``/``after`` are the medians of the segments before and after it (original
    units; for a sparse counter, whose medians are both 0, their mean rates). ``score`` is
    the evidence for the change: the drop in segmentation cost it brings, in units of the
    penalty (> 1 for a kept change; always finite, also for a change from a constant
    history, whose variance is floored at 1 % of the noise variance).
    """

    index: int
    timestamp: float | None
    before: float
    after: float
    score: float = 0.0

    @property
    def relative_change(self) -> float | None:
        """``(after - before) / |before|`` (``None`` when ``before`` is 0 or the ratio is
        not finite)."""
        if self.before == 0:
            return None
        rel = (self.after - self.before) / abs(self.before)
        return rel if math.isfinite(rel) else None  # a subnormal baseline overflows

    @property
    def percent(self) -> float | None:
        """The relative change in percent (``None`` when ``before`` is 0)."""
        rel = self.relative_change
        return None if rel is None else rel * 100.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (every number finite or ``None``)."""
        return {
            "index": self.index,
            "timestamp": self.timestamp,
            "before": self.before,
            "after": self.after,
            "relative_change": self.relative_change,
            "percent": self.percent,
            "score": self.score,
        }


_DAY = 86400.0
_MAX_BINS = 1440
#: The largest score a change point reports (numerically degenerate input).
_SCORE_CAP = 1e12
_Z_CLIP = 1e6
_DEFAULT_PENALTY = {"meanvar": 10.0, "mean": 10.0, "linear": 12.0}
#: The extra penalty of a segment's slope, per log(n), when staircases are merged into ramps.
_SLOPE_PENALTY = 4.0
#: The long-run variance factor ``(1 + rho) / (1 - rho)`` multiplies the penalty to this power.
_DEPENDENCE_POWER = 1.0
_RHO_MAX = 0.95
_HAMPEL_HALF_WIDTH = 5
_HAMPEL_THRESHOLD = 5.0
# Segment variances below this (in units of the robust noise variance) are floored, so that
# a few tied values cannot make a segment infinitely cheap.
_VAR_FLOOR = 0.01


def _hampel(x: list[float]) -> list[float]:
    """Replace points far from their centred moving median by that median."""
    n = len(x)
    h = _HAMPEL_HALF_WIDTH
    if n < 2 * h + 1:
        return list(x)
    out = list(x)
    window = sorted(x[: 2 * h + 1])
    for i in range(n):
        lo, hi = i - h, i + h
        if lo > 0 and hi < n:
            # Slide the sorted window one step: drop x[lo-1], add x[hi].
            del window[bisect.bisect_left(window, x[lo - 1])]
            bisect.insort(window, x[hi])
        med = window[h]
        mad = sorted(abs(v - med) for v in window)[h]
        if mad > 0 and abs(x[i] - med) > _HAMPEL_THRESHOLD * MAD_SCALE * mad:
            out[i] = med
    return out


def _dependence(x: list[float]) -> float:
    """How much dependent noise inflates the evidence for a change (>= 1): the ratio of the
    long-run variance to the within-block variance, from block means.

    For a split into segments of lengths ``m`` and ``k`` the likelihood gain under no change
    is about chi-squared times ``sigma_LR^2 / sigma^2`` (long-run over marginal variance):
    ``(1 + rho) / (1 - rho)`` for AR(1) noise, 1 for independent noise. The series is cut into
    blocks of ``L`` points; second differences of consecutive block means have variance
    ``6 sigma_LR^2 / L``, a trend cancels in them and a step moves only two, so their MAD
    estimates ``sigma_LR`` robustly; ``sigma^2`` is the median within-block variance. A
    deterministic pattern shorter than a block (a sawtooth, a short cycle) does not wander and costs
    nothing, unlike a lag-1 correlation, which reads any smooth shape as near-unit-root
    dependence. Capped at the factor of ``rho = 0.95``.
    """
    n = len(x)
    if n < 30:
        return 1.0
    size = max(5, min(50, n // 20))
    blocks = n // size
    if blocks < 6:
        return 1.0
    means: list[float] = []
    within: list[float] = []
    for k in range(blocks):
        seg = x[k * size : (k + 1) * size]
        mu = sum(seg) / size
        means.append(mu)
        within.append(sum((v - mu) * (v - mu) for v in seg) / (size - 1))
    # Second differences of block means: a trend (even over part of the series) cancels,
    # a step or a kink moves two of them; var = 6 sigma_LR^2 / L.
    d = [means[k + 2] - 2.0 * means[k + 1] + means[k] for k in range(blocks - 2)]
    spread = MAD_SCALE * median([abs(v) for v in d])
    w = median(within)
    if w <= 0:
        return 1.0
    factor = size * spread * spread / 6.0 / w
    cap = ((1.0 + _RHO_MAX) / (1.0 - _RHO_MAX)) ** _DEPENDENCE_POWER
    block = min(max(factor**_DEPENDENCE_POWER, 1.0), cap)
    return float(min(block, _lag_dependence(x)))


def _lag_dependence(x: list[float]) -> float:
    """The same factor from the lag-1 correlation of first differences.

    ``c = -(1 - rho) / 2`` for AR(1) noise, and a step changes only one difference, so ``c``
    is estimated robustly (Gnanadesikan-Kettenring with MADs) and ``rho = 1 + 2c``. Noisy
    block means overstate dependence on short series, a smooth deterministic shape fools
    this one (it reads as ``rho`` near 1): :func:`_dependence` takes the smaller of the two.
    """
    d = [x[i + 1] - x[i] for i in range(len(x) - 1)]
    centre = median(d)  # a steady trend is not dependence
    d = [v - centre for v in d]
    plus = median([abs(d[i] + d[i + 1]) for i in range(len(d) - 1)])
    minus = median([abs(d[i] - d[i + 1]) for i in range(len(d) - 1)])
    plus, minus = plus * plus, minus * minus
    if plus + minus <= 0:
        return math.inf  # mostly tied differences: no information, the block factor decides
    rho = min(max(1.0 + 2.0 * (plus - minus) / (plus + minus), 0.0), _RHO_MAX)
    return float(((1.0 + rho) / (1.0 - rho)) ** _DEPENDENCE_POWER)


def _standardise(x: list[float]) -> list[float]:
    center = median(x)
    scale = diff_sigma(x) or robust_sigma(x)
    if scale <= 0:
        spread = max(x) - min(x)
        scale = spread if spread > 0 else 1.0
    # Clipped at a million noise sd: beyond any meaningful scale, and squares of the
    # clipped values cannot overflow the cumulative sums.
    lim = _Z_CLIP
    return [min(max((v - center) / scale, -lim), lim) for v in x]


def _cost_function(x: list[float], cost: str) -> Callable[[int, int], float]:
    s1 = [0.0]
    s2 = [0.0]
    a = b = 0.0
    for v in x:
        a += v
        b += v * v
        s1.append(a)
        s2.append(b)
    log = math.log

    if cost == "linear":
        # Sums of t, t*t and t*x as well: each segment gets its own line (level and slope).
        st = [0.0]
        stt = [0.0]
        stx = [0.0]
        c1 = c2 = c3 = 0.0
        for t, v in enumerate(x):
            c1 += t
            c2 += t * t
            c3 += t * v
            st.append(c1)
            stt.append(c2)
            stx.append(c3)

        def linear_cost(i: int, j: int) -> float:
            m = j - i
            sx = s1[j] - s1[i]
            sxx = s2[j] - s2[i] - sx * sx / m
            sa = st[j] - st[i]
            saa = stt[j] - stt[i] - sa * sa / m
            sax = stx[j] - stx[i] - sa * sx / m
            ss = sxx - (sax * sax / saa if saa > 0 else 0.0)
            var = ss / m
            return m * log(var if var > _VAR_FLOOR else _VAR_FLOOR)

        return linear_cost

    if cost == "mean":

        def mean_cost(i: int, j: int) -> float:
            m = j - i
            d = s1[j] - s1[i]
            return (s2[j] - s2[i]) - d * d / m

        return mean_cost

    def meanvar_cost(i: int, j: int) -> float:
        m = j - i
        mu = (s1[j] - s1[i]) / m
        var = (s2[j] - s2[i]) / m - mu * mu
        return m * log(var if var > _VAR_FLOOR else _VAR_FLOOR)

    return meanvar_cost


def _merge_ramps(
    z: list[float], found: list[int], beta: float, slope_penalty: float, min_size: int
) -> list[int]:
    """Turn staircases into ramps: a slow drift cut into many small steps is refitted.

    Greedily remove the change point whose two neighbouring segments are better explained
    (cost + penalties) by one segment with a linear trend, while any removal helps; then
    move every remaining change point to its best position between its neighbours, given
    which segments are now lines. Plain steps are left alone: a line fits a step badly.
    """
    n = len(z)
    const = _cost_function(z, "meanvar")
    line = _cost_function(z, "linear")
    cps = list(found)
    linear = [False] * (len(cps) + 1)  # per segment

    def seg_cost(a: int, b: int, is_line: bool) -> float:
        return line(a, b) + slope_penalty if is_line else const(a, b)

    while cps:
        bounds = [0, *cps, n]
        best_gain, best_k = 0.0, -1
        for k in range(len(cps)):
            a, c, b = bounds[k], bounds[k + 1], bounds[k + 2]
            before = seg_cost(a, c, linear[k]) + seg_cost(c, b, linear[k + 1]) + beta
            gain = before - seg_cost(a, b, True)
            if gain > best_gain:
                best_gain, best_k = gain, k
        if best_k < 0:
            break
        del cps[best_k]
        linear[best_k : best_k + 2] = [True]
    if not any(linear):
        return cps
    # Refine: the edges of a ramp were found as the first and last stair of a staircase.
    for k in range(len(cps)):
        bounds = [0, *cps, n]
        a, b = bounds[k], bounds[k + 2]
        best_t = cps[k]
        best = seg_cost(a, best_t, linear[k]) + seg_cost(best_t, b, linear[k + 1])
        for t in range(a + min_size, b - min_size + 1):
            total = seg_cost(a, t, linear[k]) + seg_cost(t, b, linear[k + 1])
            if total < best:
                best, best_t = total, t
        cps[k] = best_t
    return sorted(set(cps))


def _best_split_numpy(
    np: Any, s1: Any, s2: Any, a: int, b: int, min_size: int, cost: str
) -> tuple[int, float]:
    """The best split of ``[a, b)`` and its gain, vectorised (``"meanvar"``/``"mean"``)."""
    t = np.arange(a + min_size, b - min_size + 1)
    m1 = (t - a).astype(float)
    m2 = (b - t).astype(float)
    l1 = s1[t] - s1[a]
    l2 = s1[b] - s1[t]
    q1 = s2[t] - s2[a]
    q2 = s2[b] - s2[t]
    n = float(b - a)
    tot1 = s1[b] - s1[a]
    tot2 = s2[b] - s2[a]
    if cost == "mean":
        total = tot2 - tot1 * tot1 / n
        gains = total - (q1 - l1 * l1 / m1) - (q2 - l2 * l2 / m2)
    else:
        u1 = l1 / m1
        u2 = l2 / m2
        v1 = np.maximum(q1 / m1 - u1 * u1, _VAR_FLOOR)
        v2 = np.maximum(q2 / m2 - u2 * u2, _VAR_FLOOR)
        ut = tot1 / n
        vt = max(tot2 / n - ut * ut, _VAR_FLOOR)
        gains = n * math.log(vt) - m1 * np.log(v1) - m2 * np.log(v2)
    k = int(np.argmax(gains))
    return int(t[k]), float(gains[k])


def _best_split_meanvar(
    p1: list[float], p2: list[float], a: int, b: int, min_size: int
) -> tuple[int, float]:
    """The best split of ``[a, b)`` for the ``"meanvar"`` cost, in one pure-Python loop."""
    log = math.log
    floor = _VAR_FLOOR
    n = b - a
    a1, a2 = p1[a], p2[a]
    t1, t2 = p1[b] - a1, p2[b] - a2
    mt = t1 / n
    vt = t2 / n - mt * mt  # x * x gives inf on overflow where ** raises
    total = n * log(vt if vt > floor else floor)
    best_t, best_gain = -1, 0.0
    b1, b2 = p1[b], p2[b]
    for t in range(a + min_size, b - min_size + 1):
        m1 = t - a
        m2 = b - t
        l1 = p1[t] - a1
        l2 = b1 - p1[t]
        u1 = l1 / m1
        u2 = l2 / m2
        v1 = (p2[t] - a2) / m1 - u1 * u1
        v2 = (b2 - p2[t]) / m2 - u2 * u2
        gain = total - m1 * log(v1 if v1 > floor else floor) - m2 * log(v2 if v2 > floor else floor)
        if gain > best_gain:
            best_gain, best_t = gain, t
    return best_t, best_gain


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:  # the pure-Python path serves (slower, same result)
        return None
    return numpy


def _binseg(
    n: int,
    cost: Callable[[int, int], float],
    beta: float,
    min_size: int,
    z: list[float] | None = None,
    cost_name: str = "",
) -> list[int]:
    np = _numpy() if z is not None and cost_name in ("meanvar", "mean") else None
    if np is not None:
        arr = np.asarray(z, dtype=float)
        s1 = np.concatenate(([0.0], np.cumsum(arr)))
        s2 = np.concatenate(([0.0], np.cumsum(arr * arr)))
    elif z is not None and cost_name == "meanvar":
        p1 = [0.0]
        p2 = [0.0]
        acc1 = acc2 = 0.0
        for v in z:
            acc1 += v
            acc2 += v * v
            p1.append(acc1)
            p2.append(acc2)
    found: list[int] = []
    stack = [(0, n)]
    while stack:
        a, b = stack.pop()
        if b - a < 2 * min_size:
            continue
        if np is not None:
            best_t, best_gain = _best_split_numpy(np, s1, s2, a, b, min_size, cost_name)
        elif cost_name == "meanvar" and z is not None:
            best_t, best_gain = _best_split_meanvar(p1, p2, a, b, min_size)
        else:
            total = cost(a, b)
            best_gain = 0.0
            best_t = -1
            for t in range(a + min_size, b - min_size + 1):
                gain = total - cost(a, t) - cost(t, b)
                if gain > best_gain:
                    best_gain, best_t = gain, t
        if best_t >= 0 and best_gain > beta:
            found.append(best_t)
            stack.append((a, best_t))
            stack.append((best_t, b))
    return sorted(found)


def _deseasonalise(y: list[float], ts: list[float] | None) -> list[float]:
    """Remove the time-of-day profile (and a weekend level with a week of data).

    The daily profile is the median, per sampling step of the day (UTC), of the values minus
    their own day's median (steps barely move it: medians over days); with a week of data
    a clear weekend level is removed too (see :func:`_remove_weekend`).
    """
    if ts is None or len(y) < 96 or ts[-1] - ts[0] < 2 * _DAY:
        return y
    # One bin per sampling step (at most 1,440, one a minute), so a nightly job of half an
    # hour is removed whole; each bin's median is over the days.
    steps = sorted(ts[i + 1] - ts[i] for i in range(len(ts) - 1))
    step = steps[len(steps) // 2]
    bins = int(min(max(round(_DAY / step), 24), _MAX_BINS)) if step > 0 else 48
    width = _DAY / bins
    day = [int(t // _DAY) for t in ts]
    slot = [int((t % _DAY) // width) for t in ts]
    by_day: dict[int, list[float]] = {}
    for d, v in zip(day, y, strict=True):
        by_day.setdefault(d, []).append(v)
    day_med = {d: median(vs) for d, vs in by_day.items()}
    by_slot: list[list[float]] = [[] for _ in range(bins)]
    for d, k, v in zip(day, slot, y, strict=True):
        by_slot[k].append(v - day_med[d])
    profile = [median(r) if len(r) >= 3 else 0.0 for r in by_slot]
    # A day that does not vary at all (a constant before a launch) shows no cycle and
    # gets none added.
    amp = {d: 1.0 if max(vs) > min(vs) else 0.0 for d, vs in by_day.items()}
    # Likewise a run of identical values (a stretch of the launch day before the launch).
    flat = [False] * len(y)
    start = 0
    for i in range(1, len(y) + 1):
        if i == len(y) or y[i] != y[start]:
            if i - start >= 12:
                flat[start:i] = [True] * (i - start)
            start = i
    out = [
        v if flat[i] else v - amp[d] * profile[k]
        for i, (d, k, v) in enumerate(zip(day, slot, y, strict=True))
    ]
    if ts[-1] - ts[0] < 7 * _DAY:
        return out
    out = _remove_weekend(out, day, slot)
    if ts[-1] - ts[0] < 14 * _DAY - 2 * width:
        return out
    return _remove_weekday(out, day)


_WEEKDAY_F = 7.0  # about the 1 % point of F(6, 7): two weeks, seven day-of-week means


def _remove_weekday(out: list[float], day: list[int]) -> list[float]:
    """Remove a day-of-week level (Mondays busier than Thursdays) with two weeks or more,
    only when it is consistent: the spread of the seven day-of-week means against the
    disagreement of the same weekday across weeks (a one-way F statistic) beyond
    ``_WEEKDAY_F``. A step or a drift makes the weeks disagree, so it is not absorbed."""
    by_day: dict[int, list[float]] = {}
    for d, v in zip(day, out, strict=True):
        by_day.setdefault(d, []).append(v)
    full = max(len(v) for v in by_day.values())
    level = {
        d: median(vs) for d, vs in by_day.items() if len(vs) >= full // 2 and max(vs) > min(vs)
    }
    first, last = min(by_day), max(by_day)
    groups: dict[int, list[float]] = {}
    for d, lv in level.items():
        # Against the mean of a whole week around the day (each weekday once), so a step
        # elsewhere in the series does not move it.
        s = min(max(d - 3, first), last - 6)
        week = [level[e] for e in range(s, s + 7) if e in level]
        if len(week) == 7:
            groups.setdefault((d + 3) % 7, []).append(lv - sum(week) / 7)
    if len(groups) < 7 or any(len(g) < 2 for g in groups.values()):
        return out
    means = {w: sum(g) / len(g) for w, g in groups.items()}
    grand = sum(means.values()) / 7
    reps = sum(len(g) for g in groups.values())
    within = sum((v - means[w]) ** 2 for w, g in groups.items() for v in g) / (reps - 7)
    between = sum(len(g) * (means[w] - grand) ** 2 for w, g in groups.items()) / 6
    if within <= 0 or between / within < _WEEKDAY_F:
        return out
    return [v - (means[(d + 3) % 7] - grand) for d, v in zip(day, out, strict=True)]


def _remove_weekend(out: list[float], day: list[int], slot: list[int]) -> list[float]:
    """Remove a weekend level when the data shows one clearly (weekends x0.5 are common).

    Each weekend day's level (its median) is compared with the nearest weekdays' levels
    before and after it; the weekend effect is removed only when every weekend day agrees
    in sign and lies beyond three times the day-to-day spread of weekday levels. Days are
    UTC days; 1970-01-01 was a Thursday.
    """
    by_day: dict[int, list[float]] = {}
    for d, v in zip(day, out, strict=True):
        by_day.setdefault(d, []).append(v)
    full = max(len(v) for v in by_day.values())
    level = {d: median(v) for d, v in by_day.items() if len(v) >= full // 2}

    def weekend(d: int) -> bool:
        return (d + 3) % 7 >= 5  # day 0 (1970-01-01) was a Thursday

    weekdays = sorted(d for d in level if not weekend(d))
    steps = [level[b] - level[a] for a, b in itertools.pairwise(weekdays) if b == a + 1]
    if len(steps) < 3:
        return out
    spread = MAD_SCALE * median([abs(v - median(steps)) for v in steps])
    effects = []
    for d in sorted(level):
        if not weekend(d):
            continue
        before = [level[e] for e in range(d - 1, d - 4, -1) if e in level and not weekend(e)][:1]
        after = [level[e] for e in range(d + 1, d + 4) if e in level and not weekend(e)][:1]
        ref = before + after
        if ref:
            effects.append(level[d] - median(ref))
    if len(effects) < 2:
        return out
    if not (all(e > 3 * spread for e in effects) or all(e < -3 * spread for e in effects)):
        return out
    effect = median(effects)
    return [v - effect if weekend(d) else v for d, v in zip(day, out, strict=True)]


def _scores(
    z: list[float], found: list[int], cost: Callable[[int, int], float], beta: float
) -> list[float]:
    """Each change's cost drop against merging it with its neighbours, in penalty units."""
    bounds = [0, *found, len(z)]
    out = []
    for k in range(len(found)):
        a, t, b = bounds[k], bounds[k + 1], bounds[k + 2]
        gain = cost(a, b) - cost(a, t) - cost(t, b)
        score = gain / beta if beta > 0 else gain
        # Degenerate input (values near the float limits) can overflow the costs: the
        # score is capped, never inf or NaN.
        out.append(min(score, _SCORE_CAP) if score == score else _SCORE_CAP)
    return out


def _pelt(n: int, cost: Callable[[int, int], float], beta: float, min_size: int) -> list[int]:
    f = [0.0] * (n + 1)
    f[0] = -beta
    last = [0] * (n + 1)
    candidates = [0]
    for t in range(min_size, n + 1):
        s_new = t - min_size
        if s_new >= min_size:
            candidates.append(s_new)
        values = [f[s] + cost(s, t) for s in candidates]
        best = min(values)
        f[t] = best + beta
        last[t] = candidates[values.index(best)]
        # Killick's pruning (K = 0 for a likelihood cost): s can never be optimal again.
        limit = f[t]
        candidates = [s for s, v in zip(candidates, values, strict=True) if v <= limit]
    out: list[int] = []
    t = n
    while t > 0:
        t = last[t]
        if t > 0:
            out.append(t)
    return sorted(out)


def _within_sums(order: Sequence[int], values: Sequence[float], size: int) -> list[float]:
    """``w[k]`` = sum of ``|x_i - x_j|`` over pairs among the first ``k`` items of ``order``.

    ``order`` holds ranks (1-based, ties share a rank); ``values[r]`` is the value of rank r.
    """
    cnt = [0] * (size + 1)
    tot = [0.0] * (size + 1)
    w = [0.0]
    acc = 0.0
    s_all = 0.0
    for k, r in enumerate(order):
        x = values[r]
        # Count and sum of the earlier items with rank <= r.
        c = 0
        s = 0.0
        i = r
        while i > 0:
            c += cnt[i]
            s += tot[i]
            i -= i & -i
        acc += x * c - s + (s_all - s) - x * (k - c)
        w.append(acc)
        s_all += x
        i = r
        while i <= size:
            cnt[i] += 1
            tot[i] += x
            i += i & -i
    return w


def _energy_best(
    order: list[int], values: list[float], size: int, min_size: int
) -> tuple[int, float]:
    """The split maximising the scaled energy statistic, and its value."""
    n = len(order)
    left = _within_sums(order, values, size)
    right = _within_sums(order[::-1], values, size)
    total = left[n]
    best_t, best_q = -1, -math.inf
    for t in range(min_size, n - min_size + 1):
        m, k = t, n - t
        wl, wr = left[t], right[k]
        cross = total - wl - wr
        e = 2.0 * cross / (m * k) - wl / (m * (m - 1) / 2.0) - wr / (k * (k - 1) / 2.0)
        q = e * m * k / n
        if q > best_q:
            best_q, best_t = q, t
    return best_t, best_q


def _edivisive(
    x: list[float], sig_level: float, permutations: int, min_size: int, seed: int
) -> list[int]:
    rng = random.Random(seed)
    found: list[int] = []
    stack = [(0, len(x))]
    while stack:
        a, b = stack.pop()
        if b - a < 2 * min_size:
            continue
        seg = x[a:b]
        distinct = sorted(set(seg))
        if len(distinct) < 2:
            continue
        rank_of = {v: i + 1 for i, v in enumerate(distinct)}
        values = [0.0, *distinct]
        order = [rank_of[v] for v in seg]
        size = len(distinct)
        t, q = _energy_best(order, values, size, min_size)
        if t < 0:
            continue
        # Permutation test; stop early once significance is out of reach.
        allowed = sig_level * (permutations + 1) - 1
        exceed = 0
        perm = list(order)
        for _ in range(permutations):
            rng.shuffle(perm)
            if _energy_best(perm, values, size, min_size)[1] >= q:
                exceed += 1
                if exceed > allowed:
                    break
        p_value = (exceed + 1) / (permutations + 1)
        if p_value <= sig_level:
            found.append(a + t)
            stack.append((a, a + t))
            stack.append((a + t, b))
    return sorted(found)


_TRANSFORMS: Final = ("auto", "none", "log", "sqrt", "counts")


def detect_change_points(
    values: object,
    timestamps: object | None = None,
    *,
    method: str | None = None,
    cost: str = "meanvar",
    penalty_factor: float | None = None,
    min_size: int = 5,
    sig_level: float = 0.01,
    permutations: int = 99,
    seed: int = 0,
    ramps: bool = True,
    transform: str = "auto",
) -> list[ChangePoint]:
    """Where new regimes start: a sorted list of :class:`ChangePoint`.

    ``values``: a 1-D sequence (list, tuple, numpy array, pandas Series) with
    ``None``/NaN/``pd.NA`` gaps, which are skipped (indices refer to ``values``).
    ``timestamps``: one per value (epoch seconds, ``datetime`` (naive = UTC), pandas
    ``Timestamp``, numpy ``datetime64``), non-decreasing; with two days or more of them the
    time-of-day profile (and with two weeks the day-of-week one) is removed first, and each
    change carries its timestamp. ``method`` (case-insensitive) is ``"binseg"`` (default),
    ``"pelt"`` or ``"edivisive"``; above :data:`QUADRATIC_LIMIT` points the last two fall back
    to ``"binseg"``. ``cost`` and ``penalty_factor`` apply to ``binseg``/``pelt``,
    ``sig_level``, ``permutations`` and ``seed`` to E-divisive; ``ramps`` merges staircases
    into ramps; ``transform`` is the variance-stabilising transform (``"auto"``, ``"none"``,
    ``"log"``, ``"sqrt"``; see :func:`~sounding.analysis.detect_deviations`), or ``"counts"``:
    ``values`` are event counts per interval, segmented with the Poisson count model whatever
    their level (``"auto"`` uses it for mostly-zero counts only; non-integer values fall back
    to ``"auto"``).

    >>> [c.index for c in detect_change_points(
    ...     [1.0, 1.1, 0.9, 1.0, 1.05] * 8 + [3.0, 3.1, 2.9, 3.0, 3.05] * 8, method="PELT")]
    [40]
    """
    chosen = DEFAULT_CHANGE_POINT_METHOD if method is None else method
    if not isinstance(chosen, str) or chosen.lower() not in CHANGE_POINT_METHODS:
        raise InvalidValueError("method", method, "one of " + ", ".join(CHANGE_POINT_METHODS))
    chosen = chosen.lower()
    if not isinstance(cost, str) or cost.lower() not in _DEFAULT_PENALTY:
        raise InvalidValueError("cost", cost, "'meanvar', 'mean' or 'linear'")
    cost = cost.lower()
    if not isinstance(transform, str) or transform.lower() not in _TRANSFORMS:
        raise InvalidValueError("transform", transform, "one of " + ", ".join(_TRANSFORMS))
    if not isinstance(min_size, int) or isinstance(min_size, bool):
        raise InvalidTypeError("min_size", min_size, "an integer >= 2")
    if min_size < 2:
        raise InvalidValueError("min_size", min_size, "an integer >= 2")
    if penalty_factor is not None and not (
        isinstance(penalty_factor, (int, float))
        and math.isfinite(penalty_factor)
        and penalty_factor > 0
    ):
        raise InvalidValueError("penalty_factor", penalty_factor, "a finite number > 0 or None")
    if not (isinstance(sig_level, (int, float)) and 0 < sig_level < 1):
        raise InvalidValueError("sig_level", sig_level, "a number between 0 and 1")
    if not isinstance(permutations, int) or permutations < 1:
        raise InvalidValueError("permutations", permutations, "an integer >= 1")

    xs, all_ts = prepare(values, timestamps)
    positions: list[int] = []
    raw: list[float] = []
    for i, f in enumerate(xs):
        if f == f and f != math.inf and f != -math.inf:
            positions.append(i)
            raw.append(f)
    n = len(raw)
    if n < 2 * min_size:
        return []
    if n > QUADRATIC_LIMIT and chosen != "binseg":
        chosen = "binseg"
    ts = None if all_ts is None else [all_ts[i] for i in positions]
    counts = transform.lower() == "counts" and all(v >= 0 and v == math.floor(v) for v in raw)
    if chosen != "edivisive" and (
        counts or (transform.lower() == "auto" and is_sparse_counts(raw))
    ):
        # Mostly-zero counters, or counts asked for: a Poisson likelihood ratio, the penalty
        # scaled by the dispersion, the time-of-day profile as the exposure.
        counted, count_cost, count_beta = count_segmentation(raw, ts, min_size, penalty_factor)
        return _finish(
            counted, count_cost, count_beta, raw, raw, positions, ts, min_size, means=True
        )
    # Offline: the whole series decides (counts that are not counts: as "auto").
    fwd, _ = choose_transform("auto" if transform.lower() == "counts" else transform.lower(), raw)
    x = [fwd(v) for v in raw]
    largest = max(abs(v) for v in x)
    if largest > 1e100:
        # Squares and differences of such values overflow; the methods are scale-free.
        x = [v / largest for v in x]
    x = _deseasonalise(x, ts)
    beta = 1.0
    fn: Callable[[int, int], float]
    if chosen == "edivisive":
        found = _edivisive(x, float(sig_level), permutations, min_size, seed)
        z = _standardise(x)
        fn = _cost_function(z, "meanvar")
    else:
        cleaned = _hampel(x)
        z = _standardise(cleaned)
        factor = _DEFAULT_PENALTY[cost] if penalty_factor is None else float(penalty_factor)
        dependence = _dependence(cleaned) if n >= 30 else 1.0
        beta = factor * math.log(n) * dependence
        fn = _cost_function(z, cost)
        if chosen == "binseg":
            found = _binseg(n, fn, beta, min_size, z, cost)
        else:
            found = _pelt(n, fn, beta, min_size)
        if ramps and cost != "linear" and len(found) >= 2:
            found = _merge_ramps(z, found, beta, _SLOPE_PENALTY * math.log(n), min_size)
            fn = _cost_function(z, cost)
    if chosen == "edivisive":
        beta = _DEFAULT_PENALTY["meanvar"] * math.log(n)
    return _finish(found, fn, beta, z, raw, positions, ts, min_size)


def _mean(x: Sequence[float]) -> float:
    return round(sum(x) / len(x), 6)


def _finish(
    found: list[int],
    fn: Callable[[int, int], float],
    beta: float,
    z: list[float],
    raw: list[float],
    positions: list[int],
    ts: list[float] | None,
    min_size: int,
    means: bool = False,
) -> list[ChangePoint]:
    """Scores, the merge of changes closer than two minimum segments, the results."""
    n = len(raw)
    scores = _scores(z, found, fn, beta)
    # A transition spread over a few points (a ramp-up, a straggler) reads as two changes
    # a segment apart: keep the stronger of changes closer than two minimum segments.
    k = 1
    while k < len(found):
        if found[k] - found[k - 1] < 2 * min_size:
            drop = k if scores[k] < scores[k - 1] else k - 1
            del found[drop]
            scores = _scores(z, found, fn, beta)
            k = 1
        else:
            k += 1
    bounds = [0, *found, n]
    # Sparse counts: the medians are both 0, the mean rates say what changed.
    level = _mean if means else median
    out: list[ChangePoint] = []
    for k, t in enumerate(found):
        out.append(
            ChangePoint(
                index=positions[t],
                timestamp=None if ts is None else ts[t],
                before=level(raw[bounds[k] : t]),
                after=level(raw[t : bounds[k + 2]]),
                score=round(scores[k], 6),
            )
        )
    return out
