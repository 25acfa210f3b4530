"""Small robust-statistics helpers shared by the analysis modules (pure Python)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

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
