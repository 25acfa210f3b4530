"""Sparklines: a series of numbers as a line of block characters, for terminals.

>>> sparkline([1, 2, 3, 4, 5, 6, 7, 8])
'▁▂▃▄▅▆▇█'
>>> sparkline([1.0, None, 1.0])
'▄ ▄'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["BLOCKS", "resample", "sparkline"]

#: Eight levels, lowest first.
BLOCKS = "▁▂▃▄▅▆▇█"


#: Values beyond this magnitude are drawn at it, so no arithmetic here can overflow.
_LIMIT = 1e300


def _clamp(v: float) -> float:
    return max(min(float(v), _LIMIT), -_LIMIT)


def resample(values: Sequence[float | None], width: int) -> list[float | None]:
    """Shrink ``values`` to at most ``width`` points by averaging consecutive runs.

    Missing values (``None``, NaN) are left out of each run's mean; a run with none is ``None``.
    Longer sequences are never stretched.
    """
    if width < 1:
        return []
    n = len(values)
    if n <= width:
        return [None if v is None or not math.isfinite(v) else _clamp(v) for v in values]
    out: list[float | None] = []
    for i in range(width):
        lo = i * n // width
        hi = max((i + 1) * n // width, lo + 1)
        run = [_clamp(v) for v in values[lo:hi] if v is not None and math.isfinite(v)]
        out.append(sum(run) / len(run) if run else None)
    return out


def sparkline(values: Sequence[float | None], width: int | None = None) -> str:
    """Draw ``values`` with :data:`BLOCKS`; gaps (``None``, NaN) are spaces.

    The lowest value maps to the lowest block and the highest to the highest; a flat series
    is drawn at mid height. ``width`` resamples first (see :func:`resample`).
    """
    pts = resample(values, width if width is not None else len(values))
    present = [v for v in pts if v is not None]
    if not present:
        return " " * len(pts)
    lo, hi = min(present), max(present)
    span = hi - lo
    top = len(BLOCKS) - 1
    chars = []
    for v in pts:
        if v is None:
            chars.append(" ")
        elif span <= 0:
            chars.append(BLOCKS[top // 2])
        else:
            chars.append(BLOCKS[min(top, max(0, int((v - lo) / span * top + 0.5)))])
    return "".join(chars)
