"""The dashboard: what the store says about an application, now against its baseline.

Two steps, each testable on its own. :func:`build_model` reads a
:class:`~sounding.storage.Store` into a plain :class:`DashboardModel` (numbers, no
formatting); :func:`render` turns a model into rich renderables (tables with coloured
deviations and sparklines). :func:`live` refreshes the rendering in place every
``MetricsConfig.refresh_interval`` seconds until Ctrl-C.

"Now" is the last 24 hours of the window (a quarter of it for windows shorter than four
days); the baseline is the ``MetricsConfig.baseline_window_days`` before that. For
distributions (histograms, summaries) the headline statistic is p95, for counters the rate
per hour, for gauges the mean. A distribution or an error counter is *flagged* when its
headline got worse by at least ``MetricsConfig.deviation_threshold_percent`` with enough data
on both sides (:data:`MIN_COUNT`); other changes are only coloured.

>>> from sounding.presentation.dashboard import DashboardModel, render_text
>>> print(render_text(DashboardModel.empty(data_dir="/tmp/none", start=0.0, end=86400.0),
...                   width=60).splitlines()[0])  # doctest: +ELLIPSIS
sounding dashboard ...
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from sounding.analysis import detect_change_points
from sounding.core.clock import get_clock
from sounding.core.config import MetricsConfig
from sounding.core.exceptions import InvalidValueError
from sounding.core.types import MetricType
from sounding.presentation.sparkline import sparkline
from sounding.storage import SeriesInfo, Store
from sounding.storage.times import TimeLike, parse_time

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = [
    "INTERNAL_PREFIX",
    "WIDE",
    "AlertRow",
    "ChangePoint",
    "DashboardModel",
    "ErrorRow",
    "MetricRow",
    "SessionSummary",
    "build_model",
    "format_value",
    "live",
    "render",
    "render_text",
    "stored_text",
]

#: Metrics sounding records about itself (failures, dropped data); shown apart.
INTERNAL_PREFIX: Final = "sounding.internal."
#: Fewest observations on each side before a change counts as a deviation (a p95 of fewer
#: is mostly noise).
MIN_COUNT: Final = 50
#: Points in a dashboard sparkline (fewer when ``max_data_points`` is lower).
SPARK_POINTS: Final = 48
#: Terminal width from which the metrics table shows every column.
WIDE: Final = 130
#: Tag keys that name an error type, on counters such as ``<op>.failures``.
ERROR_TAG_KEYS: Final = ("exc_type", "error_type")
_DISTRIBUTIONS: Final = (MetricType.HISTOGRAM, MetricType.SUMMARY)
_DAY: Final = 86400.0


@dataclass(frozen=True)
class ChangePoint:
    """Where a metric's headline series entered a new regime."""

    metric: str
    timestamp: float
    before: float
    after: float

    @property
    def relative_change(self) -> float | None:
        """``(after - before) / |before|``, ``None`` when ``before`` is 0."""
        return None if self.before == 0 else (self.after - self.before) / abs(self.before)


