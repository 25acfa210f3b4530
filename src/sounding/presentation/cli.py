"""The ``sounding`` command line: a thin layer that parses, calls the library and prints.

``main`` is the click group (the ``sounding`` console script and ``python -m sounding``).
Commands from other modules are registered with one line each, for example
``main.add_command(dashboard)``. Library errors become one line on stderr and exit status 1
(2 for invalid arguments), never a traceback; set ``SOUNDING_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import click

from sounding import __version__
from sounding.core.exceptions import (
    ConfigurationError,
    InvalidNameError,
    InvalidTypeError,
    InvalidValueError,
    SoundingError,
)
from sounding.presentation.formatting import format_time
from sounding.presentation.output import (
    OPTION_NAMES,
    CliState,
    as_option_error,
    emit,
    format_option,
    json_default,
    open_output,
    parse_tags,
    printable,
    require_metric,
    require_tags,
    store_from_context,
    with_progress,
)
from sounding.storage.store import ExportRecord, default_stat
from sounding.storage.times import duration_text, iso, parse_duration, parse_time

__all__ = ["events", "export", "main", "query"]

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
            click.echo(f"Error: {_as_typed(ctx, exc)}", err=True)
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


def _set_local(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliState).local = True


def _as_typed(ctx: click.Context, exc: Exception) -> Exception:
    """``exc`` naming the option the user typed (``--since=...``) when the library named
    its own parameter (``start=...``, ``since=...``) and the command has that option."""
    if not isinstance(exc, (InvalidValueError, InvalidTypeError)):
        return exc
    option = OPTION_NAMES.get(exc.field)
    name = ctx.invoked_subcommand
    command = None if name is None or not isinstance(ctx.command, click.Group) else (
        ctx.command.commands.get(name)
    )
    if option is None or command is None:
        return exc
    if not any(option in getattr(p, "opts", ()) for p in command.params):
        return exc
    return as_option_error(exc)


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
@click.option(
    "--local",
    is_flag=True,
    default=False,
    help="Show times in local time (default: UTC, ISO 8601 with Z).",
)
@click.version_option(version=__version__, prog_name="sounding")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, app: str | None, local: bool) -> None:
    """sounding: look at what your application recorded, locally.

    \b
    Examples:
      sounding --app recorder query recorder.export.duration --stat p95
      sounding status --app recorder
      sounding export --app recorder --format csv -o metrics.csv
      sounding query recorder.recordings --stat sum --interval day --data-dir ./telemetry
    """
    _tolerant_streams()
    ctx.obj = CliState(data_dir=data_dir, app=app, local=local)


#: Error handlers of a text stream that fail on some text a store can hold.
_FAILING_ERRORS = frozenset(("strict", "surrogateescape"))


def _tolerant_streams() -> None:
    """Let stdout and stderr write any stored text: a lone surrogate (which the store keeps
    as its JSON escape) or a character the terminal's encoding lacks is written as its
    backslash escape instead of failing the whole command with a UnicodeEncodeError.
    ``surrogateescape`` (Python's choice under a C or POSIX locale) writes only the
    surrogates that stand for undecodable bytes and fails on the others, so it is replaced
    too; a stream already set to replace or escape is left as it is."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None or getattr(stream, "errors", "strict") not in _FAILING_ERRORS:
            continue
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):  # (a closed or detached stream: left as it is)
            pass


def _value_unit(stat: str, unit: str) -> str:
    """How ``emit`` shows a statistic of a metric with ``unit`` in a table."""
    if stat == "rate":
        return "rate"
    if stat == "count":
        return "count"
    return unit


