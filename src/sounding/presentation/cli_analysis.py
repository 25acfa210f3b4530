"""``sounding baseline``, ``sounding changes`` and ``sounding alerts``: thin commands that
render the overview of :mod:`sounding.analysis.overview`.

They show the same numbers as the dashboard and the report for the same metric and window
(same statistic, same "now" and baseline windows, same trend grid), and say which statistic
and which windows they used. They are registered on the ``sounding`` group with
:func:`register` (``register(main)`` in :mod:`sounding.presentation.cli`); each parses, calls
the library and prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sounding.presentation._format import format_change, format_stat, format_value, when
from sounding.presentation.output import (
    CliState,
    emit,
    format_option,
    parse_tags,
    require_metric,
    store_from_context,
)
from sounding.storage.times import iso

if TYPE_CHECKING:
    from sounding.analysis.overview import Overview
    from sounding.storage import Store

__all__ = ["alerts", "baseline", "changes", "register"]


_DAYS = click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Length of the baseline in days (default: MetricsConfig.baseline_window_days, 7).",
)
_SINCE = click.option(
    "--since",
    default="7d",
    show_default=True,
    help="Window start, as for the dashboard: 7d, 24h, ISO 8601 or epoch seconds.",
)
_TAG = click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Filter (repeatable)."
)
_STAT = click.option(
    "--stat",
    default=None,
    help="Statistic: p50, p95, p99, avg, last, min, max, sum, count, rate (per hour). "
    "Default: p95 for distributions, rate for counters, avg for gauges.",
)


def _overview(
    store: Store,
    metric: str,
    *,
    since: str,
    stat: str | None,
    tags: Mapping[str, str] | None,
    by: str | None = None,
    days: float | None = None,
    interval: str | None = None,
    method: str | None = None,
) -> Overview:
    from sounding.analysis.overview import build_overview

    return build_overview(
        store, since=since, names=[metric], stat=stat, tags=tags, by=by,
        baseline_days=days, interval=interval, method=method, include=(),
    )  # fmt: skip


def _windows_line(model: Overview) -> str:
    w = model.windows
    since = model.rates_since()
    first = "" if since is None else f" (rates since the first data, {when(since)})"
    return (
        f"now {when(w.current_start)} → {when(w.end)}{first}; baseline "
        f"{when(w.baseline_start)} → {when(w.baseline_end)}"
    )


def _emit(
    rows: Sequence[Mapping[str, Any]],
    table_rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    table_columns: Sequence[str],
    fmt: str,
    title: str,
) -> None:
    """JSON and CSV get the numbers; the table the same numbers written for people."""
    if fmt == "table":
        emit(table_rows, table_columns, fmt, title=title)
    else:
        emit(rows, columns, fmt)


@click.command("baseline")
@click.argument("metric")
@click.option("--by", default=None, metavar="KEY", help="One baseline per value of tag KEY.")
@_STAT
@_DAYS
@_SINCE
@_TAG
@format_option("table", "json", "csv")
@click.pass_context
def baseline(
    ctx: click.Context,
    metric: str,
    by: str | None,
    stat: str | None,
    days: float | None,
    since: str,
    tags: tuple[str, ...],
    fmt: str,
) -> None:
    """Show METRIC's statistic over its baseline, against now (as the dashboard does).

    The baseline is the --days before "now" (the last 24 hours); the statistic is p95 for
    distributions, the rate per hour for counters and the mean for gauges unless --stat
    says otherwise. For distributions p50, p95, p99 (from the merged sketches of the
    baseline) and the spread (1.4826 x MAD of the hourly medians) are shown too.

    \b
    Examples:
      sounding baseline recorder.export.duration
      sounding baseline recorder.exports --stat rate --by app_version --format json
    """
    from sounding.analysis import baseline as sketch_baseline
    from sounding.core.types import MetricType

    tag_filter = parse_tags(tags) or None
    store = store_from_context(ctx)
    require_metric(store, metric)
    model = _overview(store, metric, since=since, stat=stat, tags=tag_filter, by=by, days=days)
    row = model.row(metric)
    w = model.windows
    if row is None:
        raise click.ClickException(f"{metric!r} has no data in {_windows_line(model)}")
    distribution = row.metric_type in (MetricType.HISTOGRAM, MetricType.SUMMARY)
    sketches: dict[str | None, Any] = {}
    if distribution:
        days_used = (w.baseline_end - w.baseline_start) / 86400.0
        if by is None:
            sketches = {
                None: sketch_baseline(
                    store, metric, window_days=days_used, tags=tag_filter, now=w.baseline_end
                )
            }
        else:
            sketches = dict(
                sketch_baseline(
                    store, metric, window_days=days_used, tags=tag_filter, by=by,
                    now=w.baseline_end,
                )
            )  # fmt: skip
    groups: list[tuple[str | None, float | None, float | None, int, int, float | None]]
    groups = [(None, row.baseline, row.current, row.baseline_count, row.count, row.change)]
    if by is not None:
        groups = [
            (g.value, g.baseline, g.current, g.baseline_count, g.count, g.change)
            for g in row.groups
        ]
    rows: list[dict[str, Any]] = []
    table_rows: list[dict[str, Any]] = []
    rate_start = model.rates_since()
    for group, base, now, base_n, now_n, change in groups:
        b = sketches.get(group)
        data = {
            "metric": metric,
            "group": group,
            "stat": row.stat,
            "stat_unit": row.stat_unit,
            "baseline": base,
            "now": now,
            "change_percent": None if change is None else change * 100.0,
            "baseline_count": base_n,
            "now_count": now_n,
            "p50": None if b is None else b.p50,
            "p95": None if b is None else b.p95,
            "p99": None if b is None else b.p99,
            "spread": None if b is None else b.spread,
            "baseline_start": iso(w.baseline_start),
            "baseline_end": iso(w.baseline_end),
            "now_start": iso(w.current_start),
            "now_end": iso(w.end),
            "rate_start": None if rate_start is None else iso(rate_start),
        }
        rows.append(data)
        table_rows.append(
            {
                **data,
                "group": "(none)" if group is None else group,
                "baseline": format_stat(base, row.stat, row.unit),
                "now": format_stat(now, row.stat, row.unit),
                "change": format_change(change),
                "p50": format_value(None if b is None else b.p50, row.unit),
                "p95": format_value(None if b is None else b.p95, row.unit),
                "p99": format_value(None if b is None else b.p99, row.unit),
                "spread": format_value(None if b is None else b.spread, row.unit),
            }
        )
    columns = list(rows[0]) if rows else ["metric"]
    table_columns = ["stat", "baseline", "now", "change", "baseline_count"]
    if distribution:
        table_columns += ["p50", "p95", "p99", "spread"]
    if by is not None:
        table_columns = ["group", *table_columns]
    title = f"baseline of {metric} ({row.stat})" + (f" by {by}" if by else "")
    _emit(rows, table_rows, columns, table_columns, fmt, f"{title}\n{_windows_line(model)}")


@click.command("changes")
@click.argument("metric")
@_STAT
@click.option(
    "--interval",
    default=None,
    help="Step of the series (90, 5m, 1h); default: the dashboard's grid for the window.",
)
@click.option(
    "--method",
    type=click.Choice(["binseg", "pelt", "edivisive"]),
    default=None,
    help="Change-point method (default: binseg).",
)
@_SINCE
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Window in days ending now (the same as --since Nd).",
)
@_TAG
@format_option("table", "json", "csv")
@click.pass_context
def changes(
    ctx: click.Context,
    metric: str,
    stat: str | None,
    interval: str | None,
    method: str | None,
    since: str,
    days: float | None,
    tags: tuple[str, ...],
    fmt: str,
) -> None:
    """List the change points of METRIC's statistic: where a new regime starts.

    The statistic per interval of the window (by default the dashboard's: p95, rate per
    hour or mean, on the same grid), so these are the change points the dashboard and
    the report show. Before and after are the medians of the segments.

    \b
    Examples:
      sounding changes recorder.export.duration
      sounding changes recorder.exports --since 14d --interval 1h --format json
    """
    tag_filter = parse_tags(tags) or None
    store = store_from_context(ctx)
    require_metric(store, metric)
    window = f"{days:g}d" if days is not None else since
    model = _overview(
        store, metric, since=window, stat=stat, tags=tag_filter, interval=interval,
        method=method,
    )  # fmt: skip
    row = model.row(metric)
    found = () if row is None else row.change_points
    unit = "" if row is None else row.unit
    used = stat if row is None else row.stat
    rows = [
        {
            "metric": metric,
            "stat": used,
            "time": None if c.timestamp is None else iso(c.timestamp),
            "index": c.index,
            "before": c.before,
            "after": c.after,
            "change_percent": c.percent,
            "window_start": iso(model.windows.start),
            "window_end": iso(model.windows.end),
            "grid_start": iso(model.windows.trend_origin),
            "interval_seconds": model.windows.trend_step,
        }
        for c in found
    ]
    w = model.windows
    # The grid's first interval (aligned to UTC multiples of the step), not the window's
    # second: the same question a minute later shows the same intervals.
    where = f"{used} per {format_value(w.trend_step, 's')}, {when(w.trend_origin)} → {when(w.end)}"
    if not rows and fmt == "table":
        hint = ""
        if row is not None and row.polarity == "none" and stat is None and row.stat == "rate":
            hint = (
                "; a usage counter follows the day and the week, so it is segmented only "
                "when --stat asks (e.g. --stat rate)"
            )
        click.echo(f"no change points in {metric} ({where}){hint}", err=True)
        return
    table_rows = [
        {
            **r,
            "time": when(c.timestamp),
            "before": format_stat(c.before, used or "", unit),
            "after": format_stat(c.after, used or "", unit),
            "change": format_change(None if c.percent is None else c.percent / 100.0),
        }
        for r, c in zip(rows, found, strict=True)
    ]
    _emit(
        rows, table_rows, list(rows[0]) if rows else ["metric"],
        ["time", "stat", "before", "after", "change"], fmt,
        f"change points of {metric}\n{where}",
    )  # fmt: skip


@click.command("alerts")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="TOML file with [[alerts]] (and [[notify]]) tables (default: alerts.toml in the "
    "data dir, if any).",
)
@click.option(
    "--evaluate",
    "do_evaluate",
    is_flag=True,
    help="Evaluate the rules now, persist their state; exit 1 when one is firing.",
)
@click.option(
    "--notify/--no-notify",
    default=None,
    help="Send notifications when evaluating (default: MetricsConfig.enable_alerts).",
)
@format_option("table", "json", "csv")
@click.option(
    "--export", "export_to", type=click.Choice(["prometheus"]), default=None,
    help="Write the rules as a Prometheus rule file (stdout, or -o FILE).",
)  # fmt: skip
@click.option("-o", "--output", default=None, metavar="FILE", help="With --export: the file.")
@click.pass_context
def alerts(
    ctx: click.Context,
    rules_file: Path | None,
    do_evaluate: bool,
    notify: bool | None,
    fmt: str,
    export_to: str | None = None,
    output: str | None = None,
) -> None:
    """List alert rules and their state, or evaluate them with --evaluate.

    Rules come from MetricsConfig.alert_thresholds and the TOML file; their state is kept
    in the store's file (table alert_state). A rule never evaluated shows what the
    evaluator says now. Notifications go to the [[notify]] sinks of the file (type
    "webhook" with url, timeout, retries, headers; or "log"), else to the log. With
    --evaluate the exit status is 1 while a rule is firing, so cron and CI can act on it.

    \b
    Examples:
      sounding alerts
      sounding alerts --evaluate --format json
      sounding alerts --export prometheus -o sounding.rules.yml
    """
    from sounding.analysis import SQLiteAlertStateStore, evaluate, store_value_source
    from sounding.analysis.notify import load_sinks
    from sounding.analysis.overview import alert_rows, load_alert_rules, rule_unit

    state = ctx.find_object(CliState) or CliState()
    path = rules_file
    if path is None:
        default = state.resolved_data_dir() / "alerts.toml"
        path = default if default.is_file() else None
    store = store_from_context(ctx)
    rules = (
        load_alert_rules(store, store.metrics, path)
        if path
        else load_alert_rules(store, store.metrics, state.resolved_data_dir() / "alerts.toml")
    )
    if not rules:
        click.echo(
            "no alert rules: set MetricsConfig.alert_thresholds or write [[alerts]] tables in "
            f"{state.resolved_data_dir() / 'alerts.toml'} (or pass --rules FILE)",
            err=True,
        )
        return
    if export_to is not None:
        from sounding.presentation.cli_fleet import export_rules

        export_rules(ctx, rules, output)
        return
    from sounding.core.clock import get_clock

    now = get_clock().time()
    if do_evaluate:
        sinks = load_sinks(path) if path is not None else []
        states = SQLiteAlertStateStore(store.path)
        ctx.call_on_close(states.close)
        results = evaluate(
            rules, store_value_source(store), now=now, state_store=states,
            sinks=sinks or None, enable_alerts=notify,
        )  # fmt: skip
        units = {i.name: i.unit for i in store.series()}
        rows = []
        table_rows = []
        for r in results:
            unit = rule_unit(r.rule.stat, units.get(r.rule.metric, ""))
            data = {
                **r.as_dict(), "stat": r.rule.stat, "op": r.rule.op,
                "threshold": r.rule.threshold, "window_seconds": r.rule.window,
            }  # fmt: skip
            note = data.get("notification")
            rows.append(data)
            table_rows.append(
                {
                    **data,
                    "condition": f"{r.rule.metric} {r.rule.stat} {r.rule.op} "
                    f"{format_value(r.rule.threshold, unit)} over "
                    f"{format_value(r.rule.window, 's')}",
                    "value": format_value(r.value, unit),
                    "notified": "-" if not note else ("sent" if r.sent else "not sent"),
                }
            )
        _emit(
            rows, table_rows, list(rows[0]) if rows else ["rule"],
            ["rule", "condition", "value", "previous", "status", "notified"], fmt,
            f"alert evaluation at {when(now)}",
        )  # fmt: skip
        if any(r.status.value in ("firing", "recovering") for r in results):
            ctx.exit(1)
        return
    found = alert_rows(store, rules, now=now)
    by_name = {r.name: r for r in rules}
    rows = []
    table_rows = []
    for a in found:
        rule = by_name[a.name]
        data = {
            **rule.as_dict(),
            "rule": a.name,
            "series": a.series,
            "status": a.status,
            "evaluated": a.evaluated,
            "since": None if a.since is None else iso(a.since),
            "value": a.value,
            "evaluated_at": None if a.evaluated_at is None else iso(a.evaluated_at),
        }
        rows.append(data)
        table_rows.append(
            {
                **data,
                "condition": f"{a.metric} {a.stat} {a.op} "
                f"{format_value(a.threshold, a.unit)} over {format_value(a.window, 's')}",
                "value": format_value(a.value, a.unit),
                "since": when(a.since) if a.evaluated else "not evaluated: now",
            }
        )
    _emit(
        rows, table_rows, list(rows[0]) if rows else ["rule"],
        ["rule", "condition", "status", "value", "since"], fmt, "alert rules",
    )  # fmt: skip


def register(group: click.Group) -> None:
    """Add ``baseline``, ``changes`` and ``alerts`` to the ``sounding`` group."""
    for command in (baseline, changes, alerts):
        group.add_command(command)