@dataclass(frozen=True)
class MetricRow:
    """One metric (all its series merged), now against its baseline.

    ``headline`` names the statistic ``current``/``baseline``/``change`` refer to: ``"p95"``
    for distributions, ``"rate"`` (per hour) for counters, ``"avg"`` for gauges.
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
    headline: str
    current: float | None
    baseline: float | None
    baseline_count: int
    change: float | None
    flagged: bool
    spark: tuple[float | None, ...] = ()
    #: the statistic of ``spark`` (and of the change points): the mean or p95 for
    #: distributions, ``"rate"`` (per hour) for counters, ``"avg"`` for gauges
    spark_stat: str = ""
    spark_start: float = 0.0
    spark_step: float = 0.0
    change_points: tuple[ChangePoint, ...] = ()

    @property
    def lower_is_better(self) -> bool:
        """Durations, sizes and error counts get worse as they grow."""
        return self.metric_type in _DISTRIBUTIONS or _is_error_metric(self.name)


@dataclass(frozen=True)
class ErrorRow:
    """One error type: how often it happened in the window and when last."""

    exc_type: str
    count: int
    last_seen: float | None = None
    example: str | None = None


@dataclass(frozen=True)
class AlertRow:
    """An alert rule (from ``MetricsConfig.alert_thresholds`` or ``alerts.toml`` in the data
    directory) and where it stands.

    ``evaluated`` rows carry the state the last ``sounding alerts --evaluate`` (or the
    application) persisted in the store: ``status`` is ``inactive``, ``pending``,
    ``firing``, ``recovering`` or ``resolved``, ``since`` when it began. Rules never
    evaluated are compared with the dashboard's "now" instead: ``firing``, ``ok`` or
    ``no data``.
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
class DashboardModel:
    """Everything the dashboard shows, as plain numbers (no formatting, no colours)."""

    data_dir: str
    start: float
    end: float
    current_start: float
    baseline_start: float
    threshold_percent: float
    rows: tuple[MetricRow, ...] = ()
    errors: tuple[ErrorRow, ...] = ()
    alerts: tuple[AlertRow, ...] = ()
    change_points: tuple[ChangePoint, ...] = ()
    sessions: SessionSummary = field(default_factory=SessionSummary)
    internal: dict[str, float] = field(default_factory=dict)
    built_in: float = 0.0

    @classmethod
    def empty(cls, *, data_dir: str, start: float, end: float) -> DashboardModel:
        """A model with no data (what an empty store gives)."""
        current = end - min(_DAY, (end - start) / 4.0)
        return cls(
            data_dir=data_dir,
            start=start,
            end=end,
            current_start=current,
            baseline_start=current - MetricsConfig().baseline_window_days * _DAY,
            threshold_percent=MetricsConfig().deviation_threshold_percent,
        )

    @property
    def flagged(self) -> tuple[MetricRow, ...]:
        """The rows whose headline moved past the threshold."""
        return tuple(r for r in self.rows if r.flagged)

    def row(self, name: str) -> MetricRow | None:
        """The row of metric ``name``, if it has one."""
        return next((r for r in self.rows if r.name == name), None)


