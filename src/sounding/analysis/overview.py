"""The overview: for a window, every metric now against its baseline, with the decisions.

This is the one model every view renders: the text dashboard, the HTML report and the
``baseline``, ``changes`` and ``alerts`` commands. What a regression is, which windows
"now" and "baseline" cover, which statistic a metric is judged by and what an alert's state
is are decided here, once, so the same question gets the same numbers everywhere.

Windows (all stated in :class:`Windows`):

* the *window* is ``since .. now`` (the range the trends cover);
* *now* is its last 24 hours (a quarter of it for windows shorter than four days);
* the *baseline* is the ``MetricsConfig.baseline_window_days`` before "now".

The *statistic* of a metric (:data:`DEFAULT_STATS`): p95 for distributions (histograms and
summaries, usually durations), the rate per hour for counters, the mean for gauges; any
other the store answers can be asked for (``stat=``). The trend and the change points use
the same statistic on one grid of at most :data:`TREND_POINTS` intervals, so a change point
is the same whether the dashboard, the report or ``sounding changes`` shows it.

A metric is *flagged* (a regression) when its statistic got worse by at least
``MetricsConfig.deviation_threshold_percent`` with at least :data:`MIN_COUNT` observations on
each side. Which direction is worse is :attr:`MetricRow.polarity`: up for distributions and
for counters of failures, errors, retries, fallbacks and the like; neither for usage counts
and gauges (they are shown, not judged).

>>> from sounding.analysis.overview import Windows
>>> w = Windows.for_range(0.0, 8 * 86400.0, baseline_days=7)
>>> (w.current_start / 86400, w.baseline_start / 86400, w.baseline_end / 86400)
(7.0, 0.0, 7.0)
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from sounding.analysis.changepoints import ChangePoint, detect_change_points
from sounding.analysis.history import store_stat, store_value_source
from sounding.core.clock import get_clock
from sounding.core.config import MetricsConfig
from sounding.core.exceptions import InvalidValueError
from sounding.core.types import MetricType

if TYPE_CHECKING:
    from sounding.analysis.rules import AlertRule
    from sounding.storage import SeriesInfo, Store
    from sounding.storage.times import TimeLike

__all__ = [
    "DEFAULT_STATS",
    "ERROR_TAG_KEYS",
    "INTERNAL_PREFIX",
    "MIN_COUNT",
    "TREND_POINTS",
    "AlertRow",
    "ErrorRow",
    "GroupRow",
    "MetricRow",
    "Overview",
    "SessionSummary",
    "Windows",
    "build_overview",
    "default_stat",
    "polarity",
]

#: Metrics sounding records about itself (failures, dropped data); shown apart.
INTERNAL_PREFIX: Final = "sounding.internal."
#: Fewest observations on each side before a change counts as a regression (a p95 of fewer
#: is mostly noise).
MIN_COUNT: Final = 50
#: Intervals of the trend grid (fewer when ``MetricsConfig.max_data_points`` is lower). The
#: same for every view, so that change points agree.
TREND_POINTS: Final = 96
#: Tag keys that name an error type (``<op>.failures`` counters, timers that raised).
ERROR_TAG_KEYS: Final = ("exc_type", "error_type")
#: The statistic each kind of metric is judged by unless another is asked for.
DEFAULT_STATS: Final[Mapping[MetricType, str]] = {
    MetricType.HISTOGRAM: "p95",
    MetricType.SUMMARY: "p95",
    MetricType.COUNTER: "rate",
    MetricType.GAUGE: "avg",
}
_DISTRIBUTIONS: Final = (MetricType.HISTOGRAM, MetricType.SUMMARY)
_DAY: Final = 86400.0
#: Relative difference below which two levels are the same (the sketches' 1 % error).
_SAME_LEVEL: Final = 0.01
#: Last name parts of counters whose growth is bad news.
_BAD_COUNTS: Final = frozenset(
    {
        "errors", "failures", "failed", "crashes", "exceptions", "retries", "fallbacks",
        "slow", "dropped", "drops", "timeouts", "rejected",
    }
)  # fmt: skip
#: Trend steps: whole units of the store's rollups (minutes, hours, days), so that every
#: interval holds whole buckets and rates do not alternate between neighbours.
NICE_STEPS: Final = (
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200,
    86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400,
)  # fmt: skip


def default_stat(metric_type: MetricType) -> str:
    """The statistic a metric of ``metric_type`` is judged by: p95, rate (per hour) or avg.

    >>> default_stat(MetricType.HISTOGRAM), default_stat(MetricType.COUNTER)
    ('p95', 'rate')
    """
    return DEFAULT_STATS[metric_type]


def polarity(name: str, metric_type: MetricType, stat: str) -> str:
    """Which way is worse for ``stat`` of this metric: ``"up"``, ``"down"`` or ``"none"``.

    >>> polarity("export.duration", MetricType.HISTOGRAM, "p95")
    'up'
    >>> polarity("export.fallbacks", MetricType.COUNTER, "rate")
    'up'
    >>> polarity("app.started", MetricType.COUNTER, "rate")
    'none'
    """
    if metric_type in _DISTRIBUTIONS:
        return "none" if stat in ("count", "rate", "sum") else "up"
    if metric_type is MetricType.COUNTER and name.rsplit(".", 1)[-1] in _BAD_COUNTS:
        return "up"
    return "none"


@dataclass(frozen=True)
class Windows:
    """The time ranges an overview used, in epoch seconds.

    ``start .. end`` is the window; "now" is ``current_start .. end``; the baseline is
    ``baseline_start .. baseline_end`` (``baseline_end == current_start``). The trend grid
    has ``trend_points`` intervals of ``trend_step`` seconds from ``trend_origin``.
    """

    start: float
    end: float
    current_start: float
    baseline_start: float
    baseline_end: float
    trend_origin: float = 0.0
    trend_step: float = 0.0
    trend_points: int = 0

    @classmethod
    def for_range(
        cls,
        start: float,
        end: float,
        *,
        baseline_days: float | None = None,
        points: int = TREND_POINTS,
        step: float | None = None,
        min_step: float = 60.0,
    ) -> Windows:
        """The windows of an overview of ``start .. end`` (see the module docstring);
        ``min_step`` is the width of the store's finest rows (no interval is finer)."""
        from sounding.storage.store import align

        days = MetricsConfig().baseline_window_days if baseline_days is None else baseline_days
        current = end - min(_DAY, (end - start) / 4.0)
        if step is None:
            origin, step, n = _grid(start, end, max(2, points), min_step)
        else:
            # Whole stored rows per interval, as the store would make it.
            unit = max(float(min_step), 1.0)
            step = max(1, math.ceil(step / unit - 1e-9)) * unit
            # Never more intervals than asked for (the store would coarsen them anyway).
            n = math.ceil((end - align(start, step)) / step)
            if n > points:
                step *= math.ceil(n / points)
            origin = align(start, step)
            n = max(1, math.ceil((end - origin) / step))
            while n > points:  # alignment can add one interval
                step *= 2
                origin = align(start, step)
                n = max(1, math.ceil((end - origin) / step))
        return cls(
            start=start,
            end=end,
            current_start=current,
            baseline_start=current - days * _DAY,
            baseline_end=current,
            trend_origin=origin,
            trend_step=step,
            trend_points=n,
        )

    def as_dict(self) -> dict[str, Any]:
        """ISO 8601 times (UTC) and the trend step in seconds."""
        from sounding.storage.times import iso

        return {
            "window": {"start": iso(self.start), "end": iso(self.end)},
            "now": {"start": iso(self.current_start), "end": iso(self.end)},
            "baseline": {"start": iso(self.baseline_start), "end": iso(self.baseline_end)},
            "trend_step_seconds": self.trend_step,
        }