@main.command()
@click.argument("name")
@click.option(
    "--stat",
    default=None,
    help="count, sum, avg, min, max, last, rate (per second), or a percentile p0-p100 "
    "(p50, p95, p99.9). Default: sum for counters, avg otherwise.",
)
@click.option("--since", default=None, help="Start: 7d, 24h, 30m, ISO 8601 or epoch seconds.")
@click.option("--until", default=None, help="End (default now); same forms as --since.")
@click.option(
    "--interval",
    default=None,
    help="One value per interval (5m, 1h, 1d, hour, day, week; a multiple of the stored "
    "resolution); default: one value for the whole range. Weeks start on Monday.",
)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Filter (repeatable).")
@click.option("--group-by", default=None, metavar="KEY", help="One series per value of KEY.")
@format_option()
@click.pass_context
def query(
    ctx: click.Context,
    name: str,
    stat: str | None,
    since: str | None,
    until: str | None,
    interval: str | None,
    tags: tuple[str, ...],
    group_by: str | None,
    fmt: str,
) -> None:
    """Show a statistic of metric NAME over time.

    Without --since the range starts at the first data. Tables show values with their
    unit; JSON and CSV carry raw numbers (durations in the metric's unit, rates per second).

    \b
    Examples:
      sounding query recorder.export.duration --stat p95 --since 7d --interval day \\
          --group-by app_version
      sounding query recorder.recordings --interval hour --format csv
    """
    tag_filter = parse_tags(tags)
    # Parse here so an error names the option the user typed.
    start = None if since is None else parse_time(since, "--since")
    end = None if until is None else parse_time(until, "--until")
    step = None if interval is None else parse_duration(interval, "--interval")
    store = store_from_context(ctx)
    require_metric(store, name)
    require_tags(store, [name], tag_filter, {"--group-by": group_by})
    if step is not None:
        _check_interval(store, name, tag_filter, start, step, interval)
    info = store.series(name)[0]
    try:
        # The typed text, so a message about it shows what the user wrote.
        points = store.query(
            name,
            start=None if start is None else since,
            end=None if end is None else until,
            tags=tag_filter or None,
            group_by=group_by,
            interval=None if step is None else interval,
            stat=stat,
        )
    except (InvalidValueError, InvalidTypeError) as exc:
        raise as_option_error(exc) from None
    shown = (stat or default_stat(info.metric_type)).strip().lower()
    value_column = "rate_per_s" if shown == "rate" and fmt.lower() == "csv" else shown
    if fmt.lower() == "json":
        columns = ["name", "stat", "unit", "start", "end", "group", "tags", "value", "count"]
    else:
        columns = ["start", "end", *(["group"] if group_by else []), value_column]
        if shown != "count":
            columns.append("count")
    unit = "/s" if shown == "rate" else ("" if shown == "count" else info.unit)
    rows = [
        {
            "name": p.name,
            "stat": p.stat,
            "unit": unit,
            "start": format_time(p.start),
            "end": format_time(p.end),
            "group": p.group,
            "tags": p.tags,
            "value": p.value,
            value_column: p.value,
            "count": p.count,
        }
        for p in points
    ]
    if not rows and fmt.lower() == "table":
        click.echo(f"no data for {name!r} in that range", err=True)
        return
    title = f"{name} ({shown}" + (f", {info.unit}" if info.unit and unit == info.unit else "")
    emit(
        rows,
        columns,
        fmt,
        title=title + ")",
        units={shown: _value_unit(shown, info.unit), "count": "count"},
    )


def _check_interval(
    store: Any,
    name: str,
    tags: dict[str, str],
    start: float | None,
    step: float,
    typed: str | None,
) -> None:
    """Refuse an ``--interval`` the stored rows cannot fill evenly over the range: finer
    than, or not a multiple of, the rows kept where the range starts (the library would
    widen it; what a user typed is refused, naming the resolution, instead)."""
    first = store.first_data(name, tags or None)
    at = start if start is not None else first
    if at is None:
        return
    if first is not None:
        at = max(at, first)
    stored, until = store.resolution_at(at)
    if step >= stored and (step / stored).is_integer():
        return
    where = f"the store keeps {duration_text(stored)} rows"
    if until is not None:
        where += (
            f" for data before {format_time(until)} (older rows are rolled up); "
            f"use --interval {duration_text(stored).replace(' ', '')} or --since after that"
        )
    raise InvalidValueError("--interval", typed, f"a multiple of {duration_text(stored)}: {where}")


def _record_rows(records: Iterator[ExportRecord]) -> Iterator[dict[str, Any]]:
    for r in records:
        yield r.to_dict()