def _is_error_metric(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last in ("errors", "failures", "failed", "crashes", "exceptions")


def _relative(current: float | None, baseline: float | None) -> float | None:
    if current is None or baseline is None or baseline == 0:
        return None
    return (current - baseline) / abs(baseline)


#: Sparkline steps: whole units of the store's rollups (minutes, hours, days), so that every
#: interval holds whole buckets and rates do not alternate between neighbours.
NICE_STEPS: Final = (
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200,
    86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400,
)  # fmt: skip


def _spark_grid(start: float, end: float, points: int) -> tuple[float, float, int]:
    """``(origin, step, n)``: at most ``points`` intervals of a :data:`NICE_STEPS` length
    covering the window, aligned to multiples of ``step`` since the epoch as the store
    aligns them (the first may begin a little before ``start``)."""
    steps = [float(s) for s in NICE_STEPS]
    # Windows of years: plain whole days.
    steps.append(math.ceil((end - start) / max(points - 1, 1) / 86400.0) * 86400.0)
    for step in steps:
        origin = math.floor(start / step) * step
        n = math.ceil((end - origin) / step)
        if n <= points:
            break
    return float(origin), step, n


def _series_values(
    points: Iterable[Any], w: _Windows, *, per_hour: bool = False
) -> tuple[float | None, ...]:
    """Place query points on the window's grid (missing slots ``None``); ``per_hour``
    divides each value by its interval's length in hours (the last may be partial)."""
    slots: list[float | None] = [None] * w.n
    for p in points:
        begin = p.timestamp.timestamp()
        i = int((begin - w.origin) // w.step)
        if 0 <= i < w.n:
            value = float(p.value)
            if per_hour:
                value /= max((p.end.timestamp() - begin) / 3600.0, 1e-9)
            slots[i] = value
    return tuple(slots)


def _change_points(
    name: str, values: Sequence[float | None], start: float, step: float
) -> tuple[ChangePoint, ...]:
    """Regime starts in ``values`` with the median level before and after each."""
    present = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(present) < 12:
        return ()
    try:
        found = [c.index for c in detect_change_points(values)]
    except (ValueError, TypeError):
        return ()
    out = []
    bounds = [0, *found, len(values)]
    for k, idx in enumerate(found):
        before = [v for i, v in present if bounds[k] <= i < idx]
        after = [v for i, v in present if idx <= i < bounds[k + 2]]
        if before and after:
            out.append(
                ChangePoint(
                    metric=name,
                    timestamp=start + idx * step,
                    before=statistics.median(before),
                    after=statistics.median(after),
                )
            )
    return tuple(out)


def _flag(
    change: float | None, counts: tuple[int, int], threshold: float, *, up_is_worse: bool
) -> bool:
    """A change is flagged when it is a regression: past the threshold in the bad direction,
    with enough data on both sides to trust it."""
    if change is None or min(counts) < MIN_COUNT or abs(change) * 100 < threshold:
        return False
    return change > 0 if up_is_worse else change < 0


def _distribution_row(
    store: Store, name: str, info: SeriesInfo, n_series: int, w: _Windows
) -> MetricRow:
    cur = store.distribution(name, w.current, w.end)
    base = store.distribution(name, w.baseline, w.current)
    p95 = cur.quantile(0.95) if cur.count else None
    b95 = base.quantile(0.95) if base.count else None
    spark = _series_values(
        store.query(name, w.origin, w.end, interval=w.step, stat=w.trend_stat), w
    )
    change = _relative(p95, b95)
    hours = max((w.end - w.current) / 3600.0, 1e-9)
    return MetricRow(
        name=name,
        metric_type=info.metric_type,
        unit=info.unit,
        description=info.description,
        series=n_series,
        count=cur.count,
        total=cur.sum if cur.count else None,
        rate_per_hour=cur.count / hours,
        p50=cur.quantile(0.5) if cur.count else None,
        p95=p95,
        p99=cur.quantile(0.99) if cur.count else None,
        headline="p95",
        current=p95,
        baseline=b95,
        baseline_count=base.count,
        change=change,
        flagged=_flag(change, (cur.count, base.count), w.threshold, up_is_worse=True),
        spark=spark,
        spark_stat=w.trend_stat,
        spark_start=w.origin,
        spark_step=w.step,
        change_points=_change_points(name, spark, w.origin, w.step),
    )


def _one(points: Sequence[Any]) -> tuple[float | None, int]:
    if not points:
        return None, 0
    return float(points[0].value), int(points[0].count)


def _counter_row(
    store: Store, name: str, info: SeriesInfo, n_series: int, w: _Windows
) -> MetricRow:
    total, count = _one(store.query(name, w.current, w.end, stat="sum"))
    btotal, bcount = _one(store.query(name, w.baseline, w.current, stat="sum"))
    rate = (total or 0.0) / max((w.end - w.current) / 3600.0, 1e-9)
    brate = None if btotal is None else btotal / max((w.current - w.baseline) / 3600.0, 1e-9)
    # As a rate per hour, like the headline. Between the first and the last data an interval
    # without increments counted 0; before and after, nothing was recorded at all.
    spark = _series_values(
        store.query(name, w.origin, w.end, interval=w.step, stat="sum"), w, per_hour=True
    )
    seen = [i for i, v in enumerate(spark) if v is not None]
    spark = tuple(
        (0.0 if v is None else v) if seen and seen[0] <= i <= seen[-1] else None
        for i, v in enumerate(spark)
    )
    change = _relative(rate, brate)
    return MetricRow(
        name=name,
        metric_type=info.metric_type,
        unit=info.unit,
        description=info.description,
        series=n_series,
        count=count,
        total=total or 0.0,
        rate_per_hour=rate,
        p50=None,
        p95=None,
        p99=None,
        headline="rate",
        current=rate,
        baseline=brate,
        baseline_count=bcount,
        change=change,
        # Usage going up or down is not a regression; more errors is.
        flagged=_is_error_metric(name)
        and _flag(change, (int(total or 0), int(btotal or 0)), w.threshold, up_is_worse=True),
        spark=spark,
        spark_stat="rate",
        spark_start=w.origin,
        spark_step=w.step,
        # Usage counts follow the day and the week; a "regime" there is mostly noise.
        change_points=(),
    )


def _gauge_row(store: Store, name: str, info: SeriesInfo, n_series: int, w: _Windows) -> MetricRow:
    avg, count = _one(store.query(name, w.current, w.end, stat="avg"))
    bavg, bcount = _one(store.query(name, w.baseline, w.current, stat="avg"))
    spark = _series_values(store.query(name, w.origin, w.end, interval=w.step, stat="avg"), w)
    change = _relative(avg, bavg)
    return MetricRow(
        name=name,
        metric_type=info.metric_type,
        unit=info.unit,
        description=info.description,
        series=n_series,
        count=count,
        total=None,
        rate_per_hour=None,
        p50=None,
        p95=None,
        p99=None,
        headline="avg",
        current=avg,
        baseline=bavg,
        baseline_count=bcount,
        change=change,
        # Gauges (memory, queue length) are shown, not judged: up can be good or bad.
        flagged=False,
        spark=spark,
        spark_stat="avg",
        spark_start=w.origin,
        spark_step=w.step,
        change_points=_change_points(name, spark, w.origin, w.step),
    )


@dataclass(frozen=True)
class _Windows:
    trend_stat: str
    start: float
    origin: float
    end: float
    current: float
    baseline: float
    step: float
    n: int
    threshold: float


def _errors(store: Store, by_name: dict[str, list[SeriesInfo]], w: _Windows) -> list[ErrorRow]:
    """Error types from counters tagged with an error type, with examples from events."""
    counts: dict[str, float] = defaultdict(float)
    for name, infos in by_name.items():
        if infos[0].metric_type is not MetricType.COUNTER:
            continue
        for key in ERROR_TAG_KEYS:
            if any(key in i.tags for i in infos):
                for p in store.query(name, w.start, w.end, group_by=key, stat="sum"):
                    if p.group is not None:
                        counts[p.group] += float(p.value)
                break
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
        counts[kind] = max(counts.get(kind, 0.0), float(n))
    rows = [
        ErrorRow(exc_type=k, count=round(v), last_seen=last_seen.get(k), example=example.get(k))
        for k, v in counts.items()
        if v > 0
    ]
    rows.sort(key=lambda r: (-r.count, r.exc_type))
    return rows


def _sessions(store: Store, w: _Windows) -> SessionSummary:
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


_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _now_value(row: MetricRow | None, stat: str) -> float | None:
    """The dashboard's "now" value of ``stat`` for a rule never evaluated, when it has one."""
    if row is None:
        return None
    by_stat = {"p50": row.p50, "p95": row.p95, "p99": row.p99}
    if stat in by_stat:
        return by_stat[stat]
    if stat in ("avg", "mean") and row.headline == "avg":
        return row.current
    return None


def _alerts(store: Store, rows: Sequence[MetricRow], config: MetricsConfig) -> list[AlertRow]:
    """Every alert rule with its persisted state, or compared with now when it has none."""
    from sounding.analysis import SQLiteAlertStateStore, load_rules, rules_from_config

    rules = rules_from_config(config)
    rules_file = store.path.parent / "alerts.toml"
    if rules_file.is_file():
        rules.extend(load_rules(rules_file))
    if not rules:
        return []
    # Only read states that exist: looking must not add a table to the user's store.
    has_states = store.connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alert_state'"
    ).fetchone()
    states = SQLiteAlertStateStore(store.path) if has_states else None
    by_name = {r.name: r for r in rows}
    out: list[AlertRow] = []
    try:
        for rule in rules:
            row = by_name.get(rule.metric)
            # A rate's threshold is per hour, not in the metric's unit.
            unit = "" if row is None or rule.stat in ("rate", "count", "sum") else row.unit
            known = [] if states is None else states.states(rule.name)
            for st in known:
                out.append(
                    AlertRow(
                        name=rule.name, metric=rule.metric, stat=rule.stat, op=rule.op,
                        threshold=rule.threshold, status=st.status.value, value=st.value,
                        since=st.since, evaluated=True, series=st.series, unit=unit,
                    )
                )  # fmt: skip
            if known:
                continue
            value = _now_value(row, rule.stat) if rule.kind == "threshold" else None
            compare = _OPS.get(rule.op)
            if value is None or rule.threshold is None or compare is None:
                status = "no data"
            else:
                status = "firing" if compare(value, rule.threshold) else "ok"
            out.append(
                AlertRow(
                    name=rule.name, metric=rule.metric, stat=rule.stat, op=rule.op,
                    threshold=rule.threshold, status=status, value=value, unit=unit,
                )
            )  # fmt: skip
    finally:
        if states is not None:
            states.close()
    # Firing first, then the rest in rule order.
    out.sort(key=lambda a: not a.firing)
    return out


def build_model(
    store: Store,
    *,
    since: TimeLike = "7d",
    now: float | None = None,
    config: MetricsConfig | None = None,
    names: Sequence[str] | None = None,
    spark_points: int = SPARK_POINTS,
    trend_stat: str = "avg",
) -> DashboardModel:
    """Read ``store`` into a :class:`DashboardModel` for the window ``since`` .. ``now``.

    ``since`` takes what the store's queries take ("7d", "24h", ISO 8601, epoch seconds);
    ``names`` limits the metrics shown. ``config`` defaults to the store's own settings.
    ``trend_stat`` is the statistic of a distribution's trend and change points: the mean by
    default (from sums and counts, no sketch to merge, so a refresh stays cheap); the HTML
    report asks for ``"p95"``.
    """
    t0 = time.perf_counter()
    cfg = config if config is not None else store.metrics
    end = get_clock().time() if now is None else float(now)
    start = parse_time(since, "since", now=end)
    if not start < end:
        raise InvalidValueError("since", since, "a start before now, e.g. 7d, 24h or an ISO date")
    current = end - min(_DAY, (end - start) / 4.0)
    origin, step, n = _spark_grid(start, end, max(2, min(spark_points, cfg.max_data_points)))
    w = _Windows(
        trend_stat=trend_stat,
        start=start,
        origin=origin,
        end=end,
        current=current,
        baseline=current - cfg.baseline_window_days * _DAY,
        step=step,
        n=n,
        threshold=cfg.deviation_threshold_percent,
    )
    by_name: dict[str, list[SeriesInfo]] = defaultdict(list)
    for info in store.series():
        by_name[info.name].append(info)
    wanted = set(names) if names is not None else None
    rows: list[MetricRow] = []
    internal: dict[str, float] = {}
    for name, infos in sorted(by_name.items()):
        if name.startswith(INTERNAL_PREFIX):
            total, _ = _one(store.query(name, stat="sum"))
            if total:
                internal[name[len(INTERNAL_PREFIX) :]] = total
            continue
        if wanted is not None and name not in wanted:
            continue
        info = infos[0]
        if info.metric_type in _DISTRIBUTIONS:
            row = _distribution_row(store, name, info, len(infos), w)
        elif info.metric_type is MetricType.COUNTER:
            row = _counter_row(store, name, info, len(infos), w)
        else:
            row = _gauge_row(store, name, info, len(infos), w)
        if row.count or row.baseline_count or any(v for v in row.spark):
            rows.append(row)
    change_points = sorted(
        (cp for r in rows for cp in r.change_points), key=lambda c: c.timestamp, reverse=True
    )
    return DashboardModel(
        data_dir=str(store.path.parent),
        start=start,
        end=end,
        current_start=current,
        baseline_start=w.baseline,
        threshold_percent=cfg.deviation_threshold_percent,
        rows=tuple(rows),
        errors=tuple(_errors(store, by_name, w)),
        alerts=tuple(_alerts(store, rows, cfg)),
        change_points=tuple(change_points),
        sessions=_sessions(store, w),
        internal=internal,
        built_in=time.perf_counter() - t0,
    )


# -- rendering ------------------------------------------------------------------------------


def format_value(value: float | None, unit: str = "") -> str:
    """A number for people: durations in ms/s/min, large counts with k/M, else 3 digits.

    >>> format_value(1520.0, "ms"), format_value(0.25, "ms"), format_value(95.0, "s")
    ('1.52 s', '250 µs', '1.6 min')
    >>> format_value(12345.0), format_value(None)
    ('12.3k', '-')
    """
    if value is None or not math.isfinite(value):
        return "-"
    if unit in ("ms", "s", "us", "ns", "min"):
        seconds = value * {"ms": 1e-3, "s": 1.0, "us": 1e-6, "ns": 1e-9, "min": 60.0}[unit]
        a = abs(seconds)
        if a >= 3600:
            return f"{seconds / 3600:.1f} h"
        if a >= 60:
            return f"{seconds / 60:.1f} min"
        if a >= 1:
            return f"{seconds:.3g} s"
        if a >= 1e-3 or a == 0:
            return f"{seconds * 1e3:.3g} ms"
        return f"{seconds * 1e6:.3g} µs"
    a = abs(value)
    suffix = f" {unit}" if unit else ""
    if a >= 1e6:
        return f"{value / 1e6:.3g}M{suffix}"
    if a >= 1e4:
        return f"{value / 1e3:.3g}k{suffix}"
    if a >= 100 or value == int(value):
        return f"{value:.0f}{suffix}"
    return f"{value:.3g}{suffix}"


_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def stored_text(text: object, style: str = "") -> Any:
    """Stored text as a rich ``Text``: never markup, control characters shown escaped
    (an ESC sequence in a metric name or a message must not drive the terminal)."""
    from rich.text import Text

    plain = _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], str(text))
    return Text(plain, style=style)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _change_style(row: MetricRow, threshold: float) -> str:
    if row.change is None:
        return "dim"
    pct = row.change * 100
    if abs(pct) < threshold / 2:
        return "green"
    worse = pct > 0 if row.lower_is_better else pct < 0
    if row.metric_type in _DISTRIBUTIONS or _is_error_metric(row.name):
        if not worse:
            return "green"
        return "bold red" if abs(pct) >= threshold else "yellow"
    # Usage counts and gauges move for many reasons: notable, not necessarily bad.
    return "yellow" if abs(pct) >= threshold else "default"