def _grid(
    start: float, end: float, points: int, min_step: float = 60.0
) -> tuple[float, float, int]:
    """``(origin, step, n)``: at most ``points`` intervals of a :data:`NICE_STEPS` length
    (whole multiples of ``min_step``, the store's finest rows) covering the window, aligned
    to multiples of ``step`` since the epoch as the store aligns them (the first may begin a
    little before ``start``; weeks begin on Monday 00:00 UTC, as ISO weeks do). The grid
    depends only on the window's length and on the UTC clock, not on the second "now" is,
    so the same question asked a minute later gets the same intervals."""
    from sounding.storage.store import align

    unit = max(float(min_step), 1.0)
    steps = sorted({math.ceil(s / unit - 1e-9) * unit for s in NICE_STEPS})
    # Windows of years: plain whole days.
    steps.append(math.ceil((end - start) / max(points - 1, 1) / _DAY) * _DAY)
    origin, step, n = 0.0, steps[-1], 1
    for step in steps:
        origin = align(start, step)
        n = math.ceil((end - origin) / step)
        if n <= points:
            break
    return float(origin), step, max(n, 1)


@dataclass(frozen=True)
class GroupRow:
    """One value of the ``by`` tag: the metric's statistic now and in the baseline."""

    value: str | None
    current: float | None
    baseline: float | None
    count: int
    baseline_count: int
    change: float | None


