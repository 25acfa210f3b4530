"""The ``sounding`` command line: a thin layer that parses, calls the library and prints.

``main`` is the click group (the ``sounding`` console script and ``python -m sounding``).
Commands from other modules are registered with one line each, for example
``main.add_command(dashboard)``. Library errors become one line on stderr and exit status 1
(2 for invalid arguments), never a traceback; set ``SOUNDING_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from sounding import __version__
from sounding.core.exceptions import (
    ConfigurationError,
    InvalidNameError,
    InvalidTypeError,
    InvalidValueError,
    SoundingError,
)
from sounding.presentation.output import (
    CliState,
    emit,
    format_option,
    open_output,
    parse_tags,
    require_metric,
    store_from_context,
    with_progress,
)
from sounding.storage.store import ExportRecord
from sounding.storage.times import iso, parse_duration, parse_time

__all__ = ["export", "main", "query"]

_USAGE_ERRORS = (ConfigurationError, InvalidNameError, InvalidTypeError, InvalidValueError)

_RECORD_COLUMNS = [
    "name", "type", "tags", "start", "end", "count", "sum", "min", "max", "last",
    "p50", "p95", "p99",
]  # fmt: skip
_EVENT_COLUMNS = ["timestamp", "level", "category", "event", "logger", "session_id", "fields"]


class SoundingGroup(click.Group):
    """A click group that turns library errors into one line on stderr and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; map errors to ``Error: ...`` and exit 1 (2 for bad arguments)."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (``| head``): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(1)
        except _USAGE_ERRORS as exc:
            if os.environ.get("SOUNDING_DEBUG"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)
        except Exception as exc:  # a CLI never shows a traceback (SOUNDING_DEBUG=1 does)
            if os.environ.get("SOUNDING_DEBUG"):
                raise
            text = str(exc) or type(exc).__name__
            if not isinstance(exc, (SoundingError, OSError, sqlite3.Error)):
                # Not one of ours: the type helps a bug report.
                text = f"{type(exc).__name__}: {text}"
            click.echo(f"Error: {text}", err=True)
            ctx.exit(1)


@click.group(cls=SoundingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SOUNDING_DATA_DIR",
    default=None,
    help="Directory of the store (telemetry.db). Default: the configured data dir "
    "(SOUNDING_DATA_DIR, or the platform's user data dir for the app).",
)
@click.option(
    "--app",
    envvar="SOUNDING_APP_NAME",
    default=None,
    metavar="NAME",
    help="Application name: look in that app's default data dir (ignored with --data-dir).",
)
@click.version_option(version=__version__, prog_name="sounding")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, app: str | None) -> None:
    """sounding: look at what your application recorded, locally.

    \b
    Examples:
      sounding --app recorder query recorder.export.duration --stat p95
      sounding --data-dir ~/.local/share/sounding/recorder export --format csv -o metrics.csv
      sounding query recorder.exports --stat sum --data-dir ./telemetry
    """
    ctx.obj = CliState(data_dir=data_dir, app=app)


@main.command()
@click.argument("name")
@click.option(
    "--stat",
    default="avg",
    show_default=True,
    help="count, sum, avg, min, max, last, rate, or a percentile p0-p100 (p50, p95, p99.9).",
)
@click.option("--since", default=None, help="Start: 7d, 24h, 30m, ISO 8601 or epoch seconds.")
@click.option("--until", default=None, help="End (default now); same forms as --since.")
@click.option(
    "--interval", default=None, help="One value per interval (90, 5m, 1h, 1d); default: one."
)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Filter (repeatable).")
@click.option("--group-by", default=None, metavar="KEY", help="One series per value of KEY.")
@format_option()
@click.pass_context
def query(
    ctx: click.Context,
    name: str,
    stat: str,
    since: str | None,
    until: str | None,
    interval: str | None,
    tags: tuple[str, ...],
    group_by: str | None,
    fmt: str,
) -> None:
    """Show a statistic of metric NAME over time.

    \b
    Example:
      sounding query export.duration --stat p95 --since 7d --interval 1h \\
          --tag format=wav --group-by app_version --format table
    """
    tag_filter = parse_tags(tags)
    # Parse here so an error names the option the user typed.
    start = None if since is None else parse_time(since, "--since")
    end = None if until is None else parse_time(until, "--until")
    step = None if interval is None else parse_duration(interval, "--interval")
    store = store_from_context(ctx)
    require_metric(store, name)
    points = store.query(
        name,
        start=start,
        end=end,
        tags=tag_filter or None,
        group_by=group_by,
        interval=step,
        stat=stat,
    )
    columns = ["start", "end", *(["group"] if group_by else []), stat.lower(), "count"]
    if fmt.lower() == "json":
        columns = ["name", "stat", "start", "end", "group", "tags", "value", "count"]
    rows = [
        {
            "name": p.name,
            "stat": p.stat,
            "start": iso(p.start.timestamp()),
            "end": iso(p.end.timestamp()),
            "group": p.group,
            "tags": p.tags,
            "value": p.value,
            stat.lower(): p.value,
            "count": p.count,
        }
        for p in points
    ]
    if not rows and fmt.lower() == "table":
        click.echo(f"no data for {name!r} in that range", err=True)
        return
    emit(rows, columns, fmt, title=f"{name} ({stat.lower()})")