def _event_rows(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Events for CSV: the core columns, the rest as one JSON ``fields`` cell."""
    for ev in events:
        core = {k: ev.get(k) for k in _EVENT_COLUMNS if k != "fields"}
        core["timestamp"] = iso(float(ev["timestamp"]))
        core["fields"] = {k: v for k, v in ev.items() if k not in _EVENT_COLUMNS}
        yield core


def _event_records(events: Iterable[dict[str, Any]], fmt: str) -> tuple[Any, list[str]]:
    """Rows and columns of events for ``fmt``.

    JSON and NDJSON give each event in the shape ``events.jsonl`` has: one flat object,
    the core keys first, then the event's own fields (an ``events.jsonl`` line and an
    ``export --events --format ndjson`` line are the same). CSV has fixed columns with the
    event's own fields as one JSON cell.
    """
    if fmt.lower() == "csv":
        return _event_rows(events), _EVENT_COLUMNS
    rows = [
        {**{k: ev.get(k) for k in _EVENT_COLUMNS if k != "fields"}, **ev} for ev in events
    ]
    keys: list[str] = [k for k in _EVENT_COLUMNS if k != "fields"]
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    return rows, keys


def _emit_flat(rows: Iterable[Mapping[str, Any]], fmt: str, out: IO[str]) -> None:
    """Flat event objects as JSON or NDJSON, each with exactly its own keys."""
    first = True
    if fmt == "json":
        out.write("[")
    for row in rows:
        text = json.dumps(dict(row), default=json_default, ensure_ascii=False)
        if fmt == "json":
            out.write(("\n  " if first else ",\n  ") + text)
        else:
            out.write(text + "\n")
        first = False
    if fmt == "json":
        out.write("]\n" if first else "\n]\n")


@main.command()
@format_option("json", "csv", "ndjson", default="json")
@click.option(
    "--metric", "metrics", multiple=True, metavar="NAME", help="Only this metric (repeatable)."
)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Filter (repeatable).")
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
    metrics: tuple[str, ...],
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
    events: bool,
    output: str | None,
) -> None:
    """Export stored metrics (or events) as JSON, CSV or NDJSON.

    Each metric record has name, type, tags, start, end (ISO 8601 UTC), count, sum, min,
    max, last, p50, p95, p99 (null where not meaningful). Events are exported in the shape
    of events.jsonl lines (CSV: the event's own fields as one JSON cell). CSV cells are
    defused against spreadsheet formulas and quoted around line breaks.

    \b
    Examples:
      sounding export --format csv --metric recorder.export.duration --since 30d -o d.csv
      sounding export --metric recorder.recordings --tag app_version=1.5.0 --format ndjson
      sounding export --events --format ndjson --since 24h
    """
    # Parse before creating the output file, so an error names the option and leaves no file.
    start = None if since is None else parse_time(since, "--since")
    end = None if until is None else parse_time(until, "--until")
    tag_filter = parse_tags(tags)
    if events and (metrics or tag_filter):
        raise click.UsageError("--metric and --tag select metrics; they do not apply to --events")
    store = store_from_context(ctx)
    rows: Iterable[dict[str, Any]]
    if events:
        found = store.events(since=start, until=end, limit=None)
        rows, columns = _event_records(found, fmt)
    else:
        for name in metrics:
            require_metric(store, name)
        names = list(metrics) or sorted({s.name for s in store.series()})
        if tag_filter:
            require_tags(store, names, tag_filter)
        selected: list[str | None] = list(metrics) or [None]
        rows = (
            r
            for name in selected
            for r in _record_rows(store.records(name, start=start, end=end, tags=tag_filter))
        )
        columns = _RECORD_COLUMNS
    stream = open_output(output)
    try:
        # A month of minute rows takes seconds to decode: show progress on a terminal.
        shown = with_progress(rows) if output not in (None, "-") else rows
        if events and fmt.lower() != "csv":
            _emit_flat(shown, fmt.lower(), stream)
        else:
            emit(shown, columns, fmt, out=stream)
    finally:
        if output not in (None, "-"):
            stream.close()


_LEVEL_NAMES = ("debug", "info", "warning", "error", "critical")
_LEVEL_STYLE = {"warning": "yellow", "error": "red", "critical": "bold red"}


def _fields_text(ev: Mapping[str, Any]) -> str:
    parts = []
    for k, v in ev.items():
        if k in _EVENT_COLUMNS:
            continue
        text = v if isinstance(v, str) else json.dumps(v, default=json_default)
        if isinstance(v, (list, dict)) and len(text) > 60:
            # Stacks and breadcrumbs do not fit a line: --format json shows them whole.
            text = f"[{len(v)} item{'s' if len(v) != 1 else ''}]"
        parts.append(f"{k}={text}")
    return " ".join(parts)


def _event_line(ev: Mapping[str, Any], local: bool) -> Any:
    from rich.text import Text

    level = str(ev.get("level") or "")
    line = Text(format_time(float(ev["timestamp"]), local=local) + " ")
    line.append(f"{level.upper():<8}", style=_LEVEL_STYLE.get(level, ""))
    line.append(f" {ev.get('category') or '-'} ", style="dim")
    line.append(printable(str(ev.get("event"))), style="bold")
    fields = _fields_text(ev)
    if fields:
        line.append(" " + printable(fields))
    return line


@main.command()
@click.option("--since", default="24h", show_default=True, help="Start: 7d, 24h, ISO 8601.")
@click.option("--until", default=None, help="End; same forms as --since.")
@click.option(
    "--level",
    type=click.Choice(_LEVEL_NAMES, case_sensitive=False),
    default=None,
    help="Minimum level (warning shows warning, error and critical).",
)
@click.option("--category", default=None, help="Only this category (error, session, ...).")
@click.option(
    "--name", "names", multiple=True, metavar="EVENT", help="Only this event name (repeatable)."
)
@click.option("--session", default=None, metavar="ID", help="Only this session's events.")
@click.option(
    "--limit", type=click.IntRange(1), default=200, show_default=True, help="Latest N events."
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@format_option("table", "json", "csv", "ndjson")
@click.pass_context
def events(
    ctx: click.Context,
    since: str,
    until: str | None,
    level: str | None,
    category: str | None,
    names: tuple[str, ...],
    session: str | None,
    limit: int,
    follow: bool,
    fmt: str,
) -> None:
    """Show recorded events (logs, errors, sessions), oldest first.

    One line per event for people: time, level, category, name and fields. JSON and NDJSON
    give each event as events.jsonl and `export --events` do.

    \b
    Examples:
      sounding events --since 2h --level warning
      sounding events --category error --name operation.failed --format json
      sounding events --follow
    """
    start = parse_time(since, "--since")
    end = None if until is None else parse_time(until, "--until")
    if follow and end is not None:
        raise click.UsageError("--follow shows new events as they come; drop --until")
    if follow and fmt.lower() in ("json", "csv"):
        raise click.UsageError("--follow prints table or ndjson (one event per line)")
    store = store_from_context(ctx)
    kinds = store.event_kinds()
    for option, values, known in (
        ("--category", [category] if category else [], kinds["category"]),
        ("--name", list(names), kinds["event"]),
    ):
        for value in values:
            if value not in known:
                listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
                raise click.BadParameter(
                    f"no event has {value!r} (recorded: {listed or 'none'})", param_hint=option
                )
    local = ctx.ensure_object(CliState).local

    def fetch(since_ts: float, limit_n: int | None) -> list[dict[str, Any]]:
        found = store.events(
            since=since_ts,
            until=end,
            level=level,
            category=category,
            limit=limit_n,
            event=names[0] if len(names) == 1 else None,
            session_id=session,
        )
        return [ev for ev in found if not names or ev.get("event") in names]

    def show(batch: list[dict[str, Any]], stream_fmt: str) -> None:
        if stream_fmt == "ndjson":
            _emit_flat(_event_records(batch, "ndjson")[0], "ndjson", sys.stdout)
        else:
            from rich.console import Console

            con = Console(soft_wrap=True)
            for ev in batch:
                con.print(_event_line(ev, local), highlight=False)
        sys.stdout.flush()

    batch = fetch(start, limit)
    f = fmt.lower()
    if f in ("json", "csv") or (f == "ndjson" and not follow):
        rows, columns = _event_records(batch, f)
        if f == "csv":
            emit(rows, columns, f)
        else:
            _emit_flat(rows, f, sys.stdout)
        return
    if not batch and not follow:
        click.echo("no events in that range (try --since 7d)", err=True)
        return
    show(batch, f)
    if not follow:
        return
    import time

    seen = {_event_key(ev) for ev in batch}
    last = max((float(ev["timestamp"]) for ev in batch), default=start)
    try:
        while True:
            time.sleep(1.0)
            new = [ev for ev in fetch(last, None) if _event_key(ev) not in seen]
            if new:
                show(new, f)
                last = max(float(ev["timestamp"]) for ev in new)
                seen = {_event_key(ev) for ev in new if float(ev["timestamp"]) >= last}
    except KeyboardInterrupt:
        return


def _event_key(ev: Mapping[str, Any]) -> str:
    return json.dumps(ev, sort_keys=True, default=repr)


# Commands defined in their own modules register themselves on the group.
from sounding.presentation.cli_analysis import register as register_analysis  # noqa: E402

register_analysis(main)

from sounding.presentation.cli_main import register as register_main_commands  # noqa: E402

register_main_commands(main)

from sounding.presentation.cli_fleet import register as register_fleet  # noqa: E402

register_fleet(main)

from sounding.presentation.cli_telemetry import register as register_telemetry  # noqa: E402

register_telemetry(main)


def _set_data_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(CliState).data_dir = value


def _set_app(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CliState).app = value


def accept_data_dir_everywhere(group: click.Group) -> None:
    """Let every subcommand take ``--data-dir``, ``--app`` and ``--local`` too, after its
    name (``sounding query X --data-dir D``, ``sounding status --app recorder``)."""
    for command in group.commands.values():
        have = {p.name for p in command.params}
        if "data_dir" not in have:
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
        # The demo has its own app and data dir: --app there would mean nothing.
        if "app" not in have and command.name != "demo":
            command.params.append(
                click.Option(
                    ["--app"],
                    default=None,
                    metavar="NAME",
                    expose_value=False,
                    callback=_set_app,
                    help="Application name; same as the global option.",
                )
            )
        if "local" not in have:
            command.params.append(
                click.Option(
                    ["--local"],
                    is_flag=True,
                    default=False,
                    expose_value=False,
                    callback=_set_local,
                    help="Times in local time; same as the global option.",
                )
            )


accept_data_dir_everywhere(main)