def _change_text(row: MetricRow) -> str:
    if row.change is None:
        return "-"
    arrow = "▲" if row.change > 0 else "▼" if row.change < 0 else " "
    return f"{arrow}{abs(row.change) * 100:.0f}%"


def render(
    model: DashboardModel, *, width: int | None = None, spark_width: int = 24
) -> RenderableType:
    """The dashboard as one rich renderable (print it, or hand it to ``rich.live.Live``).

    Below :data:`WIDE` columns of ``width`` the metrics table keeps only the headline
    statistic, its baseline, the change and a shorter trend.
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[RenderableType] = []
    wide = width is None or width >= WIDE
    head = Text()
    head.append("sounding dashboard", style="bold")
    head.append_text(stored_text(f"  {model.data_dir}", style="dim"))
    head.append("\n")
    head.append(f"window {_when(model.start)} → {_when(model.end)} UTC; ")
    head.append(
        f"now = since {_when(model.current_start)}, baseline = "
        f"{_when(model.baseline_start)} → {_when(model.current_start)}; "
        f"flag at ±{model.threshold_percent:g}%"
    )
    parts.append(head)

    if not model.rows:
        parts.append(
            Text(
                "\nNo metrics recorded in this window. Record some with "
                "sounding.counter(...)/histogram(...), widen it with --since, "
                "or try `sounding demo`.",
                style="yellow",
            )
        )
    else:
        flagged = model.flagged
        if flagged:
            line = Text("\n⚠ ", style="bold red")
            line.append(
                f"{len(flagged)} regression(s) past ±{model.threshold_percent:g}%: ",
                style="bold red",
            )
            names = ", ".join(f"{r.name} {r.headline} {_change_text(r)}" for r in flagged)
            line.append_text(stored_text(names, "red"))
            parts.append(line)
        table = Table(title=Text("Metrics (now vs baseline)"), title_justify="left", expand=False)
        spark_w = spark_width if wide else min(spark_width, 12)
        columns = (
            ("Metric", "Count", "Rate/h", "p50", "p95", "p99", "Now", "Baseline", "Δ", "Trend")
            if wide
            else ("Metric", "Now", "Baseline", "Δ", "Trend")
        )
        for col in columns:
            if col == "Metric":
                table.add_column(col, overflow="fold", ratio=1)
            else:
                just = "left" if col == "Trend" else "right"
                table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
        for r in model.rows:
            name = stored_text(r.name, "bold" if r.flagged else "")
            unit = r.unit
            cells: dict[str, Any] = {
                "Metric": name,
                "Count": stored_text(
                    format_value(
                        r.total
                        if r.metric_type is MetricType.COUNTER and r.total is not None
                        else float(r.count)
                    )
                ),
                "Rate/h": stored_text(format_value(r.rate_per_hour)),
                "p50": stored_text(format_value(r.p50, unit)),
                "p95": stored_text(format_value(r.p95, unit)),
                "p99": stored_text(format_value(r.p99, unit)),
                "Now": stored_text(f"{r.headline} {_fmt_headline(r.current, r)}"),
                "Baseline": stored_text(_fmt_headline(r.baseline, r)),
                "Δ": Text(_change_text(r), style=_change_style(r, model.threshold_percent)),
                "Trend": Text(sparkline(r.spark, spark_w), style="red" if r.flagged else "cyan"),
            }
            table.add_row(*(cells[c] for c in columns))
        parts.append(table)

    if model.errors:
        t = Table(title=Text("Top error types"), title_justify="left")
        t.add_column("Type")
        t.add_column("Count", justify="right")
        t.add_column("Last seen")
        t.add_column("Example (scrubbed)", overflow="fold")
        for e in model.errors[:10]:
            t.add_row(
                # Narrow terminals: the class name; the module path is in --format json.
                stored_text(e.exc_type if wide else e.exc_type.rsplit(".", 1)[-1], "red"),
                str(e.count),
                _when(e.last_seen),
                stored_text(e.example or ""),
            )
        parts.append(t)

    if model.alerts:
        firing = sum(1 for a in model.alerts if a.firing)
        t = Table(title=Text(f"Alerts ({firing} firing)"), title_justify="left")
        for c in ("Rule", "Metric", "Condition", "Value", "State", "Since (UTC)"):
            t.add_column(c)
        for a in model.alerts:
            state_style = "bold red" if a.firing else "yellow" if a.status == "pending" else "green"
            t.add_row(
                stored_text(a.name),
                stored_text(a.metric),
                stored_text(f"{a.stat} {a.op} {format_value(a.threshold, a.unit)}"),
                stored_text(format_value(a.value, a.unit)),
                Text(a.status.upper() if a.firing else a.status, style=state_style),
                _when(a.since) if a.evaluated else "now",
            )
        parts.append(t)

    if model.change_points:
        t = Table(title=Text("Recent change points"), title_justify="left")
        for c in ("When (UTC)", "Metric", "Stat", "Before", "After", "Change"):
            t.add_column(c)
        units = {r.name: r for r in model.rows}
        for cp in model.change_points[:8]:
            crow = units.get(cp.metric)
            rel = cp.relative_change
            t.add_row(
                _when(cp.timestamp),
                stored_text(cp.metric),
                "" if crow is None else crow.spark_stat,
                stored_text(_fmt_headline(cp.before, crow)),
                stored_text(_fmt_headline(cp.after, crow)),
                "-" if rel is None else f"{rel * 100:+.0f}%",
            )
        parts.append(t)

    s = model.sessions
    foot = Text()
    if s.count:
        foot.append(f"Sessions: {s.count}")
        if s.median_duration is not None:
            foot.append(f", median {format_value(s.median_duration, 's')}")
        if s.by_version:
            versions = ", ".join(f"{v}: {n}" for v, n in s.by_version.items())
            foot.append_text(stored_text("; by version " + versions))
        foot.append(f"; last started {_when(s.last_started)}\n")
    if model.internal:
        foot.append_text(
            stored_text(
                "sounding itself: "
                + ", ".join(f"{k} {format_value(v)}" for k, v in sorted(model.internal.items()))
                + " (see `sounding status`)",
                "yellow",
            )
        )
    if foot.plain:
        parts.append(foot)
    return Group(*parts)


def _fmt_headline(value: float | None, row: MetricRow | None) -> str:
    if row is None:
        return format_value(value)
    if row.headline == "rate":
        return format_value(value) + "/h" if value is not None else "-"
    return format_value(value, row.unit)


def render_text(model: DashboardModel, *, width: int = 120, color: bool = False) -> str:
    """The dashboard as plain text (or with ANSI colours), ``width`` columns wide."""
    import io

    from rich.console import Console

    console = Console(
        file=io.StringIO(),
        width=width,
        record=True,
        color_system="standard" if color else None,
        force_terminal=color,
    )
    console.print(render(model, width=width))
    return console.export_text(styles=color)


def live(
    load: Callable[[], DashboardModel],
    *,
    refresh_interval: float,
    console: Any = None,
    iterations: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Show ``load()``'s model and redraw it in place every ``refresh_interval`` seconds.

    Runs until Ctrl-C (or ``iterations`` redraws, for tests); returns the number of redraws.
    A failing ``load`` keeps the last picture and shows the error under it.
    """
    from rich.console import Console, Group
    from rich.live import Live

    con = console if console is not None else Console()
    model = load()
    drawn = 0
    with Live(
        render(model, width=con.width), console=con, auto_refresh=False, transient=False
    ) as view:
        try:
            while iterations is None or drawn < iterations:
                sleep(refresh_interval)
                try:
                    model = load()
                    view.update(render(model, width=con.width), refresh=True)
                except Exception as exc:
                    view.update(
                        Group(
                            render(model, width=con.width),
                            stored_text(f"refresh failed: {exc}", "red"),
                        ),
                        refresh=True,
                    )
                drawn += 1
        except KeyboardInterrupt:
            pass
    return drawn

