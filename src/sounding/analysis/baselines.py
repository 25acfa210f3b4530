"""Baselines from quantile sketches, and comparing current values with a baseline.

A :class:`Baseline` summarises a window of history: p50, p95 and p99 come from the MERGED
sketch of every interval in the window (never from averaging per-interval percentiles, which
is wrong for any skewed distribution), so they are within the sketch's 1 % relative error of
the true percentiles of all observations. ``spread`` is ``1.4826 x MAD`` of the
per-interval medians: how much a typical interval's median moves around, robust to a few bad
intervals, in the metric's unit.

>>> from sounding.core.sketch import QuantileSketch
>>> intervals = []
>>> for k in range(10):
...     s = QuantileSketch()
...     s.add_many(float(v) for v in range(100 + k, 200 + k))
...     intervals.append(s)
>>> b = baseline_from_sketches(intervals)
>>> b.count, round(b.p50)
(1000, 153)
>>> c = compare({"p50": 200.0, "p95": 200.0, "p99": 200.0}, b)
>>> c.exceeded, round(c.changes["p50"].percent)
(True, 31)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sounding.analysis._robust import MAD_SCALE, mad
from sounding.core.exceptions import InvalidTypeError, InvalidValueError
from sounding.core.sketch import QuantileSketch

__all__ = [
    "BASELINE_STATS",
    "Baseline",
    "Comparison",
    "StatChange",
    "baseline_from_distribution",
    "baseline_from_sketches",
    "compare",
]

#: The statistics a baseline holds and :func:`compare` compares.
BASELINE_STATS: tuple[str, ...] = ("p50", "p95", "p99")
_QUANTILE = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True)
class Baseline:
    """p50/p95/p99 of a window of history, its observation count and spread.

    ``window`` is ``(start, end)`` in epoch seconds when known; ``intervals`` the number of
    non-empty intervals merged; ``label`` names the group (for example an app version).
    Percentiles are ``None`` when the window held no observation.
    """

    p50: float | None
    p95: float | None
    p99: float | None
    count: int
    spread: float
    window: tuple[float, float] | None = None
    intervals: int = 0
    label: str | None = None

    def stat(self, name: str) -> float | None:
        """The value of ``"p50"``, ``"p95"`` or ``"p99"``."""
        if name not in _QUANTILE:
            raise InvalidValueError("stat", name, "one of " + ", ".join(BASELINE_STATS))
        value: float | None = getattr(self, name)
        return value

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly dict."""
        return {
            "label": self.label,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "count": self.count,
            "spread": self.spread,
            "intervals": self.intervals,
            "window": list(self.window) if self.window else None,
        }


def baseline_from_sketches(
    sketches: Iterable[QuantileSketch | None],
    *,
    window: tuple[float, float] | None = None,
    label: str | None = None,
) -> Baseline:
    """Merge per-interval sketches into a :class:`Baseline`.

    ``None`` and empty sketches (intervals without observations) are skipped.
    """
    merged = QuantileSketch()
    medians: list[float] = []
    for s in sketches:
        if s is None:
            continue
        if not isinstance(s, QuantileSketch):
            raise InvalidTypeError("sketches", s, "QuantileSketch objects (or None)")
        if s.count <= 0:
            continue
        merged.merge(s)
        m = s.quantile(0.5)
        if m is not None and math.isfinite(m):
            medians.append(m)
    return baseline_from_distribution(merged, medians, window=window, label=label)


def baseline_from_distribution(
    merged: QuantileSketch | None,
    interval_medians: Sequence[float],
    *,
    window: tuple[float, float] | None = None,
    label: str | None = None,
) -> Baseline:
    """A :class:`Baseline` from an already merged sketch of the window and the medians of
    its intervals (what the store returns). ``None`` or an empty sketch: no observations."""
    if merged is None or merged.count <= 0:
        return Baseline(None, None, None, 0, 0.0, window=window, intervals=0, label=label)
    p50, p95, p99 = merged.quantiles([0.5, 0.95, 0.99])
    medians = [m for m in interval_medians if math.isfinite(m)]
    spread = MAD_SCALE * mad(medians) if len(medians) >= 2 else 0.0
    return Baseline(
        p50=p50,
        p95=p95,
        p99=p99,
        count=int(merged.count),
        spread=spread,
        window=window,
        intervals=len(medians),
        label=label,
    )