@dataclass(frozen=True)
class MetricRow:
    """One metric (all its series merged, or those matching the tag filter), now against its
    baseline.

    ``stat`` names the statistic ``current``, ``baseline``, ``change``, ``trend`` and the
    change points refer to; a ``"rate"`` is per hour. ``change`` is relative
    (``0.5`` = +50 %); ``verdict`` is ``"worse"``, ``"better"``, ``"changed"`` (moved past
    the threshold, no direction is bad) or ``"steady"``, ``None`` without a comparison.
    """

    name: str
    metric_type: MetricType
    unit: str
    description: str
    series: int
    count: int
    total: float | None
    rate_per_hour: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    stat: str
    current: float | None
    baseline: float | None
    baseline_count: int
    change: float | None
    flagged: bool
    polarity: str = "none"
    verdict: str | None = None
    trend: tuple[float | None, ...] = ()
    trend_start: float = 0.0
    trend_step: float = 0.0
    change_points: tuple[ChangePoint, ...] = ()
    groups: tuple[GroupRow, ...] = ()
    #: Where the metric's first stored data starts (``None``: unknown); rates count from
    #: here when it is later than the window's start.
    first_data: float | None = None

    @property
    def headline(self) -> str:
        """The statistic's name (an older name of :attr:`stat`)."""
        return self.stat

    @property
    def stat_unit(self) -> str:
        """The unit of the statistic: ``/h`` for rates, counts have none, else the metric's."""
        if self.stat == "rate":
            return "/h"
        if self.stat == "count":
            return ""
        return self.unit

    @property
    def lower_is_better(self) -> bool:
        """Whether the statistic gets worse as it grows."""
        return self.polarity == "up"


@dataclass(frozen=True)
class ErrorRow:
    """One error type: how often it happened in the window and when last.

    ``sources`` names the metrics and events it was counted from.
    """

    exc_type: str
    count: int
    last_seen: float | None = None
    example: str | None = None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertRow:
    """An alert rule (``MetricsConfig.alert_thresholds`` or ``alerts.toml``) and its state.

    ``unit`` is the unit of ``value`` and ``threshold`` (:func:`rule_unit`: a rule's
    ``rate`` is per second, as the store reads it). ``evaluated`` rows carry the state the
    last ``sounding alerts --evaluate`` (or the application) persisted. Rules never
    evaluated are run through the rule evaluator now, on a fresh state (so a rule with
    ``for`` shows ``pending``, not ``firing``). ``status`` is ``inactive``, ``pending``,
    ``firing``, ``recovering`` or ``resolved``; ``window`` is the trailing range (seconds)
    the rule's value covers.
    """

    name: str
    metric: str
    stat: str
    op: str
    threshold: float | None
    status: str
    value: float | None
    since: float | None = None
    evaluated: bool = False
    series: str = ""
    unit: str = ""
    kind: str = "threshold"
    window: float = 0.0
    evaluated_at: float | None = None

    @property
    def firing(self) -> bool:
        """Whether the alert is firing (or still within ``keep_firing_for``)."""
        return self.status in ("firing", "recovering")


@dataclass(frozen=True)
class SessionSummary:
    """Sessions that started in the window."""

    count: int = 0
    median_duration: float | None = None
    by_version: dict[str, int] = field(default_factory=dict)
    last_started: float | None = None


