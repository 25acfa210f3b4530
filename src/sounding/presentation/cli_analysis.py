"""``sounding baseline``, ``sounding changes`` and ``sounding alerts``: thin commands over
:mod:`sounding.analysis`.

They are registered on the ``sounding`` group with :func:`register` (``register(main)`` in
:mod:`sounding.presentation.cli`); each parses, calls the library and prints.
"""

from __future__ import annotations

from pathlib import Path

import click

from sounding.presentation.output import (
    CliState,
    emit,
    format_option,
    parse_tags,
    require_metric,
    store_from_context,
)
from sounding.storage.times import iso

__all__ = ["alerts", "baseline", "changes", "register"]


_DAYS = click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Window in days ending now (default: MetricsConfig.baseline_window_days, 7).",
)
_TAG = click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Filter (repeatable)."
)


@click.command("baseline")
@click.argument("metric")
@click.option("--by", default=None, metavar="KEY", help="One baseline per value of tag KEY.")
@_DAYS
@_TAG
@format_option("table", "json")
@click.pass_context
def baseline(
    ctx: click.Context,
    metric: str,
    by: str | None,
    days: float | None,
    tags: tuple[str, ...],
    fmt: str,
) -> None:
    """Show the baseline (p50, p95, p99, count, spread) of METRIC over the last days.

    Percentiles come from the merged sketches of the whole window; spread is 1.4826 x MAD
    of the hourly medians.

    \b
    Example:
      sounding baseline export.duration --by app_version --days 14 --format json
    """
    from sounding.analysis import Baseline
    from sounding.analysis import baseline as compute

    tag_filter = parse_tags(tags) or None
    store = store_from_context(ctx)
    require_metric(store, metric)
    found: dict[str | None, Baseline]
    if by is None:
        found = {None: compute(store, metric, window_days=days, tags=tag_filter)}
    else:
        found = dict(compute(store, metric, window_days=days, tags=tag_filter, by=by))
    rows = []
    for group, b in found.items():
        rows.append(
            {
                "metric": metric,
                "group": group,
                "p50": b.p50,
                "p95": b.p95,
                "p99": b.p99,
                "count": b.count,
                "spread": b.spread,
                "intervals": b.intervals,
                "start": iso(b.window[0]) if b.window else None,
                "end": iso(b.window[1]) if b.window else None,
            }
        )
    columns = ["p50", "p95", "p99", "count", "spread", "intervals", "start", "end"]
    if by is not None or fmt == "json":
        columns = ["group", *columns]
    if fmt == "json":
        columns = ["metric", *columns]
    emit(rows, columns, fmt, title=f"baseline of {metric}" + (f" by {by}" if by else ""))


@click.command("changes")
@click.argument("metric")
@click.option("--stat", default="p95", show_default=True, help="Statistic per interval.")
@click.option("--interval", default=None, help="Interval (90, 5m, 1h); default: aggregation.")
@click.option(
    "--method",
    type=click.Choice(["binseg", "pelt", "edivisive"]),
    default=None,
    help="Change-point method (default: binseg).",
)
@_DAYS
@_TAG
@format_option("table", "json")
@click.pass_context
def changes(
    ctx: click.Context,
    metric: str,
    stat: str,
    interval: str | None,
    method: str | None,
    days: float | None,
    tags: tuple[str, ...],
    fmt: str,
) -> None:
    """List the change points of a statistic of METRIC: where a new regime starts.

    \b
    Example:
      sounding changes export.duration --stat p95 --days 30 --interval 1h
    """
    from sounding.analysis import changes as compute

    tag_filter = parse_tags(tags) or None
    store = store_from_context(ctx)
    require_metric(store, metric)
    found = compute(
        store,
        metric,
        stat=stat,
        window_days=days,
        tags=tag_filter,
        interval=interval,
        method=method,
    )
    rows = [
        {
            "metric": metric,
            "stat": stat,
            "time": None if c.timestamp is None else iso(c.timestamp),
            "index": c.index,
            "before": c.before,
            "after": c.after,
            "change_percent": c.percent,
        }
        for c in found
    ]
    if not rows and fmt == "table":
        click.echo(f"no change points in {stat} of {metric!r} over that window", err=True)
        return
    columns = ["time", "before", "after", "change_percent"]
    if fmt == "json":
        columns = ["metric", "stat", "time", "index", "before", "after", "change_percent"]
    emit(rows, columns, fmt, title=f"change points of {metric} ({stat})")


@click.command("alerts")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="TOML file with [[alerts]] tables (default: alerts.toml in the data dir, if any).",
)
@click.option("--evaluate", "do_evaluate", is_flag=True, help="Evaluate the rules now.")
@click.option(
    "--notify/--no-notify",
    default=None,
    help="Send notifications when evaluating (default: MetricsConfig.enable_alerts).",
)
@format_option("table", "json")
@click.option(
    "--export", "export_to", type=click.Choice(["prometheus"]), default=None,
    help="Write the rules as a Prometheus rule file (stdout, or -o FILE).",
)
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
    in the store's file (table alert_state).

    \b
    Example:
      sounding alerts --rules alerts.toml --evaluate --format json
      sounding alerts --export prometheus -o sounding.rules.yml
    """
    from sounding.analysis import (
        AlertRule,
        AlertState,
        SQLiteAlertStateStore,
        evaluate,
        load_rules,
        rules_from_config,
        store_value_source,
    )

    state = ctx.find_object(CliState) or CliState()
    path = rules_file
    if path is None:
        default = state.resolved_data_dir() / "alerts.toml"
        path = default if default.is_file() else None
    store = store_from_context(ctx)
    rules: list[AlertRule] = rules_from_config(store.metrics)
    if path is not None:
        rules.extend(load_rules(path))
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
    states = SQLiteAlertStateStore(store.path)
    ctx.call_on_close(states.close)
    if do_evaluate:
        results = evaluate(
            rules, store_value_source(store), state_store=states, enable_alerts=notify
        )
        rows = [
            {**r.as_dict(), "stat": r.rule.stat, "op": r.rule.op, "threshold": r.rule.threshold}
            for r in results
        ]
        columns = ["rule", "series", "previous", "status", "value", "notification", "sent"]
        if fmt == "json":
            columns = [
                "rule", "metric", "series", "stat", "op", "threshold", "previous", "status",
                "value", "no_data", "notification", "sent",
            ]  # fmt: skip
        emit(rows, columns, fmt, title="alert evaluation")
        return
    rows = []
    for rule in rules:
        known: list[AlertState | None] = [*states.states(rule.name)] or [None]
        for st in known:
            rows.append(
                {
                    **rule.as_dict(),
                    "rule": rule.name,
                    "series": None if st is None else st.series,
                    "status": "inactive" if st is None else st.status.value,
                    "since": None if st is None else iso(st.since),
                    "value": None if st is None else st.value,
                    "evaluated_at": (
                        None if st is None or st.evaluated_at is None else iso(st.evaluated_at)
                    ),
                }
            )
    columns = ["rule", "metric", "kind", "stat", "op", "threshold", "status", "since", "value"]
    if fmt == "json":
        columns = [
            "rule", "metric", "kind", "stat", "op", "threshold", "for", "keep_firing_for",
            "recover_threshold", "window", "tags", "series", "status", "since", "value",
            "evaluated_at",
        ]  # fmt: skip
    emit(rows, columns, fmt, title="alert rules")


def register(group: click.Group) -> None:
    """Add ``baseline``, ``changes`` and ``alerts`` to the ``sounding`` group."""
    for command in (baseline, changes, alerts):
        group.add_command(command)
