"""Small robust-statistics helpers shared by the analysis modules (pure Python)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

#: Scales a median absolute deviation to the standard deviation of a normal distribution.
MAD_SCALE = 1.4826


def finite(values: Iterable[float | None]) -> list[float]:
    """The finite numbers of ``values`` (``None``, NaN and infinities dropped)."""
    out: list[float] = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return out


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    s = sorted(values)
    n = len(s)
    mid = n // 2
    if n % 2:
        return s[mid]
    return 0.5 * (s[mid - 1] + s[mid])


def mad(values: Sequence[float], center: float | None = None) -> float:
    """The (unscaled) median absolute deviation of a non-empty sequence."""
    c = median(values) if center is None else center
    return median([abs(v - c) for v in values])


def robust_sigma(values: Sequence[float]) -> float:
    """``1.4826 * MAD``: a standard deviation estimate that ignores outliers."""
    return MAD_SCALE * mad(values)


def diff_sigma(values: Sequence[float]) -> float:
    """Noise level from first differences: insensitive to level shifts and slow trends.

    ``x[i+1] - x[i]`` of white noise with standard deviation ``s`` has deviation
    ``s * sqrt(2)``; a step adds one large difference, which the MAD ignores.
    """
    if len(values) < 3:
        return 0.0
    d = [values[i + 1] - values[i] for i in range(len(values) - 1)]
    return MAD_SCALE * median([abs(x) for x in d]) / math.sqrt(2.0)


def choose_transform(
    name: str, sample: list[float]
) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """The forward and inverse variance-stabilising transform for ``name`` (``"auto"``,
    ``"none"``, ``"log"``, ``"sqrt"``) given a sample of the data (its first values).

    ``"auto"``: data with negative values is left alone; non-negative integers (counts) get
    Anscombe's ``2 sqrt(x + 3/8)`` when their median is below 20, ``log(x + 1)`` above
    (overdispersed counts); other non-negative data ``log(x + c)``, ``c`` 1 % of the median
    of the positive values (so zeros stay finite and tiny levels are not magnified).
    """
    if name == "auto":
        if not sample or min(sample) < 0:
            name = "none"
        elif all(v == int(v) for v in sample):
            s = sorted(sample)
            name = "logcount" if s[len(s) // 2] >= 20 else "sqrt"
        else:
            name = "log"
    if name == "none":
        return (lambda v: v), (lambda v: v)
    if name == "sqrt":

        def fwd_sqrt(v: float) -> float:
            return 2.0 * math.sqrt(v + 0.375) if v > -0.375 else 0.0

        def inv_sqrt(y: float) -> float:
            return 0.25 * y * y - 0.375 if y > 0 else -0.375

        return fwd_sqrt, inv_sqrt
    positive = sorted(v for v in sample if v > 0)
    c = 1.0
    if name != "logcount":
        c = 0.01 * positive[len(positive) // 2] if positive else 1e-3
    c = max(c, 2.2250738585072014e-308)  # 1 % of a subnormal median underflows to 0
    floor = math.log(c) - 30.0  # below -c (impossible for non-negative data)

    def fwd_log(v: float) -> float:
        s = v + c
        return math.log(s) if s > 0 else floor

    def inv_log(y: float) -> float:
        return math.exp(min(y, 700.0)) - c

    return fwd_log, inv_log
