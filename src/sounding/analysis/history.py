"""Thin wrappers that read the store: baselines, change points and alert values.

The analysis itself is in the pure modules (:mod:`~sounding.analysis.baselines`,
:mod:`~sounding.analysis.changepoints`, :mod:`~sounding.analysis.alerts`); these functions
only fetch what they need from a :class:`~sounding.storage.Store`:

* :func:`baseline`: the window's merged distribution (``Store.distributions``) for p50, p95,
  p99 and count, and per-interval medians (``Store.query(..., stat="p50", interval=...)``,
  each from that interval's merged sketch) for the spread;
* :func:`metric_history` and :func:`changes`: a statistic per interval, then
  :func:`~sounding.analysis.detect_change_points` on it;
* :func:`store_value_source`: the ``value_source`` that :func:`~sounding.analysis.evaluate`
  needs, querying the statistic of each rule over its window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, overload

from sounding.analysis.alerts import ValueSource
from sounding.analysis.baselines import Baseline, baseline_from_distribution
from sounding.analysis.changepoints import ChangePoint, detect_change_points
from sounding.analysis.rules import AlertRule
from sounding.core.exceptions import InvalidValueError

if TYPE_CHECKING:
    from sounding.storage import Store

__all__ = [
    "HISTORY_POINTS",
    "ChangePoint",
    "baseline",
    "changes",
    "metric_history",
    "store_stat",
    "store_value_source",
]

_DAY = 86400.0
#: A baseline's spread uses about this many intervals over the window (hourly for 7 days).
_SPREAD_INTERVALS = 168
#: Points of history a ``deviation``/``change`` rule asks for (each ``rule.window`` long).
HISTORY_POINTS = 100


def store_stat(stat: str) -> str:
    """The store's name for a rule's statistic (``mean`` is ``avg`` there)."""
    return "avg" if stat == "mean" else stat


def _now(now: float | None) -> float:
    if now is not None:
        return float(now)
    from sounding.core.clock import get_clock

    return get_clock().time()


def _window_days(store: Store, window_days: float | None) -> float:
    days = store.metrics.baseline_window_days if window_days is None else window_days
    if (
        isinstance(days, bool)
        or not isinstance(days, (int, float))
        or not (math.isfinite(days) and days > 0)
    ):
        raise InvalidValueError("window_days", window_days, "a number of days > 0")
    return float(days)


@overload
def baseline(
    store: Store,
    metric: str,
    *,
    window_days: float | None = None,
    tags: Mapping[str, str] | None = None,
    by: None = None,
    now: float | None = None,
) -> Baseline: ...


@overload
def baseline(
    store: Store,
    metric: str,
    *,
    window_days: float | None = None,
    tags: Mapping[str, str] | None = None,
    by: str,
    now: float | None = None,
) -> dict[str | None, Baseline]: ...


def baseline(
    store: Store,
    metric: str,
    *,
    window_days: float | None = None,
    tags: Mapping[str, str] | None = None,
    by: str | None = None,
    now: float | None = None,
) -> Baseline | dict[str | None, Baseline]:
    """The baseline of ``metric`` over the last ``window_days`` (default
    ``MetricsConfig.baseline_window_days``), for series whose tags include ``tags``.

    With ``by`` (a tag key such as ``"app_version"``) the result is a dict of one
    :class:`Baseline` per value of that tag (``None`` for series without it). Percentiles
    come from the merged sketch of the whole window; the spread from hourly (for 7 days)
    medians, each from its interval's merged sketch.
    """
    days = _window_days(store, window_days)
    end = _now(now)
    start = end - days * _DAY
    window = (start, end)
    dists = store.distributions(metric, start, end, tags, group_by=by)
    step = max(float(store.metrics.aggregation_interval), days * _DAY / _SPREAD_INTERVALS)
    medians: dict[str | None, list[float]] = {}
    if dists:
        for p in store.query(metric, start, end, tags, group_by=by, interval=step, stat="p50"):
            if p.value is not None and math.isfinite(p.value):
                medians.setdefault(p.group, []).append(float(p.value))
    result = {
        group: baseline_from_distribution(
            d.sketch, medians.get(group, []), window=window, label=group
        )
        for group, d in dists.items()
    }
    if by is not None:
        return dict(sorted(result.items(), key=lambda kv: (kv[0] is None, kv[0] or "")))
    found = result.get(None)
    return found if found is not None else baseline_from_distribution(None, [], window=window)


def metric_history(
    store: Store,
    metric: str,
    *,
    stat: str = "p95",
    window_days: float | None = None,
    tags: Mapping[str, str] | None = None,
    interval: float | str | None = None,
    now: float | None = None,
) -> tuple[list[float], list[float]]:
    """``(timestamps, values)`` of ``stat`` per interval over the last ``window_days``.

    ``interval`` defaults to the aggregation interval; the store coarsens it so that at most
    ``MetricsConfig.max_data_points`` values come back. Intervals without data are absent.
    """
    days = _window_days(store, window_days)
    end = _now(now)
    step: float | str = store.metrics.aggregation_interval if interval is None else interval
    points = store.query(metric, end - days * _DAY, end, tags, interval=step, stat=store_stat(stat))
    ts: list[float] = []
    values: list[float] = []
    for p in points:
        if p.value is not None and math.isfinite(p.value):
            ts.append(p.timestamp.timestamp())
            values.append(float(p.value))
    return ts, values


def changes(
    store: Store,
    metric: str,
    *,
    stat: str = "p95",
    window_days: float | None = None,
    tags: Mapping[str, str] | None = None,
    interval: float | str | None = None,
    method: str | None = None,
    now: float | None = None,
) -> list[ChangePoint]:
    """Change points of ``stat`` of ``metric`` over the window (see :func:`metric_history`
    and :func:`~sounding.analysis.detect_change_points`)."""
    ts, values = metric_history(
        store,
        metric,
        stat=stat,
        window_days=window_days,
        tags=tags,
        interval=interval,
        now=now,
    )
    return detect_change_points(values, ts, method=method)


def store_value_source(store: Store) -> ValueSource:
    """A ``value_source`` for :func:`~sounding.analysis.evaluate` reading ``store``.

    ``threshold`` rules get the rule's statistic over the trailing ``rule.window`` seconds
    (``None`` without data); ``deviation`` and ``change`` rules the statistic per
    ``rule.window`` over the last :data:`HISTORY_POINTS` windows.
    """

    def source(rule: AlertRule, now: float) -> Any:
        stat = store_stat(rule.stat)
        tags = dict(rule.tags) if rule.tags else None
        if rule.kind == "threshold":
            points = store.query(rule.metric, now - rule.window, now, tags, stat=stat)
            return points[0].value if points else None
        start = now - rule.window * HISTORY_POINTS
        points = store.query(rule.metric, start, now, tags, interval=rule.window, stat=stat)
        return [p.value for p in points] or None

    return source