@dataclass(frozen=True)
class StatChange:
    """One statistic: current and baseline values, change in percent of the baseline.

    ``percent`` is ``None`` when either value is missing, ``inf`` when the baseline is 0.
    """

    stat: str
    current: float | None
    baseline: float | None
    percent: float | None
    exceeded: bool

    @property
    def direction(self) -> Literal["up", "down", "none"]:
        """Which way the statistic moved (``"none"`` when it did not or is unknown)."""
        if not self.percent:
            return "none"
        return "up" if self.percent > 0 else "down"


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: a :class:`StatChange` per statistic.

    ``exceeded`` is true when any statistic moved by more than ``threshold_percent`` in
    either direction; ``exceeded_stats`` names them.
    """

    changes: dict[str, StatChange]
    threshold_percent: float

    @property
    def exceeded(self) -> bool:
        """Whether any statistic moved by more than the threshold."""
        return any(c.exceeded for c in self.changes.values())

    @property
    def exceeded_stats(self) -> list[str]:
        """The statistics that moved by more than the threshold."""
        return [k for k, c in self.changes.items() if c.exceeded]


def _current_values(
    current: Baseline | QuantileSketch | Mapping[str, float | None],
) -> dict[str, float | None]:
    if isinstance(current, Baseline):
        return {k: current.stat(k) for k in BASELINE_STATS}
    if isinstance(current, QuantileSketch):
        qs = current.quantiles([_QUANTILE[k] for k in BASELINE_STATS])
        return dict(zip(BASELINE_STATS, qs, strict=True))
    if isinstance(current, Mapping):
        unknown = sorted(set(current) - set(BASELINE_STATS))
        if unknown:
            raise InvalidValueError(
                "current", unknown[0], "statistics among " + ", ".join(BASELINE_STATS)
            )
        return {
            k: (None if current.get(k) is None else float(current[k]))  # type: ignore[arg-type]
            for k in BASELINE_STATS
            if k in current
        }
    raise InvalidTypeError(
        "current", current, "a Baseline, a QuantileSketch or a mapping of stat to value"
    )


def compare(
    current: Baseline | QuantileSketch | Mapping[str, float | None],
    baseline: Baseline,
    threshold_percent: float | None = None,
) -> Comparison:
    """Relative change of each statistic of ``current`` against ``baseline``.

    ``threshold_percent`` defaults to ``MetricsConfig.deviation_threshold_percent`` of the
    current settings (20.0 unless configured). ``current`` may be a :class:`Baseline` (for
    example of the last hour), a :class:`QuantileSketch`, or a mapping such as
    ``{"p95": 0.31}``.
    """
    if threshold_percent is None:
        from sounding.core.config import get_settings

        threshold_percent = get_settings().metrics.deviation_threshold_percent
    if (
        not isinstance(threshold_percent, (int, float))
        or isinstance(threshold_percent, bool)
        or not math.isfinite(threshold_percent)
        or threshold_percent <= 0
    ):
        raise InvalidValueError("threshold_percent", threshold_percent, "a finite number > 0")
    if not isinstance(baseline, Baseline):
        raise InvalidTypeError("baseline", baseline, "a Baseline")
    values = _current_values(current)
    changes: dict[str, StatChange] = {}
    for stat, cur in values.items():
        base = baseline.stat(stat)
        pct: float | None = None
        if cur is not None and base is not None:
            if base == 0:
                pct = 0.0 if cur == 0 else math.copysign(math.inf, cur)
            else:
                pct = (cur - base) / abs(base) * 100.0
        changes[stat] = StatChange(
            stat=stat,
            current=cur,
            baseline=base,
            percent=pct,
            exceeded=pct is not None and abs(pct) > threshold_percent,
        )
    return Comparison(changes=changes, threshold_percent=float(threshold_percent))
