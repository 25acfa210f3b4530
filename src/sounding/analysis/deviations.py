"""Causal deviation detection: is this point far from what came just before it?

Each point ``i`` is judged only against points before it (a trailing window), so the same
call works offline over a history and online, one point at a time, with identical results.
The baseline is the median of the trailing window and the scale is ``1.4826 x MAD`` (the
modified z-score of Iglewicz & Hoaglin), so outliers in the history barely move it. A point
is a deviation when both

* its robust score ``|x - median| / (1.4826 x MAD)`` is at least ``threshold``, and
* its relative change ``|x - median| / |median|`` is at least ``min_relative_change``
  (so a very quiet series does not alert on changes nobody cares about).

Deviations are kept out of the history, so a burst of outliers does not become the new
normal. When more than half of the window is tied (sparse counts, a constant gauge) the MAD
is 0: the sample standard deviation stands in, and a value is only a deviation if it lies
outside the range of every earlier value (the first error after a quiet hour is news, the
tenth is not). A *regime change* (``regime_points`` of the last ``regime_window`` judged points
flagged, for example after a step) restarts the history from the first flagged point of
that run, followed by a fresh warm-up: a step is reported by a few points, not forever.

>>> values = [100.0 + (i % 5) for i in range(40)] + [180.0] + [100.0 + (i % 5) for i in range(9)]
>>> [(d.index, d.direction) for d in detect_deviations(values)]
[(40, 'up')]
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sounding.analysis._robust import MAD_SCALE
from sounding.core.exceptions import InvalidTypeError, InvalidValueError

__all__ = [
    "DEFAULT_DEVIATION_THRESHOLD",
    "DEFAULT_MIN_RELATIVE_CHANGE",
    "Deviation",
    "detect_deviations",
]

#: Default robust-score threshold (chosen on the training seed of ``bench/datasets``).
DEFAULT_DEVIATION_THRESHOLD = 6.0
#: Default minimum relative change (0.2 = 20 %, ``MetricsConfig.deviation_threshold_percent``).
DEFAULT_MIN_RELATIVE_CHANGE = 0.2


@dataclass(frozen=True)
class Deviation:
    """One point that deviates from its trailing baseline.

    ``score`` is the robust z-score (signed; ``inf`` when the history was constant),
    ``baseline`` the trailing median, ``direction`` ``"up"`` or ``"down"``, ``timestamp``
    the point's timestamp when timestamps were given.
    """

    index: int
    value: float
    baseline: float
    score: float
    direction: Literal["up", "down"]
    timestamp: float | None = None

    @property
    def relative_change(self) -> float:
        """``(value - baseline) / |baseline|`` (``inf`` when the baseline is 0)."""
        if self.baseline == 0:
            return math.copysign(math.inf, self.value - self.baseline)
        return (self.value - self.baseline) / abs(self.baseline)


def _check_int(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidTypeError(name, value, f"an integer >= {minimum}")
    if value < minimum:
        raise InvalidValueError(name, value, f"an integer >= {minimum}")
    return value


def _check_number(name: str, value: object, allowed: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidTypeError(name, value, allowed)
    f = float(value)
    if not math.isfinite(f) or f < 0:
        raise InvalidValueError(name, value, allowed)
    return f


def _scale(ordered: list[float], center: float) -> tuple[float, bool]:
    """``1.4826 x MAD`` of a sorted window; when more than half the window is tied (sparse
    counts, constant gauges) the MAD is 0 and the sample standard deviation is used instead,
    so that the rare non-zero values of a mostly-zero count series are not all outliers.
    The flag says whether that fallback was used."""
    devs = sorted(abs(v - center) for v in ordered)
    n = len(devs)
    mad = devs[n // 2] if n % 2 else 0.5 * (devs[n // 2 - 1] + devs[n // 2])
    if mad > 0:
        return MAD_SCALE * mad, False
    mean = sum(ordered) / n
    # d * d gives inf on overflow where ** would raise.
    return math.sqrt(sum((v - mean) * (v - mean) for v in ordered) / max(n - 1, 1)), True


def detect_deviations(
    values: Sequence[float | None],
    *,
    timestamps: Sequence[float] | None = None,
    window: int = 50,
    warmup: int = 20,
    threshold: float = DEFAULT_DEVIATION_THRESHOLD,
    min_relative_change: float = DEFAULT_MIN_RELATIVE_CHANGE,
    regime_points: int = 3,
    regime_window: int = 5,
) -> list[Deviation]:
    """Find the points that deviate from their trailing baseline (causal, robust).

    ``values`` may contain ``None`` or NaN (missing intervals): they are skipped, neither
    judged nor added to the history. The first ``warmup`` usable points only build the
    history. ``window`` is the number of past accepted points the baseline uses.

    >>> detect_deviations([10.0] * 30 + [10.5, 30.0])[0].index
    31
    """
    _check_int("window", window, 3)
    _check_int("warmup", warmup, 3)
    _check_int("regime_window", regime_window, 1)
    _check_int("regime_points", regime_points, 1)
    if regime_points > regime_window:
        raise InvalidValueError(
            "regime_points", regime_points, f"at most regime_window ({regime_window})"
        )
    threshold = _check_number("threshold", threshold, "a finite number >= 0")
    min_rel = _check_number("min_relative_change", min_relative_change, "a finite number >= 0")
    if timestamps is not None and len(timestamps) != len(values):
        raise InvalidValueError(
            "timestamps", f"<{len(timestamps)} items>", f"one timestamp per value ({len(values)})"
        )
    warm = min(warmup, window)

    history: deque[float] = deque()
    ordered: list[float] = []  # ``history`` kept sorted for the median
    recent: deque[tuple[float, bool]] = deque(maxlen=regime_window)
    out: list[Deviation] = []
    # The range of every value seen so far (causal: only earlier points).
    lowest, highest = math.inf, -math.inf

    def accept(v: float) -> None:
        if len(history) == window:
            old = history.popleft()
            del ordered[bisect.bisect_left(ordered, old)]
        history.append(v)
        bisect.insort(ordered, v)

    for i, raw in enumerate(values):
        if raw is None:
            continue
        try:
            x = float(raw)
        except (OverflowError, TypeError, ValueError):
            raise InvalidValueError(
                f"values[{i}]", raw, "numbers within float range, NaN or None"
            ) from None
        if not math.isfinite(x):
            continue
        if len(history) < warm:
            lowest, highest = min(lowest, x), max(highest, x)
            accept(x)
            continue
        n = len(ordered)
        m = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
        diff = x - m
        scale, degenerate = _scale(ordered, m)
        # With a constant history any change is infinitely many scales away.
        score = diff / scale if scale > 0 else (math.copysign(math.inf, diff) if diff else 0.0)
        flagged = abs(score) >= threshold and abs(diff) >= min_rel * abs(m) and diff != 0
        if flagged and degenerate and lowest <= x <= highest:
            # No robust scale (sparse counts): a value the series has shown before is
            # not news, however quiet the recent window was.
            flagged = False
        lowest, highest = min(lowest, x), max(highest, x)
        recent.append((x, flagged))
        if flagged:
            out.append(
                Deviation(
                    index=i,
                    value=x,
                    baseline=m,
                    score=score,
                    direction="up" if diff > 0 else "down",
                    timestamp=None if timestamps is None else float(timestamps[i]),
                )
            )
            if degenerate:
                # A mostly-tied history (sparse counts) has no robust scale: let the rare
                # values in, or every later one would be judged against the same zeros.
                accept(x)
            elif sum(1 for _, f in recent if f) >= regime_points:
                # A new regime: restart the history at the first flagged point of the run.
                tail = list(recent)
                first = next(k for k, (_, f) in enumerate(tail) if f)
                history.clear()
                ordered.clear()
                recent.clear()
                for v, _ in tail[first:]:
                    accept(v)
        else:
            accept(x)
    return out