@dataclass(frozen=True)
class Overview:
    """Everything the views show, as plain numbers (no formatting, no colours).

    ``history`` is false when no data is older than "now": a brand-new application has
    nothing to compare with yet.
    """

    data_dir: str
    windows: Windows
    threshold_percent: float
    rows: tuple[MetricRow, ...] = ()
    errors: tuple[ErrorRow, ...] = ()
    alerts: tuple[AlertRow, ...] = ()
    sessions: SessionSummary = field(default_factory=SessionSummary)
    internal: dict[str, float] = field(default_factory=dict)
    by: str | None = None
    history: bool = True
    built_in: float = 0.0

    @classmethod
    def empty(cls, *, data_dir: str, start: float, end: float) -> Overview:
        """An overview with no data (what an empty store gives)."""
        cfg = MetricsConfig()
        return cls(
            data_dir=data_dir,
            windows=Windows.for_range(start, end, baseline_days=cfg.baseline_window_days),
            threshold_percent=cfg.deviation_threshold_percent,
            history=False,
        )

    # The windows, flat, as the views read them.
    @property
    def start(self) -> float:
        """Start of the window."""
        return self.windows.start

    @property
    def end(self) -> float:
        """End of the window ("now")."""
        return self.windows.end

    @property
    def current_start(self) -> float:
        """Start of "now"."""
        return self.windows.current_start

    @property
    def baseline_start(self) -> float:
        """Start of the baseline (it ends where "now" starts)."""
        return self.windows.baseline_start

    def rates_since(self) -> float | None:
        """Where the rates' "now" begins when the first data came after
        :attr:`current_start` (a brand-new app), else ``None``: views say so."""
        firsts = [r.first_data for r in self.rows if r.stat == "rate" and r.first_data]
        if not firsts or min(firsts) <= self.windows.current_start:
            return None
        return min(firsts)

    def recent_changes(self) -> list[tuple[MetricRow, ChangePoint]]:
        """Every metric's change points with their row (its name, statistic and unit),
        newest first."""
        found = [(r, cp) for r in self.rows for cp in r.change_points]
        return sorted(found, key=lambda pair: pair[1].timestamp or 0.0, reverse=True)

    @property
    def flagged(self) -> tuple[MetricRow, ...]:
        """The rows whose statistic regressed past the threshold."""
        return tuple(r for r in self.rows if r.flagged)

    def row(self, name: str) -> MetricRow | None:
        """The row of metric ``name``, if it has one."""
        return next((r for r in self.rows if r.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: the numbers every view shows, the windows, the statistics."""
        from sounding.storage.times import iso

        data = asdict(self)
        data["windows"] = {**self.windows.as_dict(), **asdict(self.windows)}
        for row, src in zip(data["rows"], self.rows, strict=True):
            row["metric_type"] = src.metric_type.value
            row["stat_unit"] = src.stat_unit
            row["change_points"] = [{**cp.as_dict(), "stat": src.stat} for cp in src.change_points]
        since = self.rates_since()
        data["rates_since"] = None if since is None else iso(since)
        data["change_points"] = [
            {"metric": r.name, "stat": r.stat, **cp.as_dict()} for r, cp in self.recent_changes()
        ]
        return data


# -- reading the store ------------------------------------------------------------------------


def _relative(current: float | None, baseline: float | None) -> float | None:
    if current is None or baseline is None or baseline == 0:
        return None
    if not (math.isfinite(current) and math.isfinite(baseline)):
        return None
    return (current - baseline) / abs(baseline)


def _value(
    store: Store,
    name: str,
    mtype: MetricType,
    stat: str,
    start: float,
    end: float,
    tags: Mapping[str, str] | None,
    by: str | None = None,
    first: float | None = None,
) -> dict[str | None, tuple[float | None, int]]:
    """``stat`` of ``name`` over ``start .. end``: ``{group: (value, observations)}``.

    A rate is per hour (counters: what was added; others: how many observations) over the
    range from ``first`` (the metric's first data) if that is later than ``start``: a
    brand-new app's one run in 30 minutes is 2/h, not 1/24 of it over the whole day.
    """
    if stat == "rate":
        base = "sum" if mtype is MetricType.COUNTER else "count"
        hours = _hours(start, end, first)
        pts = store.query(name, start, end, tags, group_by=by, stat=base)
        return {p.group: (float(p.value) / hours, int(p.count)) for p in pts}
    pts = store.query(name, start, end, tags, group_by=by, stat=store_stat(stat))
    return {p.group: (None if p.value is None else float(p.value), int(p.count)) for p in pts}


def _hours(start: float, end: float, first: float | None) -> float:
    """Hours from ``start`` (or the first data, when later) to ``end``: a rate's
    denominator."""
    begin = start if first is None else min(max(start, first), end)
    return max((end - begin) / 3600.0, 1e-9)


def _trend(
    store: Store,
    name: str,
    mtype: MetricType,
    stat: str,
    w: Windows,
    tags: Mapping[str, str] | None,
    first: float | None = None,
) -> tuple[float | None, ...]:
    """``stat`` per interval of the trend grid, ``None`` where nothing was recorded (a rate
    in the interval holding the first data counts from there)."""
    rate = stat == "rate"
    base = ("sum" if mtype is MetricType.COUNTER else "count") if rate else store_stat(stat)
    points = store.query(name, w.trend_origin, w.end, tags, interval=w.trend_step, stat=base)
    slots: list[float | None] = [None] * w.trend_points
    for p in points:
        begin = p.timestamp.timestamp()
        i = int((begin - w.trend_origin) // w.trend_step)
        if 0 <= i < w.trend_points and p.value is not None:
            value = float(p.value)
            if rate:
                value /= _hours(begin, p.end.timestamp(), first)
            slots[i] = value
    if mtype is MetricType.COUNTER and stat in ("rate", "sum"):
        # Between the first and the last data an interval without increments counted 0;
        # before and after, nothing was recorded at all.
        seen = [i for i, v in enumerate(slots) if v is not None]
        if seen:
            slots = [
                (0.0 if v is None else v) if seen[0] <= i <= seen[-1] else None
                for i, v in enumerate(slots)
            ]
    return tuple(slots)


def change_points_of(
    name: str,
    stat: str,
    values: Sequence[float | None],
    start: float,
    step: float,
    *,
    method: str | None = None,
    scale: float = 1.0,
    transform: str = "auto",
) -> tuple[ChangePoint, ...]:
    """Regime starts in a trend, as the detector reports them (its levels and score).

    ``before``/``after`` are the detector's: the medians of the segments either side (for a
    sparse counter, whose medians are both 0, their mean rates), so every view shows the
    numbers ``detect_change_points`` gives, times ``scale`` (a counter's counts per interval
    are given to the detector, so that its count model applies, and read back per hour).
    """
    present = [v for v in values if v is not None and math.isfinite(v)]
    if len(present) < 12:
        return ()
    # The grid's times let the detector remove the daily (and weekly) profile.
    times = [start + i * step for i in range(len(values))]
    out = []
    for c in detect_change_points(values, timestamps=times, method=method, transform=transform):
        b, a = c.before, c.after
        # Levels within the sketch's 1 % relative error of each other are not a change.
        if abs(a - b) <= _SAME_LEVEL * max(abs(a), abs(b)):
            continue
        ts = c.timestamp if c.timestamp is not None else start + c.index * step
        out.append(ChangePoint(c.index, ts, b * scale, a * scale, c.score))
    return tuple(out)


def _verdict(change: float | None, threshold: float, worse_when: str) -> str | None:
    if change is None:
        return None
    if abs(change) * 100 < threshold:
        return "steady"
    if worse_when == "none":
        return "changed"
    up = change > 0
    return "worse" if up == (worse_when == "up") else "better"


def metric_row(
    store: Store,
    name: str,
    infos: Sequence[SeriesInfo],
    w: Windows,
    *,
    threshold: float,
    stat: str | None = None,
    tags: Mapping[str, str] | None = None,
    by: str | None = None,
    method: str | None = None,
) -> MetricRow:
    """One metric's :class:`MetricRow` over the windows ``w`` (see the module docstring)."""
    info = infos[0]
    mtype = info.metric_type
    chosen = default_stat(mtype) if stat is None else stat
    # Rates count from the first data: a brand-new app has not been running all window.
    first = store.first_data(name, tags or None)
    cur, cur_n = _value(store, name, mtype, chosen, w.current_start, w.end, tags, None, first).get(
        None, (None, 0)
    )
    base, base_n = _value(
        store, name, mtype, chosen, w.baseline_start, w.baseline_end, tags, None, first
    ).get(None, (None, 0))
    if (
        mtype is MetricType.COUNTER
        and chosen in ("rate", "sum")
        and cur is None
        and base is not None
    ):
        # The counter exists and nothing was added since "now" began: that is zero.
        cur = 0.0
    hours = _hours(w.current_start, w.end, first)
    p50 = p95 = p99 = None
    total: float | None = None
    if mtype in _DISTRIBUTIONS:
        dist = store.distribution(name, w.current_start, w.end, tags)
        count = dist.count
        if count:
            p50, p95, p99 = (dist.quantile(q) for q in (0.5, 0.95, 0.99))
            total = dist.sum
        rate = count / hours
    elif mtype is MetricType.COUNTER:
        pts = store.query(name, w.current_start, w.end, tags, stat="sum")
        total = float(pts[0].value) if pts else 0.0
        count = int(pts[0].count) if pts else 0
        rate = total / hours
    else:
        count, rate = cur_n, None
    if mtype is MetricType.COUNTER and chosen in ("rate", "sum"):
        # Counts of increments are not observations: judge by the totals.
        base_hours = _hours(w.baseline_start, w.baseline_end, first)
        base_total = (base or 0.0) * (base_hours if chosen == "rate" else 1.0)
        totals = (int(total or 0), int(base_total))
    else:
        totals = (cur_n, base_n)
    change = _relative(cur, base)
    worse_when = polarity(name, mtype, chosen)
    verdict = _verdict(change, threshold, worse_when)
    trend = _trend(store, name, mtype, chosen, w, tags, first)
    groups: tuple[GroupRow, ...] = ()
    if by is not None and any(by in i.tags for i in infos):
        now_g = _value(store, name, mtype, chosen, w.current_start, w.end, tags, by, first)
        base_g = _value(
            store, name, mtype, chosen, w.baseline_start, w.baseline_end, tags, by, first
        )
        keys = sorted(set(now_g) | set(base_g), key=lambda g: (g is None, g or ""))
        groups = tuple(
            GroupRow(
                value=g,
                current=now_g.get(g, (None, 0))[0],
                baseline=base_g.get(g, (None, 0))[0],
                count=now_g.get(g, (None, 0))[1],
                baseline_count=base_g.get(g, (None, 0))[1],
                change=_relative(now_g.get(g, (None, 0))[0], base_g.get(g, (None, 0))[0]),
            )
            for g in keys
        )
    return MetricRow(
        name=name,
        metric_type=mtype,
        unit=info.unit,
        description=info.description,
        series=len(infos),
        count=count,
        total=total,
        rate_per_hour=rate,
        p50=p50,
        p95=p95,
        p99=p99,
        stat=chosen,
        current=cur,
        baseline=base,
        baseline_count=base_n,
        change=change,
        flagged=verdict == "worse" and min(totals) >= MIN_COUNT,
        polarity=worse_when,
        verdict=verdict,
        trend=trend,
        trend_start=w.trend_origin,
        trend_step=w.trend_step,
        # Usage counts follow the day and the week: unless asked for (``stat``), their
        # "regimes" are mostly weekday/weekend cycles (the weekly profile cannot be removed
        # from a week of data), not changes.
        change_points=()
        if mtype is MetricType.COUNTER and worse_when == "none" and stat is None
        else _changes(
            store, name, mtype, chosen, w, tags, first, trend, worse_when, threshold, method
        ),
        groups=groups,
        first_data=first,
    )


def _changes(
    store: Store,
    name: str,
    mtype: MetricType,
    stat: str,
    w: Windows,
    tags: Mapping[str, str] | None,
    first: float | None,
    trend: tuple[float | None, ...],
    worse_when: str,
    threshold: float,
    method: str | None,
) -> tuple[ChangePoint, ...]:
    """The change points of one metric's trend.

    A counter's rate is segmented on its counts per whole interval with the detector's
    Poisson count model (``transform="counts"``; counts are not Gaussian, and the profile of
    the day is their exposure; the interval still running is left out, its count is not
    comparable), with the grid's times so that the detector removes
    the time-of-day profile; the levels are read back per hour. A usage counter (no
    direction is bad) follows the day: only level shifts of at least ``threshold`` percent,
    the dashboard's, count as changes, not the wobble the profile leaves.
    """
    if not (mtype is MetricType.COUNTER and stat == "rate"):
        return change_points_of(name, stat, trend, w.trend_origin, w.trend_step, method=method)
    counts = list(_trend(store, name, mtype, "sum", w, tags, first))
    if counts and w.trend_origin + len(counts) * w.trend_step > w.end:
        counts.pop()
    found = change_points_of(
        name, stat, counts, w.trend_origin, w.trend_step, method=method,
        scale=3600.0 / w.trend_step, transform="counts",
    )  # fmt: skip
    if worse_when != "none":
        return found
    # Segments of whole days average the daily cycle out; a shorter one is mostly a part of
    # the day the profile did not remove (sparse counts shrink it towards the mean).
    bounds = [w.trend_origin, *(c.timestamp or 0.0 for c in found)]
    bounds.append(w.trend_origin + len(counts) * w.trend_step)
    return tuple(
        c
        for i, c in enumerate(found)
        if abs(c.after - c.before) * 100.0 >= threshold * abs(c.before or 1e-9)
        and min(bounds[i + 1] - bounds[i], bounds[i + 2] - bounds[i + 1]) >= _DAY
    )


def _errors(
    store: Store, by_name: Mapping[str, Sequence[SeriesInfo]], w: Windows
) -> list[ErrorRow]:
    """Error types from every metric tagged with one (``<op>.failures`` counters, timers
    that raised: ``<op>.duration{exc_type=...}``) and from warning-or-worse events.

    Within one operation (the name without its last part) the largest count of a type is
    kept, so a failure both counted and timed is not counted twice; operations add up.
    """
    per_op: dict[tuple[str, str], float] = defaultdict(float)
    sources: dict[str, set[str]] = defaultdict(set)
    for name, infos in by_name.items():
        if name.startswith(INTERNAL_PREFIX):
            continue
        mtype = infos[0].metric_type
        for key in ERROR_TAG_KEYS:
            if not any(key in i.tags for i in infos):
                continue
            stat = "sum" if mtype is MetricType.COUNTER else "count"
            for p in store.query(name, w.start, w.end, group_by=key, stat=stat):
                if p.group is not None and p.value:
                    op = name.rsplit(".", 1)[0]
                    per_op[(op, p.group)] = max(per_op[(op, p.group)], float(p.value))
                    sources[p.group].add(name)
            break
    counts: dict[str, float] = defaultdict(float)
    for (_, name_of_type), n in per_op.items():
        counts[name_of_type] += n
    last_seen: dict[str, float] = {}
    example: dict[str, str] = {}
    event_counts: dict[str, int] = defaultdict(int)
    # Warnings too: a failure the application handled (a retried save, a caught export
    # error) is often recorded below error level, and its message is the useful example.
    for e in store.events(since=w.start, until=w.end, level="warning", limit=5000):
        kind = e.get("exc_type") or e.get("error_type")
        if not isinstance(kind, str) or not kind:
            continue
        if e.get("level") in ("error", "critical"):
            event_counts[kind] += 1
        ts = e.get("timestamp")
        if isinstance(ts, (int, float)):
            last_seen[kind] = max(last_seen.get(kind, ts), float(ts))
        message = e.get("message") or e.get("error") or e.get("exc_message")
        if isinstance(message, str) and message:
            example[kind] = message
    for kind, n in event_counts.items():
        # Metrics count every failure; events may be sampled or rotated away. Use the larger.
        if n > counts.get(kind, 0.0):
            counts[kind] = float(n)
            sources[kind].add("events")
    rows = [
        ErrorRow(
            exc_type=k,
            count=round(v),
            last_seen=last_seen.get(k),
            example=example.get(k),
            sources=tuple(sorted(sources.get(k, ()))),
        )
        for k, v in counts.items()
        if v > 0
    ]
    rows.sort(key=lambda r: (-r.count, r.exc_type))
    return rows


def _sessions(store: Store, w: Windows) -> SessionSummary:
    found = store.sessions(since=w.start, until=w.end, limit=None)
    if not found:
        return SessionSummary()
    durations = [s.duration for s in found if s.duration is not None]
    versions: dict[str, int] = defaultdict(int)
    for s in found:
        versions[s.app_version or "unknown"] += 1
    started = [s.started.timestamp() for s in found if s.started is not None]
    return SessionSummary(
        count=len(found),
        median_duration=statistics.median(durations) if durations else None,
        by_version=dict(sorted(versions.items())),
        last_started=max(started) if started else None,
    )


def rule_unit(stat: str, metric_unit: str) -> str:
    """The unit of an alert rule's value: the rule evaluator reads the store's statistic,
    whose ``rate`` is per second; counts and sums have none; the rest the metric's unit.

    >>> rule_unit("rate", "ms"), rule_unit("p95", "ms"), rule_unit("count", "ms")
    ('/s', 'ms', '')
    """
    if stat == "rate":
        return "/s"
    if stat in ("count", "sum"):
        return ""
    return metric_unit


def load_alert_rules(store: Store, config: MetricsConfig, path: Any = None) -> list[AlertRule]:
    """The rules of ``config.alert_thresholds`` and of ``path`` (default: ``alerts.toml`` in
    the store's directory, when it exists)."""
    from pathlib import Path

    from sounding.analysis.rules import load_rules, rules_from_config

    rules = rules_from_config(config)
    rules_file = Path(path) if path is not None else store.path.parent / "alerts.toml"
    if rules_file.is_file():
        rules.extend(load_rules(rules_file))
    return rules


def alert_rows(
    store: Store,
    rules: Iterable[AlertRule],
    *,
    now: float,
    units: Mapping[str, str] | None = None,
) -> list[AlertRow]:
    """Every rule with its persisted state, or with what the rule evaluator says now (on a
    fresh state) when it was never evaluated. Firing first, then in rule order."""
    from sounding.analysis.alert_state import MemoryAlertStateStore, read_states
    from sounding.analysis.alerts import evaluate

    rules = list(rules)
    if not rules:
        return []
    # Read the states through the store's own connection (read-only when the store was
    # opened to read): listing never creates a table, a file or a journal.
    all_states = read_states(store.connection)
    unit_of = dict(units or {})
    if not unit_of:
        unit_of = {i.name: i.unit for i in store.series()}
    out: list[AlertRow] = []
    source = store_value_source(store)
    for rule in rules:
        unit = rule_unit(rule.stat, unit_of.get(rule.metric, ""))
        common: dict[str, Any] = {
            "name": rule.name, "metric": rule.metric, "stat": rule.stat, "op": rule.op,
            "threshold": rule.threshold, "unit": unit, "kind": rule.kind,
            "window": rule.window,
        }  # fmt: skip
        known = [s for s in all_states if s.rule == rule.name]
        for st in known:
            out.append(
                AlertRow(
                    **common,
                    status=st.status.value,
                    value=st.value,
                    since=st.since,
                    evaluated=True,
                    series=st.series,
                    evaluated_at=st.evaluated_at,
                )
            )
        if known:
            continue
        results = evaluate(
            [rule], source, now=now, state_store=MemoryAlertStateStore(), sinks=[],
            enable_alerts=False,
        )  # fmt: skip
        for r in results:
            out.append(
                AlertRow(
                    **common,
                    status=r.status.value,
                    value=r.value,
                    series=r.series,
                    evaluated_at=now,
                )
            )
    out.sort(key=lambda a: not a.firing)
    return out


def _finest(store: Store, cfg: MetricsConfig) -> float:
    """The width of the store's finest rows (the aggregation interval when the store does
    not say)."""
    finest = getattr(store, "finest_resolution", None)
    if callable(finest):
        return float(finest())
    return float(cfg.aggregation_interval)


def build_overview(
    store: Store,
    *,
    since: TimeLike = "7d",
    now: float | None = None,
    config: MetricsConfig | None = None,
    names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    by: str | None = None,
    stat: str | None = None,
    points: int = TREND_POINTS,
    interval: float | str | None = None,
    baseline_days: float | None = None,
    method: str | None = None,
    include: Iterable[str] = ("errors", "alerts", "sessions"),
) -> Overview:
    """Read ``store`` into an :class:`Overview` of the window ``since`` .. ``now``.

    ``since`` takes what the store's queries take ("7d", "24h", ISO 8601, epoch seconds);
    ``names`` limits the metrics, ``tags`` filters their series, ``by`` (a tag key) adds a
    :class:`GroupRow` per tag value. ``stat`` replaces each metric's default statistic;
    ``interval`` (seconds) the trend grid's step; ``baseline_days`` the baseline's length
    (default ``MetricsConfig.baseline_window_days``). ``config`` defaults to the store's
    settings. ``include`` chooses the parts beyond the metrics.
    """
    from sounding.analysis.rules import parse_duration
    from sounding.storage.times import parse_time

    t0 = time.perf_counter()
    cfg = config if config is not None else store.metrics
    end = get_clock().time() if now is None else float(now)
    start = parse_time(since, "since", now=end)
    if not start < end:
        raise InvalidValueError("since", since, "a start before now, e.g. 7d, 24h or an ISO date")
    w = Windows.for_range(
        start,
        end,
        baseline_days=cfg.baseline_window_days if baseline_days is None else baseline_days,
        points=max(2, min(points, cfg.max_data_points)),
        step=None if interval is None else parse_duration(interval, "interval") or None,
        min_step=_finest(store, cfg),
    )
    by_name: dict[str, list[SeriesInfo]] = defaultdict(list)
    for info in store.series():
        by_name[info.name].append(info)
    if by is not None and not any(by in i.tags for infos in by_name.values() for i in infos):
        keys = sorted({k for infos in by_name.values() for i in infos for k in i.tags})
        raise InvalidValueError(
            "--by", by, "a tag key the store has: " + (", ".join(keys) or "none")
        )
    if tags and not any(
        all(i.tags.get(k) == v for k, v in tags.items())
        for infos in by_name.values()
        for i in infos
    ):
        key, value = next(iter(tags.items()))
        known = sorted({i.tags[key] for infos in by_name.values() for i in infos if key in i.tags})
        raise InvalidValueError(
            "--tag",
            f"{key}={value}",
            f"a tag the store has: {key}=" + (", ".join(known) or "(none)"),
        )
    wanted = set(names) if names is not None else None
    rows: list[MetricRow] = []
    internal: dict[str, float] = {}
    oldest = math.inf
    for name, infos in sorted(by_name.items()):
        if name.startswith(INTERNAL_PREFIX):
            pts = store.query(name, stat="sum")
            if pts and pts[0].value:
                internal[name[len(INTERNAL_PREFIX) :]] = float(pts[0].value)
            continue
        if wanted is not None and name not in wanted:
            continue
        matching = [i for i in infos if all(i.tags.get(k) == v for k, v in (tags or {}).items())]
        if not matching:
            continue
        row = metric_row(
            store, name, matching, w, threshold=cfg.deviation_threshold_percent,
            stat=stat, tags=tags, by=by, method=method,
        )  # fmt: skip
        if row.count or row.baseline_count or any(v is not None for v in row.trend):
            rows.append(row)
            first = next((i for i, v in enumerate(row.trend) if v is not None), None)
            if row.baseline_count:
                oldest = min(oldest, w.baseline_start)
            elif first is not None:
                oldest = min(oldest, w.trend_origin + first * w.trend_step)
    parts = set(include)
    units = {r.name: r.unit for r in rows}
    return Overview(
        data_dir=str(store.path.parent),
        windows=w,
        threshold_percent=cfg.deviation_threshold_percent,
        rows=tuple(rows),
        errors=tuple(_errors(store, by_name, w)) if "errors" in parts else (),
        alerts=(
            tuple(alert_rows(store, load_alert_rules(store, cfg), now=end, units=units or None))
            if "alerts" in parts
            else ()
        ),
        sessions=_sessions(store, w) if "sessions" in parts else SessionSummary(),
        internal=internal,
        by=by,
        history=oldest < w.current_start,
        built_in=time.perf_counter() - t0,
    )
