"""Change points on sparse counters: a Poisson likelihood-ratio segmentation.

A counter that is mostly zero (errors, rare events) has no Gaussian view: the MAD of its
differences is zero, a transform cannot make one count look like noise, and a step from 0.05
to 0.15 per interval is invisible point by point. It is visible in the counts' likelihood:
for a segment of exposure ``E`` (the expected share of the rate, 1 per point without a
profile) holding ``S`` counts, the Poisson deviance term is ``2 (S log(S / E) - S)`` up to
a constant, and a split's gain is twice the log-likelihood ratio of two rates against one,
about chi-squared with one degree of freedom under no change. Overdispersion (clustered
errors) inflates it by the dispersion ``phi``, so the penalty is ``factor x log n x phi``
with ``phi`` estimated from hourly sums: the evidence threshold is calibrated by the count
noise, not by a constant tuned to one generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sounding.analysis._robust import median

__all__ = ["COUNT_PENALTY", "count_segmentation", "is_sparse_counts"]

COUNT_PENALTY = 2.5  # x log n x phi: chi-squared(1) tail of about 1e-6 at n = 4,000
_BLOCK = 12  # points per block for the dispersion (an hour at 5-minute steps)
_PROFILE_PRIOR = 2.0  # pseudo-counts shrinking each hour of the day towards the mean rate
_OUTLIER_TAIL = 1e-4
_LOCAL = 72  # half-width of the local rate for capping bursts (6 h at 5-minute steps)
_DAY = 86400.0


def is_sparse_counts(raw: list[float]) -> bool:
    """Non-negative integers, mostly zero or one: the Gaussian view has no noise scale."""
    if len(raw) < 10:
        return False
    for v in raw:
        if v < 0 or v != math.floor(v):
            return False
    if median(raw) > 1.0:
        return False
    mean = sum(raw) / len(raw)
    return 0.0 < mean < 3.0


def _profile(raw: list[float], ts: list[float] | None) -> list[float]:
    """Exposure per point: the shrunk hour-of-day (UTC) rate profile with two days or more
    of timestamps, else 1. Normalised to mean 1."""
    n = len(raw)
    if ts is None or ts[-1] - ts[0] < 2 * _DAY:
        return [1.0] * n
    total = sum(raw)
    rate = total / n
    sums = [0.0] * 24
    counts = [0] * 24
    hours = [int(t % _DAY // 3600.0) for t in ts]
    for h, v in zip(hours, raw, strict=True):
        sums[h] += v
        counts[h] += 1
    ratio = [
        (sums[h] + _PROFILE_PRIOR) / (counts[h] * rate + _PROFILE_PRIOR) if counts[h] else 1.0
        for h in range(24)
    ]
    # Only a clear time-of-day pattern is a profile (Pearson chi-squared, 23 df, beyond
    # its mean by 4 sd): a flat counter keeps exposure 1 instead of fitting noise.
    chi2 = sum(
        (sums[h] - counts[h] * rate) ** 2 / (counts[h] * rate) for h in range(24) if counts[h]
    )
    e = [ratio[h] for h in hours] if chi2 > 23.0 + 4.0 * math.sqrt(46.0) else [1.0] * n
    if ts[-1] - ts[0] >= 7 * _DAY:
        # Weekend (Saturday, Sunday UTC) against weekdays, on the hour-adjusted exposure.
        weekend = [int((t // _DAY + 3) % 7) >= 5 for t in ts]  # 1970-01-01 was a Thursday
        s_w = sum(v for v, w in zip(raw, weekend, strict=True) if w)
        e_w = sum(x for x, w in zip(e, weekend, strict=True) if w)
        s_d, e_d = total - s_w, sum(e) - e_w
        if s_w > 0 and s_d > 0 and e_w > 0 and e_d > 0:
            # Only a clear difference (3 Poisson sd of the log ratio) is a weekly profile.
            ratio_w = (s_w / e_w) / (s_d / e_d)
            if abs(math.log(ratio_w)) > 3.0 * math.sqrt(1.0 / s_w + 1.0 / s_d):
                e = [x * ratio_w if w else x for x, w in zip(e, weekend, strict=True)]
    mean_e = sum(e) / n
    return [v / mean_e for v in e]


def _poisson_quantile(lam: float, tail: float) -> int:
    """Smallest ``k`` with ``P(X > k) < tail`` for ``X ~ Poisson(lam)``."""
    p = math.exp(-lam)
    cdf = p
    k = 0
    while 1.0 - cdf >= tail and k < 100_000:
        k += 1
        p *= lam / k
        cdf += p
    return k


def _dispersion(x: list[float], e: list[float]) -> float:
    """Variance over mean of hourly sums (>= 1), from second differences of the block sums
    (a step moves two of them, a slow trend cancels); the top 1 % are dropped (bursts)."""
    blocks = len(x) // _BLOCK
    if blocks < 8:
        return 1.0
    sums = [sum(x[k * _BLOCK : (k + 1) * _BLOCK]) for k in range(blocks)]
    expo = [sum(e[k * _BLOCK : (k + 1) * _BLOCK]) for k in range(blocks)]
    rate = sum(sums) / sum(expo)
    if rate <= 0:
        return 1.0
    sq = sorted(
        (sums[k + 2] - 2 * sums[k + 1] + sums[k]) ** 2
        / (rate * (expo[k + 2] + 4 * expo[k + 1] + expo[k]))
        for k in range(blocks - 2)
    )
    keep = sq[: max(1, len(sq) - len(sq) // 100)]
    return max(1.0, min(sum(keep) / len(keep), 50.0))


def _cap_bursts(raw: list[float], phi: float) -> list[float]:
    """Cap each count at the Poisson ``_OUTLIER_TAIL`` quantile of three times the
    dispersed local rate (the larger of the series' rate and that of the surrounding
    ``2 x _LOCAL + 1`` points), so a burst is an outlier while a real rise keeps its counts."""
    n = len(raw)
    cs = [0.0]
    for v in raw:
        cs.append(cs[-1] + v)
    overall = cs[-1] / n
    caps: dict[float, float] = {}
    out = []
    for i, v in enumerate(raw):
        a, b = max(0, i - _LOCAL), min(n, i + _LOCAL + 1)
        lam = max(overall, (cs[b] - cs[a]) / (b - a))
        key = float(f"{3.0 * lam * phi:.2g}")
        cap = caps.get(key)
        if cap is None:
            cap = caps[key] = float(max(1, _poisson_quantile(key, _OUTLIER_TAIL)))
        out.append(v if v <= cap else cap)
    return out


def count_segmentation(
    raw: list[float], ts: list[float] | None, min_size: int, factor: float | None
) -> tuple[list[int], Callable[[int, int], float], float]:
    """Binary segmentation of ``raw`` (sparse counts) with the Poisson deviance.

    Returns the change indices, the segment cost function (for scores) and the penalty.
    Isolated bursts are capped first (at the Poisson 1e-4 quantile of three times the
    overdispersed local rate), so a one-off spike is an outlier, not two change points.
    """
    n = len(raw)
    e = _profile(raw, ts)
    phi = _dispersion(raw, e)
    x = _cap_bursts(raw, phi)
    s_cum = [0.0]
    e_cum = [0.0]
    for v, w in zip(x, e, strict=True):
        s_cum.append(s_cum[-1] + v)
        e_cum.append(e_cum[-1] + w)

    def cost(a: int, b: int) -> float:
        s = s_cum[b] - s_cum[a]
        if s <= 0:
            return 0.0
        return -2.0 * (s * math.log(s / (e_cum[b] - e_cum[a])) - s)

    beta = (COUNT_PENALTY if factor is None else factor) * math.log(n) * phi
    found: list[int] = []
    stack = [(0, n)]
    while stack:
        a, b = stack.pop()
        if b - a < 2 * min_size:
            continue
        total = cost(a, b)
        best_gain = 0.0
        best_t = -1
        sa, ea = s_cum[a], e_cum[a]
        sb, eb = s_cum[b], e_cum[b]
        for t in range(a + min_size, b - min_size + 1):
            s1 = s_cum[t] - sa
            e1 = e_cum[t] - ea
            s2 = sb - s_cum[t]
            e2 = eb - e_cum[t]
            c = total
            if s1 > 0:
                c += 2.0 * (s1 * math.log(s1 / e1) - s1)
            if s2 > 0:
                c += 2.0 * (s2 * math.log(s2 / e2) - s2)
            if c > best_gain:
                best_gain, best_t = c, t
        if best_t >= 0 and best_gain > beta:
            found.append(best_t)
            stack.append((a, best_t))
            stack.append((best_t, b))
    return sorted(found), cost, beta