def _record_rows(records: Iterator[ExportRecord]) -> Iterator[dict[str, Any]]:
    for r in records:
        yield r.to_dict()


def _event_rows(events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for ev in events:
        core = {k: ev.get(k) for k in _EVENT_COLUMNS if k != "fields"}
        core["timestamp"] = iso(float(ev["timestamp"]))
        core["fields"] = {k: v for k, v in ev.items() if k not in _EVENT_COLUMNS}
        yield core


@main.command()
@format_option("json", "csv", "ndjson", default="json")
@click.option("--metric", "metric", default=None, metavar="NAME", help="Only this metric.")
@click.option("--since", default=None, help="Start: 7d, 24h, ISO 8601 or epoch seconds.")
@click.option("--until", default=None, help="End; same forms as --since.")
@click.option("--events", "events", is_flag=True, help="Export events instead of metrics.")
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="FILE",
    help="Write to FILE (created private, mode 0600) instead of stdout.",
)
@click.pass_context
def export(
    ctx: click.Context,
    fmt: str,
    metric: str | None,
    since: str | None,
    until: str | None,
    events: bool,
    output: str | None,
) -> None:
    """Export stored metrics (or events) as JSON, CSV or NDJSON.

    Each metric record has name, type, tags, start, end (ISO 8601 UTC), count, sum, min,
    max, last, p50, p95, p99 (null where not meaningful). CSV cells are defused against
    spreadsheet formulas.

    \b
    Example:
      sounding export --format csv --metric export.duration --since 30d -o durations.csv
      sounding export --events --format ndjson --since 24h
    """
    # Parse before creating the output file, so an error names the option and leaves no file.
    start = None if since is None else parse_time(since, "--since")
    end = None if until is None else parse_time(until, "--until")
    store = store_from_context(ctx)
    rows: Iterator[dict[str, Any]]
    if events:
        rows = _event_rows(store.events(since=start, until=end, limit=None))
        columns = _EVENT_COLUMNS
    else:
        rows = _record_rows(store.records(metric, start=start, end=end))
        columns = _RECORD_COLUMNS
    stream = open_output(output)
    try:
        # A month of minute rows takes seconds to decode: show progress on a terminal.
        emit(with_progress(rows) if output not in (None, "-") else rows, columns, fmt, out=stream)
    finally:
        if output not in (None, "-"):
            stream.close()


# Commands defined in their own modules register themselves on the group.
from sounding.presentation.cli_analysis import register as register_analysis  # noqa: E402

register_analysis(main)

from sounding.presentation.cli_main import register as register_main_commands  # noqa: E402

register_main_commands(main)

from sounding.presentation.cli_fleet import register as register_fleet  # noqa: E402

register_fleet(main)


def _set_data_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(CliState).data_dir = value


def accept_data_dir_everywhere(group: click.Group) -> None:
    """Let every subcommand take ``--data-dir`` too (``sounding query X --data-dir D``)."""
    for command in group.commands.values():
        if any(p.name == "data_dir" for p in command.params):
            continue
        command.params.append(
            click.Option(
                ["--data-dir"],
                type=click.Path(file_okay=False, path_type=Path),
                default=None,
                expose_value=False,
                callback=_set_data_dir,
                help="Directory of the store; same as the global option.",
            )
        )


accept_data_dir_everywhere(main)
